/**
 * The simulator's control API (`/simulator/*`) can mark any trade paid, so it needs
 * `authorization: Bearer <control token>`; the channel routes keep their own authentication and
 * need no control token. The server listens on 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { testKeys } from "../support/test-app.js";

const TOKEN = "simulator-control-test-token-0123";

let simulator: Simulator;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: TOKEN });
});
afterAll(async () => {
  await simulator?.close();
});

/** Creates a card payment intent on the simulated acquirer (its own secret-key auth), returning its trade number. */
async function createCardTrade(orderNo: string): Promise<string> {
  const response = await fetch(`${simulator.url}/card/v1/payment_intents`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${testKeys().card.secretKey}`,
      "content-type": "application/x-www-form-urlencoded",
      "idempotency-key": `control-test-${orderNo}`,
    },
    body: new URLSearchParams({ amount: "500000", currency: "cny", "metadata[payment_no]": orderNo }).toString(),
  });
  expect(response.status).toBe(200);
  return orderNo;
}

describe("the simulator's control API", () => {
  it("listens on 127.0.0.1", () => {
    expect(new URL(simulator.url).hostname).toBe("127.0.0.1");
  });

  it("answers 401 without the token, with a wrong one, or with another scheme; 200 with the right one", async () => {
    const status = async (headers: Record<string, string>) => (await fetch(`${simulator.url}/simulator`, { headers })).status;
    expect(await status({})).toBe(401);
    expect(await status({ authorization: "Bearer wrong-token-wrong-token-00" })).toBe(401);
    expect(await status({ authorization: `Bearer ${TOKEN}x` })).toBe(401);
    expect(await status({ authorization: `Basic ${TOKEN}` })).toBe(401);
    expect(await status({ authorization: TOKEN })).toBe(401);
    const refused = await fetch(`${simulator.url}/simulator/faults`, { method: "POST", body: "{}" });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain("Bearer");
    expect(((await refused.json()) as { error: string }).error).toContain("SIMULATOR_CONTROL_TOKEN");
    expect(await status({ authorization: `Bearer ${TOKEN}` })).toBe(200);
  });

  it("does not mark a trade paid without the token, and does with it", async () => {
    const orderNo = await createCardTrade(`P-control-${Date.now()}`);
    const trade = simulator.listTrades("card").find((t) => t.outTradeNo === orderNo);
    expect(trade).toBeDefined();
    const payUrl = `${simulator.url}/simulator/card/trades/${encodeURIComponent(trade!.outTradeNo)}/pay`;
    expect((await fetch(payUrl, { method: "POST" })).status).toBe(401);
    expect((await fetch(payUrl, { method: "POST", headers: { authorization: "Bearer not-the-control-token" } })).status).toBe(401);
    expect(simulator.getTrade("card", trade!.outTradeNo)?.state).not.toBe("paid");
    const paid = await fetch(payUrl, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(paid.status).toBe(200);
    expect(((await paid.json()) as { state: string }).state).toBe("paid");
  });

  it("leaves the channel routes to their own authentication", async () => {
    // No control token needed, but the acquirer's secret key is.
    const noKey = await fetch(`${simulator.url}/card/v1/payment_intents`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(noKey.status).toBe(401);
    await createCardTrade(`P-wire-${Date.now()}`);
  });

  it("refuses to start with a control token shorter than 16 characters", async () => {
    await expect(startSimulator({ port: 0, keys: testKeys(), controlToken: "short" })).rejects.toThrow(/controlToken/);
  });
});
