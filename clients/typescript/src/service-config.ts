// The gRPC service config every client of the service shares (clients/service-config.json,
// copied into this package's dist/ by its build): per method, the default deadline and the retry
// policy. Only the parts this client acts on are read: methodConfig's name, timeout and
// retryPolicy.

import { readFileSync } from "node:fs";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";

/** A retry policy of the service config, in milliseconds and connect's codes. */
export interface RetryPolicy {
  /** Attempts in all, the first included (at least 2 for any retry). */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
  retryableCodes: ReadonlySet<Code>;
}

/** What the service config says about one method. */
export interface MethodConfig {
  /** The default deadline; undefined: none (WatchDeliveries, a stream). */
  timeoutMs?: number;
  retryPolicy?: RetryPolicy;
}

/** A parsed service config: the settings of any method. */
export interface ServiceConfig {
  forMethod(method: DescMethod): MethodConfig;
}

interface RawName {
  service?: string;
  method?: string;
}

interface RawMethodConfig {
  name?: RawName[];
  timeout?: string;
  retryPolicy?: {
    maxAttempts?: number;
    initialBackoff?: string;
    maxBackoff?: string;
    backoffMultiplier?: number;
    retryableStatusCodes?: string[];
  };
}

/** The service config shipped with this package (clients/service-config.json). */
export function defaultServiceConfig(): ServiceConfig {
  return loadServiceConfig(new URL("./service-config.json", import.meta.url));
}

/** Reads a gRPC service config (JSON) from a file. */
export function loadServiceConfig(path: string | URL): ServiceConfig {
  return parseServiceConfig(JSON.parse(readFileSync(path, "utf8")));
}

/** Parses a gRPC service config already read as JSON. Throws on a malformed duration or code. */
export function parseServiceConfig(json: unknown): ServiceConfig {
  const entries = ((json as { methodConfig?: RawMethodConfig[] })?.methodConfig ?? []).map((raw) => ({
    names: raw.name ?? [],
    config: {
      timeoutMs: raw.timeout === undefined ? undefined : durationMs(raw.timeout),
      retryPolicy: raw.retryPolicy && retryPolicy(raw.retryPolicy),
    } satisfies MethodConfig,
  }));
  return {
    forMethod(method) {
      const service = method.parent.typeName;
      // As gRPC resolves names: the method's own entry, else its service's, else a default.
      const exact = entries.find((e) => e.names.some((n) => n.service === service && n.method === method.name));
      const ofService = entries.find((e) => e.names.some((n) => n.service === service && !n.method));
      const fallback = entries.find((e) => e.names.some((n) => !n.service && !n.method));
      return (exact ?? ofService ?? fallback)?.config ?? {};
    },
  };
}

function retryPolicy(raw: NonNullable<RawMethodConfig["retryPolicy"]>): RetryPolicy {
  const codes = new Set<Code>();
  for (const name of raw.retryableStatusCodes ?? []) {
    // "RESOURCE_EXHAUSTED" → Code.ResourceExhausted.
    const key = name
      .toLowerCase()
      .replace(/(^|_)([a-z])/g, (_, _sep: string, c: string) => c.toUpperCase()) as keyof typeof Code;
    const code = Code[key];
    if (typeof code !== "number") throw new Error(`service config: unknown status code ${name}`);
    codes.add(code);
  }
  return {
    maxAttempts: raw.maxAttempts ?? 1,
    initialBackoffMs: durationMs(raw.initialBackoff ?? "0s"),
    maxBackoffMs: durationMs(raw.maxBackoff ?? "0s"),
    backoffMultiplier: raw.backoffMultiplier ?? 1,
    retryableCodes: codes,
  };
}

/** A proto3 JSON duration ("0.1s", "10s") in milliseconds. */
function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(text);
  if (!match) throw new Error(`service config: ${JSON.stringify(text)} is not a duration such as "0.1s"`);
  return Number(match[1]) * 1000;
}
