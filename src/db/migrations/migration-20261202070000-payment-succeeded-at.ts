import { Migration } from '@mikro-orm/migrations';

/** Statuses of a payment whose success our records hold (payment-status.ts `PAID`), as they stood at this migration. */
const PAID_STATUSES = ['SUCCEEDED', 'REFUNDED'];

/**
 * `payment.succeeded_at`: when OUR records made the payment SUCCEEDED (the channel's own payment
 * time stays in `paid_at`). Settlement settles by it, so a success recorded late (a late callback,
 * an active query, a reconciliation repair) falls into the period of its recording, which is not
 * settled yet, instead of an earlier one that is. Rows paid before this column existed take their
 * paid time. The settlement index moves to it: (merchant, currency, succeeded_at) and then status,
 * amount and fee, so an order's totals and derived lines are read from the index alone.
 */
export class Migration20261202070000 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`payment\` add \`succeeded_at\` datetime(3) null;`);
    this.addSql(`update \`payment\` set \`succeeded_at\` = \`paid_at\` where \`status\` in (${PAID_STATUSES.map((status) => `'${status}'`).join(', ')});`);
    this.addSql(`alter table \`payment\` drop index \`payment_settlement_idx\`;`);
    this.addSql(`alter table \`payment\` add index \`payment_settlement_idx\`(\`merchant_id\`, \`currency\`, \`succeeded_at\`, \`status\`, \`amount\`, \`fee\`);`);

    // A hold names the order it was held from and, once released, the order that settled it.
    this.addSql(`alter table \`settlement_hold\` add \`settlement_id\` varchar(26) not null default '', add \`released_into_id\` varchar(26) null, add \`released_at\` datetime(3) null;`);
    this.addSql(`alter table \`settlement_hold\` alter \`settlement_id\` drop default;`);
    this.addSql(`alter table \`settlement_hold\` drop index \`settlement_hold_merchant_idx\`;`);
    this.addSql(`alter table \`settlement_hold\` add index \`settlement_hold_merchant_idx\`(\`merchant_id\`, \`currency\`, \`released_into_id\`);`);
    this.addSql(`alter table \`settlement_hold\` add index \`settlement_hold_order_idx\`(\`settlement_id\`);`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table \`settlement_hold\` drop index \`settlement_hold_order_idx\`;`);
    this.addSql(`alter table \`settlement_hold\` drop index \`settlement_hold_merchant_idx\`;`);
    this.addSql(`alter table \`settlement_hold\` add index \`settlement_hold_merchant_idx\`(\`merchant_id\`, \`currency\`);`);
    this.addSql(`alter table \`settlement_hold\` drop \`settlement_id\`, drop \`released_into_id\`, drop \`released_at\`;`);
    this.addSql(`alter table \`payment\` drop index \`payment_settlement_idx\`;`);
    this.addSql(`alter table \`payment\` add index \`payment_settlement_idx\`(\`merchant_id\`, \`currency\`, \`paid_at\`, \`status\`, \`amount\`, \`fee\`);`);
    this.addSql(`alter table \`payment\` drop \`succeeded_at\`;`);
  }

}
