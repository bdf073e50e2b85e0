import { Migration } from '@mikro-orm/migrations';

/**
 * The collations that compare bytes and keep trailing spaces (NO PAD): MySQL 8 (and TiDB 7.4+)
 * name it `utf8mb4_0900_bin`, MariaDB 10.2+ `utf8mb4_nopad_bin`. Plain `utf8mb4_bin` is PAD SPACE:
 * 'k1' and 'k1 ' would still be one key.
 */
const BYTE_COLLATIONS = ['utf8mb4_0900_bin', 'utf8mb4_nopad_bin'];

/**
 * Merchant keys compared byte for byte, as the embedded database (SQLite BINARY) compares them:
 * under the default utf8mb4_general_ci, `ORDER-X` found `order-x` and an idempotency key with a
 * trailing space was the same key. The unique indexes on these columns are rebuilt by MODIFY.
 *
 * And a bounded callback log: the hash and length of the body as received and what form is kept
 * (`excerpt` or `redacted`), indexes for the retention job, and the rows already stored brought
 * under the same rules (unverified bodies cut to 512 bytes; card client secrets replaced).
 */
export class Migration20261202040000 extends Migration {

  override async up(): Promise<void> {
    const available = await this.execute(
      `select collation_name as name from information_schema.collations where collation_name in (${BYTE_COLLATIONS.map(() => '?').join(', ')})`,
      BYTE_COLLATIONS,
    );
    const names = new Set(available.map((row) => String(row.name ?? row.NAME)));
    const collation = BYTE_COLLATIONS.find((name) => names.has(name));
    if (!collation) {
      throw new Error(`the server has no binary NO PAD utf8mb4 collation (${BYTE_COLLATIONS.join(' or ')}): MySQL 8+ or MariaDB 10.2+ is required`);
    }
    const bytes = `character set utf8mb4 collate ${collation}`;
    this.addSql(`alter table \`payment\` modify \`merchant_order_no\` varchar(64) ${bytes} not null;`);
    this.addSql(`alter table \`idempotency_record\` modify \`idempotency_key\` varchar(255) ${bytes} not null;`);
    this.addSql(`alter table \`refund\` modify \`merchant_refund_no\` varchar(64) ${bytes} not null;`);
    this.addSql(`alter table \`callback_inbox\` modify \`notification_id\` varchar(128) ${bytes} not null;`);
    this.addSql(`alter table \`callback_log\` modify \`notification_id\` varchar(128) ${bytes} null;`);

    this.addSql(`alter table \`callback_log\` add \`body_sha256\` varchar(64) null, add \`body_bytes\` int null, add \`body_form\` varchar(16) null;`);
    // The hash and length of what was stored, which for these rows was the body as received.
    this.addSql(`update \`callback_log\` set \`body_sha256\` = sha2(\`raw_body\`, 256), \`body_bytes\` = length(\`raw_body\`);`);
    this.addSql(`update \`callback_log\` set \`raw_body\` = left(\`raw_body\`, 512), \`body_form\` = 'excerpt' where \`verdict\` in ('rejected', 'error');`);
    this.addSql(`update \`callback_log\` set \`raw_body\` = cast(regexp_replace(convert(\`raw_body\` using utf8mb4), '"client_secret"[[:space:]]*:[[:space:]]*"[^"]*"', '"client_secret":"[redacted]"') as binary) where \`channel\` = 'card' and \`body_form\` is null and \`raw_body\` like '%client_secret%';`);
    this.addSql(`update \`callback_log\` set \`body_form\` = 'redacted' where \`body_form\` is null;`);
    this.addSql(`alter table \`callback_log\` add index \`callback_log_received_idx\`(\`received_at\`);`);
    this.addSql(`alter table \`callback_inbox\` add index \`callback_inbox_created_idx\`(\`created_at\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table \`callback_inbox\` drop index \`callback_inbox_created_idx\`;`);
    this.addSql(`alter table \`callback_log\` drop index \`callback_log_received_idx\`;`);
    this.addSql(`alter table \`callback_log\` drop column \`body_sha256\`, drop column \`body_bytes\`, drop column \`body_form\`;`);
    // Back to the database's default collation (keys that differ only in case or trailing spaces
    // would then collide: the down migration fails on them rather than merging them).
    this.addSql(`alter table \`callback_log\` modify \`notification_id\` varchar(128) null;`);
    this.addSql(`alter table \`callback_inbox\` modify \`notification_id\` varchar(128) not null;`);
    this.addSql(`alter table \`refund\` modify \`merchant_refund_no\` varchar(64) not null;`);
    this.addSql(`alter table \`idempotency_record\` modify \`idempotency_key\` varchar(255) not null;`);
    this.addSql(`alter table \`payment\` modify \`merchant_order_no\` varchar(64) not null;`);
  }

}
