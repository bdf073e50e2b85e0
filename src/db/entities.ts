/** Every entity of the service: the one list the ORM, the schema and the migrations are built from. */
import { CallbackInbox, CallbackLog } from "../callbacks/callback-entities.js";
import { Merchant } from "../merchants/merchant-entity.js";
import { OutboxEvent } from "../outbox/outbox-entity.js";
import { IdempotencyRecord, Payment, PaymentItem } from "../payments/payment-entity.js";

export const ENTITIES = [Merchant, Payment, PaymentItem, IdempotencyRecord, OutboxEvent, CallbackLog, CallbackInbox];
