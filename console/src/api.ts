// The console's only backend: the service's own gRPC API, spoken as gRPC-Web to the origin that
// served these files. Messages and service descriptors are generated from proto/ at build time,
// into the TypeScript client package (clients/typescript/src/gen, which tsconfig.json and
// vite.config.ts map @backoffice/webhooks-client/gen/ to); nothing here encodes or decodes
// protobuf by hand.

import { Code, ConnectError, createClient, createContextKey, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { WebhookAdmin } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/admin_pb";

const TOKEN_KEY = "webhooks-console.token";

/** The bearer token of this browser tab (sessionStorage: gone when the tab closes). */
export function getToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  const trimmed = token.trim();
  if (trimmed) sessionStorage.setItem(TOKEN_KEY, trimmed);
  else sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event(TOKEN_CHANGED));
}

/** Fired on window when the token changes. */
export const TOKEN_CHANGED = "webhooks-console:token-changed";
/** Fired on window when a call is answered UNAUTHENTICATED. */
export const UNAUTHENTICATED = "webhooks-console:unauthenticated";

/** Called with no arguments once a server-streaming call's response headers have arrived. */
export const onStreamOpen = createContextKey<(() => void) | undefined>(undefined, {
  description: "called when a stream's headers arrive",
});

const auth: Interceptor = (next) => async (req) => {
  const token = getToken();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    const res = await next(req);
    if (res.stream) req.contextValues.get(onStreamOpen)?.();
    return res;
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated) {
      window.dispatchEvent(new Event(UNAUTHENTICATED));
    }
    throw err;
  }
};

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [auth],
});

/** The WebhookAdmin client every screen uses. */
export const admin = createClient(WebhookAdmin, transport);
