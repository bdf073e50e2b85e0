/** WatchPayment and StreamEvents (PaymentService, merchant). PLACEHOLDER: unimplemented so far. */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { UnitOfWork } from "../db/unit-of-work.js";
import type { EventFeed } from "../events/event-feed.js";
import type { EventsConfig } from "../config.js";
import type { PaymentService } from "../../gen/payments/v1/payment_service_pb.js";

export type EventRpc = Pick<ServiceImpl<typeof PaymentService>, "watchPayment" | "streamEvents">;

export interface EventRpcDeps {
  uow: UnitOfWork;
  feed: EventFeed;
  config: EventsConfig;
}

export function createEventRpc(_deps: EventRpcDeps): EventRpc {
  return {
    // biome-ignore lint/correctness/useYield: placeholder
    async *watchPayment() {
      throw new ConnectError("WatchPayment is not implemented yet", Code.Unimplemented);
    },
    // biome-ignore lint/correctness/useYield: placeholder
    async *streamEvents() {
      throw new ConnectError("StreamEvents is not implemented yet", Code.Unimplemented);
    },
  };
}
