/**
 * The simulator's JSON control API under `/simulator` on the shared listener: list and inspect
 * trades, pay or scan one, set and clear faults. The listener checks the control token first.
 */
import type { ChannelName } from "../channels/channel.js";
import type { SimulatorResponse } from "./channel-side.js";
import type { SetFaultsRequest } from "./faults.js";
import { jsonResponse } from "./http-listener.js";
import type { Simulator } from "./simulator.js";
import { SimulatorControlError } from "./trade-store.js";

/** Answers `method /simulator/{segments}`; `requireChannel` throws 404 for a channel that is not simulated. */
export function handleControl(
  simulator: Simulator,
  timeScale: number,
  requireChannel: (channel: string) => ChannelName,
  request: { method: string; segments: string[]; query: URLSearchParams; rawBody: Buffer },
): SimulatorResponse {
  const { method, segments, query, rawBody } = request;
  const [resource, second, third, fourth] = segments;
  if (resource === undefined && method === "GET") {
    return jsonResponse(200, { channels: simulator.channels, channelUrls: simulator.channelUrls, timeScale });
  }
  if (resource === "faults" && second === undefined) {
    if (method === "GET") return jsonResponse(200, { scopes: simulator.listFaults() });
    if (method === "POST") {
      simulator.setFaults(parseJsonBody(rawBody) as SetFaultsRequest);
      return jsonResponse(200, { scopes: simulator.listFaults() });
    }
    if (method === "DELETE") {
      const channel = query.get("channel") ?? undefined;
      const outTradeNo = query.get("outTradeNo") ?? undefined;
      simulator.clearFaults({ channel: channel === undefined ? undefined : requireChannel(channel), outTradeNo });
      return jsonResponse(200, { scopes: simulator.listFaults() });
    }
  }
  if (resource !== undefined && resource !== "faults" && second === "trades") {
    const channel = requireChannel(resource);
    if (third === undefined && method === "GET") return jsonResponse(200, { trades: simulator.listTrades(channel) });
    if (third !== undefined && fourth === undefined && method === "GET") {
      const trade = simulator.getTrade(channel, third);
      if (!trade) throw new SimulatorControlError(404, `no ${channel} trade with out_trade_no ${JSON.stringify(third)}`);
      return jsonResponse(200, trade);
    }
    if (third !== undefined && fourth === "pay" && method === "POST") {
      const body = rawBody.length > 0 ? parseJsonBody(rawBody) : {};
      const outcome = (body as { outcome?: unknown }).outcome ?? "success";
      if (outcome !== "success" && outcome !== "fail") throw new SimulatorControlError(400, 'outcome must be "success" or "fail"');
      return jsonResponse(200, simulator.pay(channel, third, outcome));
    }
    if (third !== undefined && fourth === "scan" && method === "POST") return jsonResponse(200, simulator.scan(channel, third));
  }
  throw new SimulatorControlError(404, `no control route ${method} /simulator/${segments.join("/")}`);
}

function parseJsonBody(rawBody: Buffer): unknown {
  try {
    return JSON.parse(rawBody.toString("utf8"));
  } catch {
    throw new SimulatorControlError(400, "body is not valid JSON");
  }
}
