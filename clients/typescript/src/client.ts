// A client of the webhooks service for Node.js: the generated WebhookAdmin and EventIngest
// clients over connect-node's gRPC transport (HTTP/2), with a bearer token, TLS, the shared
// service config's deadlines and retries, and a typed way to publish a decision.

import type { DescMethod } from "@bufbuild/protobuf";
import { type CallOptions, type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { WebhookAdmin } from "./gen/backoffice/webhooks/v1/admin_pb.js";
import { EventIngest, type PublishEventResponse } from "./gen/backoffice/webhooks/v1/ingest_pb.js";
import { type DecisionInput, decisionRequest } from "./publish.js";
import { retryInterceptor } from "./retry.js";
import { defaultServiceConfig, type ServiceConfig } from "./service-config.js";

/** TLS settings; PEM text (or its bytes), as `readFileSync` returns it. */
export interface TlsOptions {
  /** CA certificates the server's certificate must chain to; unset: Node.js's public roots. */
  ca?: string | Buffer;
  /** A client certificate (chain) for a service that requires mutual TLS, with `key`. */
  cert?: string | Buffer;
  /** The client certificate's private key. */
  key?: string | Buffer;
  /** The name the server's certificate must carry, when not the address's host. */
  serverName?: string;
}

/** How to reach the service. */
export interface ClientOptions {
  /** The service's gRPC address: "https://webhooks.internal:50051" (TLS) or "http://..." (plaintext). */
  address: string;
  /** The bearer token (an admin, ingest or viewer token) sent with every call. */
  token?: string;
  /** TLS settings, for an https:// address. */
  tls?: TlsOptions;
  /** The deadline of each unary call, overriding the service config's (10 s); a per-call `timeoutMs` wins. */
  deadlineMs?: number;
  /**
   * The retry policies and default deadlines; default: clients/service-config.json. `false`:
   * none (no retries; a deadline only from `deadlineMs`).
   */
  serviceConfig?: ServiceConfig | false;
  /** More interceptors, run inside the token and retry ones (so once per attempt). */
  interceptors?: Interceptor[];
}

/** The service's two APIs on one HTTP/2 connection. */
export interface WebhooksClient {
  /** Webhooks and deliveries: create, list, watch, resend, ... */
  admin: Client<typeof WebhookAdmin>;
  /** Publishing decisions. */
  ingest: Client<typeof EventIngest>;
  /** Publishes one decision (PublishEvent). */
  publishDecision(decision: DecisionInput, options?: CallOptions): Promise<PublishEventResponse>;
  /** Closes the connection (open streams end with an error). */
  close(): void;
}

/** Connects to the service (lazily: the connection opens with the first call). */
export function createWebhooksClient(options: ClientOptions): WebhooksClient {
  const url = new URL(options.address);
  const tls = options.tls ?? {};
  const nodeOptions =
    url.protocol === "https:"
      ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName, ALPNProtocols: ["h2"] }
      : {};
  const sessionManager = new Http2SessionManager(url, {}, nodeOptions);
  const config = options.serviceConfig === undefined ? defaultServiceConfig() : options.serviceConfig;

  const interceptors: Interceptor[] = [];
  if (config) interceptors.push(retryInterceptor((method) => config.forMethod(method).retryPolicy));
  if (options.token) interceptors.push(bearer(options.token));
  interceptors.push(...(options.interceptors ?? []));

  const deadlineOf = (method: DescMethod) => {
    const configured = config ? config.forMethod(method).timeoutMs : undefined;
    return method.methodKind === "unary" ? (options.deadlineMs ?? configured) : configured;
  };
  const transport = withDeadlines(
    createGrpcTransport({ baseUrl: url.toString(), sessionManager, interceptors }),
    deadlineOf,
  );
  const ingest = createClient(EventIngest, transport);
  return {
    admin: createClient(WebhookAdmin, transport),
    ingest,
    publishDecision: (decision, callOptions) => ingest.publishEvent(decisionRequest(decision), callOptions),
    close: () => sessionManager.abort(),
  };
}

/** Sends `authorization: Bearer <token>` with every call. */
function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/**
 * The transport with each method's default deadline (connect's own default would apply to
 * streams too, and a WatchDeliveries stream has none). A call's own timeoutMs still wins.
 */
function withDeadlines(transport: Transport, deadlineOf: (method: DescMethod) => number | undefined): Transport {
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, timeoutMs ?? deadlineOf(method), header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, timeoutMs ?? deadlineOf(method), header, input, contextValues),
  };
}
