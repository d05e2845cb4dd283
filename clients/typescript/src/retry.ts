// Retries of the calls the service config's retry policy covers, with the gRPC spec's
// exponential backoff (a random wait up to the current backoff), or the wait the service asked
// for in google.rpc.RetryInfo. Safe because every call that changes something is idempotent by
// a key (PublishEvent's idempotency_key, the admin mutations' request_id).
//
// A server stream is retried only until its first message: once the caller has read one, it
// resumes the stream itself, e.g. WatchDeliveries with the cursor of the last update it read.

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
    // A client stream cannot be replayed; a server stream's one request can.
    if (req.stream && req.method.methodKind !== "server_streaming") return next(req);
    const backoff = new Backoff(policy, req.signal);
    const messages = req.stream ? await collect(req.message) : [];
    const open = async () => {
      for (;;) {
        try {
          return await next(req.stream ? { ...req, message: createAsyncIterable(messages) } : req);
        } catch (err) {
          if (!(await backoff.retry(err))) throw err;
        }
      }
    };
    const res = await open();
    if (!res.stream) return res;
    return { ...res, message: retriedUntilFirst(res.message, backoff, open) };
  };
}

/**
 * The stream's messages; an error before the first one (after the headers arrived) still
 * belongs to opening the stream, so it is opened again, within the same attempts. The headers
 * the caller sees are the first attempt's.
 */
async function* retriedUntilFirst<T>(
  messages: AsyncIterable<T>,
  backoff: Backoff,
  open: () => Promise<{ message: unknown }>,
): AsyncGenerator<T> {
  for (;;) {
    const it = messages[Symbol.asyncIterator]();
    let head: IteratorResult<T>;
    try {
      head = await it.next();
    } catch (err) {
      if (!(await backoff.retry(err))) throw err;
      messages = (await open()).message as AsyncIterable<T>;
      continue;
    }
    if (head.done) return;
    yield head.value;
    // yield* passes a caller's early `break` on to the underlying stream, which then closes.
    yield* { [Symbol.asyncIterator]: () => it };
    return;
  }
}

/** The attempts of one call: whether to make another, and the wait before it. */
class Backoff {
  private made = 1;
  private backoffMs: number;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly signal: AbortSignal,
  ) {
    this.backoffMs = policy.initialBackoffMs;
  }

  /** After a failed attempt: waits and returns true when another attempt is due. */
  async retry(err: unknown): Promise<boolean> {
    const e = ConnectError.from(err);
    if (this.made >= this.policy.maxAttempts || !this.policy.retryableCodes.has(e.code) || this.signal.aborted) {
      return false;
    }
    const waitMs = retryDelayMs(e) ?? Math.random() * this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * this.policy.backoffMultiplier, this.policy.maxBackoffMs);
    this.made += 1;
    // The deadline covers every attempt: when it passes while waiting, the caller gets the
    // service's last answer, which says more than DEADLINE_EXCEEDED.
    return sleep(waitMs, this.signal);
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
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
