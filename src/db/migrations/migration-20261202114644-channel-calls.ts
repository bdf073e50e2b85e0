import { Migration } from '@mikro-orm/migrations';

/**
 * Channel call records: `channel_call`, one row per call the service made to a channel (written
 * in batches by the channel call recorder), read by the payment timeline through
 * `(payment_no, started_at)` and deleted after the retention through `started_at`.
 */
export class Migration20261202114644 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`channel_call\` (\`id\` varchar(26) not null, \`started_at\` datetime(3) not null, \`channel\` varchar(16) not null, \`operation\` varchar(32) not null, \`payment_no\` varchar(32) null, \`refund_no\` varchar(32) null, \`payout_no\` varchar(32) null, \`outcome\` varchar(16) not null, \`code\` varchar(64) null, \`detail\` varchar(256) not null, \`latency_ms\` int not null, \`trace_id\` varchar(32) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`channel_call\` add index \`channel_call_payment_idx\`(\`payment_no\`, \`started_at\`);`);
    this.addSql(`alter table \`channel_call\` add index \`channel_call_started_idx\`(\`started_at\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists \`channel_call\`;`);
  }

}
