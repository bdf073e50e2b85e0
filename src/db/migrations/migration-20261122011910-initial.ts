import { Migration } from '@mikro-orm/migrations';

export class Migration20261122011910 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`account_balance\` (\`id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`account\` varchar(64) not null, \`currency\` varchar(3) not null, \`balance\` bigint not null, \`updated_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`account_balance\` add unique \`account_balance_uq\`(\`account\`, \`currency\`);`);

    this.addSql(`create table \`callback_inbox\` (\`id\` varchar(26) not null, \`channel\` varchar(16) not null, \`notification_id\` varchar(128) not null, \`payment_id\` varchar(26) null, \`created_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`callback_inbox\` add unique \`callback_inbox_uq\`(\`channel\`, \`notification_id\`);`);

    this.addSql(`create table \`callback_log\` (\`id\` varchar(26) not null, \`channel\` varchar(16) not null, \`received_at\` datetime(3) not null, \`headers\` json not null, \`raw_body\` blob not null, \`verdict\` varchar(32) not null, \`reason\` varchar(255) null, \`notification_id\` varchar(128) null, \`payment_id\` varchar(26) null, \`effect\` varchar(64) null, \`answer_status\` int not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`callback_log\` add index \`callback_log_payment_idx\`(\`payment_id\`);`);
    this.addSql(`alter table \`callback_log\` add index \`callback_log_notification_idx\`(\`channel\`, \`notification_id\`);`);

    this.addSql(`create table \`discrepancy\` (\`id\` varchar(26) not null, \`kind\` varchar(32) not null, \`subject_ref\` varchar(96) not null, \`channel\` varchar(16) not null, \`merchant_id\` varchar(26) null, \`payment_id\` varchar(26) null, \`channel_trade_no\` varchar(64) null, \`amount\` bigint null, \`currency\` varchar(3) null, \`detail\` varchar(512) not null, \`status\` varchar(16) not null, \`resolution\` varchar(512) null, \`created_at\` datetime(3) not null, \`resolved_at\` datetime(3) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`discrepancy\` add index \`discrepancy_status_idx\`(\`status\`, \`id\`);`);
    this.addSql(`alter table \`discrepancy\` add unique \`discrepancy_kind_subject_uq\`(\`kind\`, \`subject_ref\`);`);

    this.addSql(`create table \`fee_rule\` (\`id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`channel\` varchar(16) not null, \`currency\` varchar(3) not null, \`rate_bps\` int not null, \`fixed_fee\` bigint not null, \`min_fee\` bigint not null, \`refund_fee_policy\` varchar(16) not null, \`updated_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`fee_rule\` add unique \`fee_rule_uq\`(\`merchant_id\`, \`channel\`, \`currency\`);`);

    this.addSql(`create table \`idempotency_record\` (\`id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`operation\` varchar(32) not null, \`idempotency_key\` varchar(255) not null, \`request_hash\` varchar(64) not null, \`resource_id\` varchar(26) not null, \`created_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`idempotency_record\` add unique \`idempotency_key_uq\`(\`merchant_id\`, \`operation\`, \`idempotency_key\`);`);

    this.addSql(`create table \`journal_entry\` (\`id\` varchar(26) not null, \`ref\` varchar(96) not null, \`entry_type\` varchar(32) not null, \`merchant_id\` varchar(26) not null, \`payment_id\` varchar(26) null, \`refund_id\` varchar(26) null, \`currency\` varchar(3) not null, \`created_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`journal_entry\` add unique \`journal_entry_ref_unique\`(\`ref\`);`);
    this.addSql(`alter table \`journal_entry\` add index \`journal_entry_payment_idx\`(\`payment_id\`);`);
    this.addSql(`alter table \`journal_entry\` add index \`journal_entry_merchant_idx\`(\`merchant_id\`, \`entry_type\`);`);

    this.addSql(`create table \`journal_posting\` (\`id\` varchar(26) not null, \`entry_id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`account\` varchar(64) not null, \`currency\` varchar(3) not null, \`amount\` bigint not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`journal_posting\` add index \`journal_posting_entry_idx\`(\`entry_id\`);`);
    this.addSql(`alter table \`journal_posting\` add index \`journal_posting_account_idx\`(\`account\`, \`currency\`);`);

    this.addSql(`create table \`merchant\` (\`id\` varchar(26) not null, \`name\` varchar(128) not null, \`notify_url\` varchar(512) not null, \`api_key_hash\` varchar(64) not null, \`api_key_prefix\` varchar(16) not null, \`webhook_secret_sealed\` varchar(255) not null, \`created_at\` datetime(3) not null, \`updated_at\` datetime(3) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`merchant\` add unique \`merchant_api_key_hash_unique\`(\`api_key_hash\`);`);

    this.addSql(`create table \`outbox_event\` (\`id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`aggregate_id\` varchar(26) not null, \`event_type\` varchar(64) not null, \`payload\` json not null, \`created_at\` datetime(3) not null, \`available_at\` datetime(3) not null, \`lease_until\` datetime(3) null, \`attempts\` int not null default 0, \`delivered_at\` datetime(3) null, \`last_error\` varchar(255) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_pending_idx\`(\`delivered_at\`, \`available_at\`);`);
    this.addSql(`alter table \`outbox_event\` add index \`outbox_aggregate_idx\`(\`aggregate_id\`, \`id\`);`);

    this.addSql(`create table \`payment\` (\`id\` varchar(26) not null, \`payment_no\` varchar(32) not null, \`merchant_id\` varchar(26) not null, \`merchant_order_no\` varchar(64) not null, \`amount\` bigint not null, \`currency\` varchar(3) not null, \`channel\` varchar(16) not null, \`status\` varchar(16) not null, \`status_reason\` varchar(255) null, \`subject\` varchar(256) not null, \`channel_trade_no\` varchar(64) null, \`action_kind\` varchar(16) null, \`action_value\` text null, \`refunded_amount\` bigint not null default 0, \`refund_pending_amount\` bigint not null default 0, \`fee\` bigint not null default 0, \`notify_url\` varchar(512) not null, \`metadata\` json not null, \`payment_method_token\` varchar(255) null, \`request_hash\` varchar(64) not null, \`created_at\` datetime(3) not null, \`updated_at\` datetime(3) not null, \`paid_at\` datetime(3) null, \`closed_at\` datetime(3) null, \`expires_at\` datetime(3) not null, \`next_query_at\` datetime(3) null, \`query_attempts\` int not null default 0, \`sweep_lease_until\` datetime(3) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`payment\` add unique \`payment_payment_no_unique\`(\`payment_no\`);`);
    this.addSql(`alter table \`payment\` add index \`payment_merchant_list_idx\`(\`merchant_id\`, \`id\`);`);
    this.addSql(`alter table \`payment\` add index \`payment_sweep_idx\`(\`status\`, \`next_query_at\`);`);
    this.addSql(`alter table \`payment\` add unique \`payment_merchant_order_uq\`(\`merchant_id\`, \`merchant_order_no\`);`);

    this.addSql(`create table \`payment_item\` (\`id\` varchar(26) not null, \`payment_id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`position\` int not null, \`sku\` varchar(64) not null, \`name\` varchar(256) not null, \`quantity\` bigint not null, \`unit_amount\` bigint not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`payment_item\` add index \`payment_item_payment_idx\`(\`payment_id\`);`);

    this.addSql(`create table \`refund\` (\`id\` varchar(26) not null, \`refund_no\` varchar(32) not null, \`payment_id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`merchant_refund_no\` varchar(64) not null, \`channel\` varchar(16) not null, \`amount\` bigint not null, \`currency\` varchar(3) not null, \`status\` varchar(16) not null, \`reason\` varchar(256) not null, \`channel_refund_no\` varchar(64) null, \`fee_returned\` bigint not null, \`failure_reason\` varchar(255) null, \`created_at\` datetime(3) not null, \`updated_at\` datetime(3) not null, \`succeeded_at\` datetime(3) null, \`next_query_at\` datetime(3) null, \`query_attempts\` int not null default 0, \`sweep_lease_until\` datetime(3) null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`refund\` add unique \`refund_refund_no_unique\`(\`refund_no\`);`);
    this.addSql(`alter table \`refund\` add index \`refund_merchant_list_idx\`(\`merchant_id\`, \`id\`);`);
    this.addSql(`alter table \`refund\` add index \`refund_sweep_idx\`(\`status\`, \`next_query_at\`);`);
    this.addSql(`alter table \`refund\` add unique \`refund_payment_merchant_no_uq\`(\`payment_id\`, \`merchant_refund_no\`);`);
  }

}
