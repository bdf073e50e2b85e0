/** Every entity of the service: the one list the ORM, the schema and the migrations are built from. */
import { CallbackInbox, CallbackLog } from "../callbacks/callback-entities.js";
import { ChannelCall } from "../channel-calls/channel-call-entity.js";
import { Discrepancy } from "../discrepancies/discrepancy-entity.js";
import { EventCursor } from "../events/event-cursor-entity.js";
import { FeeRule } from "../fees/fee-rule-entity.js";
import { AccountBalance, JournalEntry, JournalPosting } from "../ledger/ledger-entities.js";
import { Merchant } from "../merchants/merchant-entity.js";
import { OutboxEvent } from "../outbox/outbox-entity.js";
import { IdempotencyRecord, Payment, PaymentItem } from "../payments/payment-entity.js";
import { Payout, SettlementAccount } from "../payouts/payout-entities.js";
import { ReconciliationItem, ReconciliationRun } from "../reconciliation/reconciliation-entities.js";
import { Refund } from "../refunds/refund-entity.js";
import { JobLease } from "../settlement/job-lease-entity.js";
import { Settlement, SettlementHold, SettlementLine } from "../settlement/settlement-entity.js";
import { WebhookAttempt, WebhookDelivery } from "../webhooks/webhook-entities.js";

export const ENTITIES = [
  Merchant,
  Payment,
  PaymentItem,
  IdempotencyRecord,
  Refund,
  FeeRule,
  JournalEntry,
  JournalPosting,
  AccountBalance,
  Discrepancy,
  OutboxEvent,
  EventCursor,
  CallbackLog,
  CallbackInbox,
  SettlementAccount,
  Payout,
  Settlement,
  SettlementLine,
  SettlementHold,
  JobLease,
  ReconciliationRun,
  ReconciliationItem,
  WebhookDelivery,
  WebhookAttempt,
  ChannelCall,
];
