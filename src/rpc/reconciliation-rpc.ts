/** ReconcileChannel, ImportStatement and ListReconciliationRuns. (Placeholder until reconciliation lands.) */
import { Code, ConnectError } from "@connectrpc/connect";
import type { SettlementRpcParts } from "./settlement-rpc.js";

export function createReconciliationRpc(): SettlementRpcParts["reconciliation"] {
  const unimplemented = async (): Promise<never> => {
    throw new ConnectError("reconciliation is not built yet", Code.Unimplemented);
  };
  return { reconcileChannel: unimplemented, importStatement: unimplemented, listReconciliationRuns: unimplemented };
}
