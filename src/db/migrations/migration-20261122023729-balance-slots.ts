import { Migration } from '@mikro-orm/migrations';

/** Cached merchant balances split over slots, so concurrent payments of one merchant do not queue on one row. */
export class Migration20261122023729 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`account_balance\` drop index \`account_balance_uq\`;`);
    this.addSql(`alter table \`account_balance\` add \`slot\` smallint not null default 0;`);
    this.addSql(`alter table \`account_balance\` add unique \`account_balance_uq\`(\`account\`, \`currency\`, \`slot\`);`);
  }

  override async down(): Promise<void> {
    // Fold the slots back into slot 0 before the one-row-per-account key returns.
    this.addSql(`update \`account_balance\` b join (select \`account\`, \`currency\`, sum(\`balance\`) as \`total\` from \`account_balance\` group by \`account\`, \`currency\`) t on t.\`account\` = b.\`account\` and t.\`currency\` = b.\`currency\` set b.\`balance\` = t.\`total\` where b.\`slot\` = 0;`);
    this.addSql(`delete from \`account_balance\` where \`slot\` <> 0;`);
    this.addSql(`alter table \`account_balance\` drop index \`account_balance_uq\`;`);
    this.addSql(`alter table \`account_balance\` drop column \`slot\`;`);
    this.addSql(`alter table \`account_balance\` add unique \`account_balance_uq\`(\`account\`, \`currency\`);`);
  }

}
