import { Migration } from '@mikro-orm/migrations';

/**
 * Payouts by transfer: the merchants' settlement accounts (one per merchant and payout channel, the
 * payee sealed; the one updated last is the current payout account) and the payouts of settlement
 * orders (one per order, swept by `status, next_attempt_at`).
 */
export class Migration20261202060200 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`settlement_account\` (\`id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`channel\` varchar(16) not null, \`account_type\` varchar(16) not null, \`payee_sealed\` varchar(1024) not null, \`account_hint\` varchar(32) not null, \`created_at\` datetime(3) not null, \`updated_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`settlement_account\` add unique \`settlement_account_merchant_channel_uq\`(\`merchant_id\`, \`channel\`);`);
    this.addSql(`alter table \`settlement_account\` add index \`settlement_account_current_idx\`(\`merchant_id\`, \`updated_at\`);`);

    this.addSql(`create table \`payout\` (\`id\` varchar(26) not null, \`payout_no\` varchar(32) not null, \`settlement_id\` varchar(26) not null, \`settlement_no\` varchar(32) not null, \`merchant_id\` varchar(26) not null, \`channel\` varchar(16) not null, \`amount\` bigint not null, \`currency\` varchar(3) not null, \`payee_sealed\` varchar(1024) not null, \`status\` varchar(16) not null, \`channel_payout_no\` varchar(64) null, \`failure_reason\` varchar(255) null, \`attempts\` int not null default 0, \`next_attempt_at\` datetime(3) null, \`lease_until\` datetime(3) null, \`created_at\` datetime(3) not null, \`updated_at\` datetime(3) not null, \`finished_at\` datetime(3) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`payout\` add unique \`payout_payout_no_unique\`(\`payout_no\`);`);
    this.addSql(`alter table \`payout\` add unique \`payout_settlement_id_unique\`(\`settlement_id\`);`);
    this.addSql(`alter table \`payout\` add index \`payout_sweep_idx\`(\`status\`, \`next_attempt_at\`);`);
    this.addSql(`alter table \`payout\` add index \`payout_merchant_idx\`(\`merchant_id\`, \`id\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists \`payout\`;`);
    this.addSql(`drop table if exists \`settlement_account\`;`);
  }

}
