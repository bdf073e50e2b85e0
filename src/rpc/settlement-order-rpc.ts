/** RunSettlement, GetSettlement, ListSettlements and SubmitSettlement. (Placeholder until settlement orders land.) */
import { Code, ConnectError } from "@connectrpc/connect";
import type { SettlementRpcParts } from "./settlement-rpc.js";

export function createSettlementOrderRpc(): SettlementRpcParts["orders"] {
  const unimplemented = async (): Promise<never> => {
    throw new ConnectError("settlement orders are not built yet", Code.Unimplemented);
  };
  return { runSettlement: unimplemented, getSettlement: unimplemented, listSettlements: unimplemented, submitSettlement: unimplemented };
}
