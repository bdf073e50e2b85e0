import { Migration } from '@mikro-orm/migrations';

/**
 * The W3C traceparent of the span that wrote each event, so the webhook deliveries it causes (in
 * traces of their own) link back to it. Added at the end and nullable: an instant change on InnoDB.
 */
export class Migration20261203080000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`outbox_event\` add \`trace_parent\` varchar(55) null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table \`outbox_event\` drop column \`trace_parent\`;`);
  }

}
