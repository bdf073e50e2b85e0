import { Migration } from '@mikro-orm/migrations';

/**
 * Webhook deliveries: `webhook_delivery` (one per event sent to a merchant endpoint, claimed by
 * one replica at a time through its lease) and `webhook_attempt` (every POST made, the last 50 of
 * a delivery kept).
 */
export class Migration20261202090000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`webhook_attempt\` (\`id\` varchar(26) not null, \`delivery_id\` varchar(26) not null, \`number\` int not null, \`started_at\` datetime(3) not null, \`http_status\` int not null, \`latency_ms\` int not null, \`response_excerpt\` varchar(256) not null, \`error\` varchar(255) not null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`webhook_attempt\` add unique \`webhook_attempt_delivery_number_uq\`(\`delivery_id\`, \`number\`);`);

    this.addSql(`create table \`webhook_delivery\` (\`id\` varchar(26) not null, \`event_id\` varchar(26) not null, \`merchant_id\` varchar(26) not null, \`object_id\` varchar(26) not null, \`event_type\` varchar(64) not null, \`url\` varchar(512) not null, \`endpoint\` varchar(512) not null, \`status\` varchar(16) not null, \`attempt_count\` int not null, \`round_attempts\` int not null, \`next_attempt_at\` datetime(3) null, \`lease_until\` datetime(3) null, \`lease_holder\` varchar(64) null, \`created_at\` datetime(3) not null, \`delivered_at\` datetime(3) null, \`last_http_status\` int null, primary key (\`id\`)) default character set utf8mb4 engine = InnoDB;`);
    this.addSql(`alter table \`webhook_delivery\` add index \`webhook_delivery_due_idx\`(\`status\`, \`next_attempt_at\`);`);
    this.addSql(`alter table \`webhook_delivery\` add index \`webhook_delivery_merchant_idx\`(\`merchant_id\`, \`id\`);`);
    this.addSql(`alter table \`webhook_delivery\` add index \`webhook_delivery_object_idx\`(\`object_id\`, \`id\`);`);
    this.addSql(`alter table \`webhook_delivery\` add index \`webhook_delivery_created_idx\`(\`created_at\`);`);
    this.addSql(`alter table \`webhook_delivery\` add unique \`webhook_delivery_event_uq\`(\`event_id\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists \`webhook_attempt\`;`);
    this.addSql(`drop table if exists \`webhook_delivery\`;`);
  }

}
