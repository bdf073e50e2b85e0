import { Migration } from '@mikro-orm/migrations';

/** Counts QueryPayment's channel calls about a payment already final, so every replica stops at the same limit. */
export class Migration20261202031500 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`payment\` add \`final_channel_queries\` int not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table \`payment\` drop column \`final_channel_queries\`;`);
  }

}
