/** The simulated acquirer keeps a bounded number of webhook endpoints: past it a create is refused. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { MAX_WEBHOOK_ENDPOINTS } from "../../src/simulator/card/card-webhooks.js";
import { type Simulator, startSimulator } from "../../src/simulator/simulator.js";
import { testKeys } from "../support/test-app.js";

let simulator: Simulator;

beforeAll(async () => {
  simulator = await startSimulator({ port: 0, keys: testKeys(), timeScale: 0.001, controlToken: "webhook-endpoints-test-control-token" });
});
afterAll(() => simulator?.close());

function createEndpoint(n: number) {
  return fetch(`${simulator.channelUrls.card}/v1/webhook_endpoints`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${testKeys().card.secretKey}`,
      "content-type": "application/x-www-form-urlencoded",
      "idempotency-key": `endpoint-${n}`,
    },
    body: new URLSearchParams({ url: `http://127.0.0.1:9/hook-${n}`, "enabled_events[]": "*" }).toString(),
  });
}

it(`refuses a webhook endpoint past ${MAX_WEBHOOK_ENDPOINTS}, and takes one again after a delete`, async () => {
  let lastId = "";
  for (let n = 0; n < MAX_WEBHOOK_ENDPOINTS; n++) {
    const created = await createEndpoint(n);
    const body = (await created.json()) as { id: string };
    expect(created.status, JSON.stringify(body)).toBe(200);
    lastId = body.id;
  }
  const refused = await createEndpoint(MAX_WEBHOOK_ENDPOINTS);
  expect(refused.status).toBe(400);
  expect(await refused.json()).toMatchObject({ error: { type: "invalid_request_error", message: expect.stringContaining("maximum") } });
  const deleted = await fetch(`${simulator.channelUrls.card}/v1/webhook_endpoints/${lastId}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${testKeys().card.secretKey}` },
  });
  expect(deleted.status).toBe(200);
  expect((await createEndpoint(MAX_WEBHOOK_ENDPOINTS + 1)).status).toBe(200);
});
