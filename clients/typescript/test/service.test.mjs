// The package against the real webhooks service, over TLS with a client certificate and a
// bearer token: create a webhook, publish decisions, read the history, resend, watch and resume
// by cursor, and a bad request's field violations. Run by tests/clients/typescript.rs, which
// starts the service and a receiver and passes them in:
//
//   WEBHOOKS_SERVER        https://127.0.0.1:<port>
//   WEBHOOKS_TOKEN         an admin token
//   WEBHOOKS_CA_CERT       the CA of the service's certificate (PEM file)
//   WEBHOOKS_CLIENT_CERT   a client certificate the service accepts (PEM file), and its
//   WEBHOOKS_CLIENT_KEY    key
//   WEBHOOKS_RECEIVER_URL  an HTTP receiver answering 204, the webhooks' destination

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import {
  AttemptTrigger,
  Code,
  ConnectError,
  createWebhooksClient,
  DeliveryStatus,
  fieldViolations,
  Function as WebhookFunction,
  UpdateKind,
} from "../dist/index.js";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests with \`cargo test --test clients typescript\``);
  return value;
}

const options = {
  address: env("WEBHOOKS_SERVER"),
  token: env("WEBHOOKS_TOKEN"),
  tls: {
    ca: readFileSync(env("WEBHOOKS_CA_CERT")),
    cert: readFileSync(env("WEBHOOKS_CLIENT_CERT")),
    key: readFileSync(env("WEBHOOKS_CLIENT_KEY")),
  },
};
const receiver = env("WEBHOOKS_RECEIVER_URL");

/** Runs `body` with a client, closed afterwards. */
async function withClient(body, extra = {}) {
  const client = createWebhooksClient({ ...options, ...extra });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** A withdrawal webhook (approvals at node 1, rejections) to the receiver. */
async function createHook(client, name) {
  const { webhook, secret } = await client.admin.createWebhook({
    webhook: {
      name,
      destinationUrl: `${receiver}/${name}`,
      function: WebhookFunction.WITHDRAWAL,
      events: { approvalNodes: [1], rejection: true },
    },
  });
  assert.match(secret, /^whsec_/);
  return webhook;
}

function withdrawal(requestId) {
  return { id: requestId, clientId: "C-1001", clientName: "Ana Lima", amount: "1250.00", currency: "EUR" };
}

/** Polls `check` until it returns something truthy, for at most 20 s. */
async function eventually(what, check) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * The id of the delivery a publish queued for `hook`: a decision gets one per matching webhook,
 * and the tests' webhooks all take approvals at node 1.
 */
async function deliveryFor(client, published, hook) {
  for (const id of published.deliveryIds) {
    if ((await client.admin.getDelivery({ id })).webhookId === hook.id) return id;
  }
  assert.fail(`none of ${published.deliveryIds} is a delivery to ${hook.id}`);
}

async function succeeded(client, deliveryId) {
  return eventually(`delivery ${deliveryId} to succeed`, async () => {
    const delivery = await client.admin.getDelivery({ id: deliveryId });
    return delivery.status === DeliveryStatus.SUCCEEDED && delivery;
  });
}

test("a decision published for a webhook is delivered, and a repeat of it is a duplicate", () =>
  withClient(async (client) => {
    const hook = await createHook(client, "delivered");
    const decision = {
      idempotencyKey: "withdrawal-WD-TS-DELIVERED-approved-1",
      approved: { node: 1 },
      withdrawal: withdrawal("WD-TS-DELIVERED"),
    };
    const published = await client.publishDecision(decision);
    assert.equal(published.eventType, "withdrawal.approved");
    assert.equal(published.duplicate, false);

    const again = await client.publishDecision(decision);
    assert.equal(again.duplicate, true);
    assert.equal(again.eventId, published.eventId);

    const delivery = await succeeded(client, await deliveryFor(client, published, hook));
    assert.equal(delivery.webhookId, hook.id);
    assert.equal(delivery.requestId, "WD-TS-DELIVERED");
    assert.equal(delivery.attempts.at(-1)?.responseStatus, 204);
  }));

test("the history lists a webhook's deliveries, and a resent one is attempted again", () =>
  withClient(async (client) => {
    const hook = await createHook(client, "history");
    const approved = await client.publishDecision({
      idempotencyKey: "withdrawal-WD-TS-HISTORY-1-approved-1",
      approved: { node: 1 },
      withdrawal: withdrawal("WD-TS-HISTORY-1"),
    });
    const rejected = await client.publishDecision({
      idempotencyKey: "withdrawal-WD-TS-HISTORY-2-rejected",
      rejected: true,
      withdrawal: withdrawal("WD-TS-HISTORY-2"),
    });
    await succeeded(client, await deliveryFor(client, approved, hook));
    const rejectedId = await deliveryFor(client, rejected, hook);
    await succeeded(client, rejectedId);

    const { deliveries } = await client.admin.listDeliveries({ webhookId: hook.id });
    assert.deepEqual(deliveries.map((d) => d.eventType).sort(), ["withdrawal.approved", "withdrawal.rejected"]);

    const resent = await client.admin.resendDelivery({ id: rejectedId });
    assert.equal(resent.id, rejectedId);
    const attempts = await eventually("the resend's attempt", async () => {
      const delivery = await client.admin.getDelivery({ id: resent.id });
      return delivery.status === DeliveryStatus.SUCCEEDED && delivery.attempts.length === 2 && delivery.attempts;
    });
    assert.deepEqual(
      attempts.map((a) => a.trigger).sort(),
      [AttemptTrigger.SCHEDULED, AttemptTrigger.RESEND].sort(),
    );
  }));

/**
 * Watches `webhookId`'s updates after `cursor` until `until(update)`; returns what it read. Resolves
 * `opened` once the stream is open (its headers arrived), so a test can act only then.
 */
async function watchUntil(client, webhookId, cursor, until, opened = () => {}) {
  const read = [];
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(new Error(`no end of watch after ${read.length} updates`)), 20_000);
  try {
    for await (const update of client.admin.watchDeliveries(
      { webhookId, afterCursor: cursor },
      { signal: stop.signal, onHeader: () => opened() },
    )) {
      read.push(update);
      if (until(update)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return read;
}

test("a watch resumed from a cursor gets the updates it missed and none it had read", () =>
  withClient(async (client) => {
    const hook = await createHook(client, "watched");
    const succeededFor = (requestId) => (u) =>
      u.kind === UpdateKind.ATTEMPT_SUCCEEDED && u.delivery?.requestId === requestId;
    const publish = (requestId) =>
      client.publishDecision({
        idempotencyKey: `withdrawal-${requestId}-approved-1`,
        approved: { node: 1 },
        withdrawal: withdrawal(requestId),
      });

    // From now: once the stream is open, publish, and read until that delivery succeeded.
    let publishing;
    const first = await watchUntil(client, hook.id, "", succeededFor("WD-TS-WATCH-1"), () => {
      publishing = publish("WD-TS-WATCH-1");
    });
    await publishing;
    assert.equal(first[0].kind, UpdateKind.CREATED);
    const cursor = first.at(-1).cursor;

    // Not watching: another decision is delivered.
    const missedId = await deliveryFor(client, await publish("WD-TS-WATCH-2"), hook);
    await succeeded(client, missedId);

    // Resumed after the cursor: the missed delivery's updates, from its creation on.
    const resumed = await watchUntil(client, hook.id, cursor, succeededFor("WD-TS-WATCH-2"));
    assert.equal(resumed[0].kind, UpdateKind.CREATED);
    assert.ok(
      resumed.every((u) => u.delivery?.id === missedId),
      `only the missed delivery's updates: ${resumed.map((u) => `${u.cursor} ${u.delivery?.requestId}`)}`,
    );
    const seen = new Set(first.map((u) => u.cursor));
    assert.ok(!resumed.some((u) => seen.has(u.cursor)), "no update read before comes again");
  }));

test("a bad webhook is refused with INVALID_ARGUMENT naming each field and its rule", () =>
  withClient(async (client) => {
    const err = await client.admin
      .createWebhook({
        webhook: {
          name: "bad-url",
          destinationUrl: "not a url",
          function: WebhookFunction.WITHDRAWAL,
          events: { approvalNodes: [1] },
        },
      })
      .then(
        () => assert.fail("a webhook with destination_url 'not a url' was created"),
        (e) => e,
      );
    assert.equal(ConnectError.from(err).code, Code.InvalidArgument);
    const violations = fieldViolations(err);
    const rule = violations.find((v) => v.field === "webhook.destination_url")?.rule;
    assert.ok(rule, `a violation of webhook.destination_url among ${JSON.stringify(violations)}`);
  }));

test("without the token the service refuses the call", () =>
  withClient(
    async (client) => {
      await assert.rejects(client.admin.listWebhooks({}), (err) => {
        assert.equal(ConnectError.from(err).code, Code.Unauthenticated);
        return true;
      });
    },
    { token: undefined },
  ));
