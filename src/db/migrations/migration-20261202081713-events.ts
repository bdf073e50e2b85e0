import { Migration } from '@mikro-orm/migrations';

/**
 * The event feed. `outbox_event` loses its per-row relay state (never read) and gains `seq`, the
 * place the sequencer gives each committed event; `event_cursor` holds how far each reader of the
 * feed has got. Events written before this migration are history: they are numbered in id order
 * and every cursor starts after them, so an upgrade sends no webhooks or bus messages for old
 * changes. `merchant` keeps the previous webhook secret during a rotation's overlap.
 */
export class Migration20261202081713 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`event_cursor\` (\`name\` varchar(32) not null, \`position\` bigint not null, \`holder\` varchar(64) null, \`lease_until\` datetime(3) not null, \`updated_at\` datetime(3) not null, primary key (\`name\`)) default character set utf8mb4 engine = InnoDB;`);

    this.addSql(`alter table \`merchant\` add \`previous_webhook_secret_sealed\` varchar(255) null, add \`previous_webhook_secret_expires_at\` datetime(3) null;`);

    this.addSql(`alter table \`outbox_event\` drop index \`outbox_aggregate_idx\`;`);
    this.addSql(`alter table \`outbox_event\` drop index \`outbox_pending_idx\`;`);
    this.addSql(`alter table \`outbox_event\` drop column \`available_at\`, drop column \`lease_until\`, drop column \`attempts\`, drop column \`delivered_at\`, drop column \`last_error\`;`);
    this.addSql(`alter table \`outbox_event\` add \`seq\` bigint null;`);
    this.addSql(`update \`outbox_event\` o join (select \`id\`, row_number() over (order by \`id\`) as \`n\` from \`outbox_event\`) r on o.\`id\` = r.\`id\` set o.\`seq\` = r.\`n\`;`);
    for (const name of ['sequence', 'webhooks', 'nats']) {
      this.addSql(`insert into \`event_cursor\` (\`name\`, \`position\`, \`holder\`, \`lease_until\`, \`updated_at\`) select '${name}', coalesce(max(\`seq\`), 0), null, '1970-01-01 00:00:00.000', utc_timestamp(3) from \`outbox_event\`;`);
    }
    this.addSql(`alter table \`outbox_event\` add index \`outbox_merchant_seq_idx\`(\`merchant_id\`, \`seq\`);`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_aggregate_seq_idx\`(\`aggregate_id\`, \`seq\`);`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_created_idx\`(\`created_at\`);`);
    this.addSql(`alter table \`outbox_event\` add unique \`outbox_seq_unique\`(\`seq\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table \`outbox_event\` drop index \`outbox_merchant_seq_idx\`;`);
    this.addSql(`alter table \`outbox_event\` drop index \`outbox_aggregate_seq_idx\`;`);
    this.addSql(`alter table \`outbox_event\` drop index \`outbox_created_idx\`;`);
    this.addSql(`alter table \`outbox_event\` drop index \`outbox_seq_unique\`;`);
    this.addSql(`alter table \`outbox_event\` drop column \`seq\`;`);
    this.addSql(`alter table \`outbox_event\` add \`available_at\` datetime(3) not null default utc_timestamp(3), add \`lease_until\` datetime(3) null, add \`attempts\` int not null default 0, add \`delivered_at\` datetime(3) null, add \`last_error\` varchar(255) null;`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_aggregate_idx\`(\`aggregate_id\`, \`id\`);`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_pending_idx\`(\`delivered_at\`, \`available_at\`);`);
    this.addSql(`alter table \`merchant\` drop column \`previous_webhook_secret_sealed\`, drop column \`previous_webhook_secret_expires_at\`;`);
    this.addSql(`drop table if exists \`event_cursor\`;`);
  }

}
