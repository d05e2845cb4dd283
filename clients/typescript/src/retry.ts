// Retries of the calls the service config's retry policy covers, with the gRPC spec's
// exponential backoff (a random wait up to the current backoff), or the wait the service asked
// for in google.rpc.RetryInfo. Safe because every call that changes something is idempotent by
// a key (PublishEvent's idempotency_key, the admin mutations' request_id).
//
// A server stream is retried only while opening (before its first response): after that, the
// caller resumes it, e.g. WatchDeliveries with the cursor of the last update read.

import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { retryDelayMs } from "./errors.js";
import type { RetryPolicy } from "./service-config.js";

/** An interceptor retrying each call by the policy `policyFor` gives its method (none: no retry). */
export function retryInterceptor(policyFor: (method: DescMethod) => RetryPolicy | undefined): Interceptor {
  return (next) => async (req) => {
    const policy = policyFor(req.method);
    if (!policy || policy.maxAttempts < 2) return next(req);
    let attempt: () => ReturnType<typeof next>;
    if (req.stream) {
      // A client stream cannot be replayed; a server stream's one request can.
      if (req.method.methodKind !== "server_streaming") return next(req);
      const messages = await collect(req.message);
      attempt = () => next({ ...req, message: createAsyncIterable(messages) });
    } else {
      attempt = () => next(req);
    }
    let backoffMs = policy.initialBackoffMs;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const e = ConnectError.from(err);
        if (n >= policy.maxAttempts || !policy.retryableCodes.has(e.code) || req.signal.aborted) throw err;
        const waitMs = retryDelayMs(e) ?? Math.random() * backoffMs;
        backoffMs = Math.min(backoffMs * policy.backoffMultiplier, policy.maxBackoffMs);
        // The deadline covers every attempt: when it passes while waiting, the caller gets the
        // service's last answer, which says more than DEADLINE_EXCEEDED.
        if (!(await sleep(waitMs, req.signal))) throw err;
      }
    }
  };
}

/** Waits `ms`; false when `signal` aborts first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
