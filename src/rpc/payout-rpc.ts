/** SetSettlementAccount. (Placeholder until payouts land.) */
import { Code, ConnectError } from "@connectrpc/connect";
import type { SettlementRpcParts } from "./settlement-rpc.js";

export function createPayoutRpc(): SettlementRpcParts["payouts"] {
  return {
    async setSettlementAccount(): Promise<never> {
      throw new ConnectError("payouts are not built yet", Code.Unimplemented);
    },
  };
}
