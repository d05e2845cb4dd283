// The client's call layer against a real gRPC server on 127.0.0.1 (connect-node's, HTTP/2, in
// this process) that answers as each test scripts it: retries by clients/service-config.json,
// google.rpc.RetryInfo honoured, deadlines, the bearer token. The flows against the webhooks
// service itself are in service.test.mjs.

import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createWebhooksClient,
  DeliveryUpdateSchema,
  EventIngest,
  PublishEventResponseSchema,
  WebhookAdmin,
} from "../dist/index.js";
import { RetryInfoSchema } from "../dist/gen/google/rpc/error_details_pb.js";

/** What the server does next: a function of the attempt (1-based) returning a response or throwing. */
let publishScript = () => create(PublishEventResponseSchema, {});
let watchScript = async function* () {};
const seen = { publish: [], watch: [] };

let server;
let address;

before(async () => {
  server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        router.service(EventIngest, {
          publishEvent(req, ctx) {
            seen.publish.push({ at: performance.now(), req, header: ctx.requestHeader });
            return publishScript(seen.publish.length);
          },
        });
        router.service(WebhookAdmin, {
          watchDeliveries(req, ctx) {
            seen.watch.push({ at: performance.now(), req, header: ctx.requestHeader });
            return watchScript(seen.watch.length);
          },
        });
      },
    }),
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `http://127.0.0.1:${server.address().port}`;
});

after(() => server.close());

function reset() {
  seen.publish.length = 0;
  seen.watch.length = 0;
}

/** Runs `body` with a new client of the scripted server (with `options`), closed afterwards. */
async function withClient(options, body) {
  const client = createWebhooksClient({ address, ...options });
  try {
    await body(client);
  } finally {
    client.close();
  }
}

const decision = {
  idempotencyKey: "withdrawal-WD-1-approved-1",
  approved: { node: 1 },
  withdrawal: { id: "WD-1", clientId: "C-1", amount: "10.00", currency: "EUR" },
};

test("RESOURCE_EXHAUSTED is retried until the server accepts", async () => {
  reset();
  publishScript = (n) => {
    if (n < 3) throw new ConnectError("slow down", Code.ResourceExhausted);
    return create(PublishEventResponseSchema, { eventId: "e-1" });
  };
  await withClient({}, async (client) => {
    const res = await client.publishDecision(decision);
    assert.equal(res.eventId, "e-1");
    assert.equal(seen.publish.length, 3);
    // Every attempt sends the same request, so the idempotency key makes the repeats harmless.
    assert.deepEqual(new Set(seen.publish.map((s) => s.req.idempotencyKey)), new Set([decision.idempotencyKey]));
  });
});

test("the wait before a retry is the one RetryInfo asks for", async () => {
  reset();
  publishScript = (n) => {
    if (n === 1) {
      throw new ConnectError("over the rate limit", Code.ResourceExhausted, undefined, [
        { desc: RetryInfoSchema, value: { retryDelay: { seconds: 0n, nanos: 600_000_000 } } },
      ]);
    }
    return create(PublishEventResponseSchema, {});
  };
  await withClient({}, async (client) => {
    await client.publishDecision(decision);
    assert.equal(seen.publish.length, 2);
    // Without RetryInfo the first retry waits at most the initial backoff, 0.1 s.
    const waited = seen.publish[1].at - seen.publish[0].at;
    assert.ok(waited >= 590, `retried after ${waited.toFixed(0)} ms, not after RetryInfo's 600 ms`);
  });
});

test("UNAVAILABLE is retried maxAttempts times, then the last error is thrown", async () => {
  reset();
  publishScript = () => {
    throw new ConnectError("database unreachable", Code.Unavailable);
  };
  await withClient({}, async (client) => {
    await assert.rejects(client.publishDecision(decision), (err) => {
      assert.equal(ConnectError.from(err).code, Code.Unavailable);
      return true;
    });
    assert.equal(seen.publish.length, 5, "service-config.json: maxAttempts 5");
  });
});

test("INVALID_ARGUMENT is not retried", async () => {
  reset();
  publishScript = () => {
    throw new ConnectError("bad", Code.InvalidArgument);
  };
  await withClient({}, async (client) => {
    await assert.rejects(client.publishDecision(decision), /bad/);
    assert.equal(seen.publish.length, 1);
  });
});

test("without a service config nothing is retried", async () => {
  reset();
  publishScript = () => {
    throw new ConnectError("slow down", Code.ResourceExhausted);
  };
  await withClient({ serviceConfig: false }, async (client) => {
    await assert.rejects(client.publishDecision(decision), /slow down/);
    assert.equal(seen.publish.length, 1);
  });
});

test("a unary call has the service config's 10 s deadline, or deadlineMs; a watch has none", async () => {
  reset();
  publishScript = () => create(PublishEventResponseSchema, {});
  watchScript = async function* () {};
  const byConfig = createWebhooksClient({ address });
  const byOption = createWebhooksClient({ address, deadlineMs: 2500 });
  try {
    await byConfig.publishDecision(decision);
    await byOption.publishDecision(decision);
    for await (const _ of byConfig.admin.watchDeliveries({})) {
      // The scripted stream is empty.
    }
    assert.equal(seen.publish[0].header.get("grpc-timeout"), "10000m");
    assert.equal(seen.publish[1].header.get("grpc-timeout"), "2500m");
    assert.equal(seen.watch[0].header.get("grpc-timeout"), null);
  } finally {
    byConfig.close();
    byOption.close();
  }
});

test("every call carries the bearer token", async () => {
  reset();
  publishScript = () => create(PublishEventResponseSchema, {});
  await withClient({ token: "ingest-token-0123456789" }, async (client) => {
    await client.publishDecision(decision);
    assert.equal(seen.publish[0].header.get("authorization"), "Bearer ingest-token-0123456789");
  });
});

test("a watch that fails to open with UNAVAILABLE is opened again with the same request", async () => {
  reset();
  watchScript = async function* (n) {
    if (n === 1) throw new ConnectError("restarting", Code.Unavailable);
    yield create(DeliveryUpdateSchema, { cursor: "c-8" });
    yield create(DeliveryUpdateSchema, { cursor: "c-9" });
  };
  await withClient({}, async (client) => {
    const cursors = [];
    for await (const update of client.admin.watchDeliveries({ afterCursor: "c-7" })) cursors.push(update.cursor);
    assert.deepEqual(cursors, ["c-8", "c-9"]);
    assert.deepEqual(
      seen.watch.map((s) => s.req.afterCursor),
      ["c-7", "c-7"],
    );
  });
});

test("a watch that fails after its first update is not retried: the caller resumes it", async () => {
  reset();
  watchScript = async function* () {
    yield create(DeliveryUpdateSchema, { cursor: "c-8" });
    throw new ConnectError("restarting", Code.Unavailable);
  };
  await withClient({}, async (client) => {
    const cursors = [];
    await assert.rejects(async () => {
      for await (const update of client.admin.watchDeliveries({})) cursors.push(update.cursor);
    }, /restarting/);
    assert.deepEqual(cursors, ["c-8"]);
    assert.equal(seen.watch.length, 1);
  });
});
