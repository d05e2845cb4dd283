// Pure helpers that turn API values into the words and numbers the screens show. No DOM, no
// network: unit-tested in format.test.ts.

import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AttemptErrorKind, AttemptTrigger } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/delivery_pb";
import { DeliveryStatus, Function as WebhookFunction } from "@backoffice/webhooks-client/gen/backoffice/webhooks/v1/webhook_pb";

/** The functions an admin can pick ("Select Function"), in the back office's order. */
export const FUNCTIONS: readonly WebhookFunction[] = [
  WebhookFunction.WITHDRAWAL,
  WebhookFunction.PROP_TRADING_PARTICIPATION,
  WebhookFunction.PROP_TRADING_LIVE_STAGE,
];

/** "Withdrawal", "Prop trading participation", "Prop trading live stage". */
export function functionLabel(fn: WebhookFunction): string {
  switch (fn) {
    case WebhookFunction.WITHDRAWAL:
      return "Withdrawal";
    case WebhookFunction.PROP_TRADING_PARTICIPATION:
      return "Prop trading participation";
    case WebhookFunction.PROP_TRADING_LIVE_STAGE:
      return "Prop trading live stage";
    default:
      return "Not set";
  }
}

/** The noun used in event labels: "Approve withdrawal – node 1", "Reject live stage request". */
export function functionNoun(fn: WebhookFunction): string {
  switch (fn) {
    case WebhookFunction.WITHDRAWAL:
      return "withdrawal";
    case WebhookFunction.PROP_TRADING_PARTICIPATION:
      return "participation";
    case WebhookFunction.PROP_TRADING_LIVE_STAGE:
      return "live stage request";
    default:
      return "request";
  }
}

/** Approval nodes sorted ascending, duplicates and zeros dropped. */
export function normalizeNodes(nodes: readonly number[]): number[] {
  return [...new Set(nodes.filter((n) => Number.isInteger(n) && n > 0))].sort((a, b) => a - b);
}

/**
 * The one-line summary of a webhook's selected events, as the list shows it:
 * "Approve node 1, 2 · Reject", "Approve node 3", "Reject", or "None".
 */
export function summarizeEvents(events: { approvalNodes: readonly number[]; rejection: boolean } | undefined): string {
  if (!events) return "None";
  const parts: string[] = [];
  const nodes = normalizeNodes(events.approvalNodes);
  if (nodes.length > 0) parts.push(`Approve node ${nodes.join(", ")}`);
  if (events.rejection) parts.push("Reject");
  return parts.length > 0 ? parts.join(" · ") : "None";
}

/** How many node checkboxes the form shows: at least 3, and always every selected node. */
export function visibleNodeCount(selected: readonly number[], shown = 3): number {
  return Math.max(shown, ...normalizeNodes(selected), 0);
}

export interface StatusInfo {
  label: string;
  /** CSS modifier: ok, warn, bad, muted. */
  tone: "ok" | "warn" | "bad" | "muted";
}

export function deliveryStatusInfo(status: DeliveryStatus): StatusInfo {
  switch (status) {
    case DeliveryStatus.PENDING:
      return { label: "Pending", tone: "warn" };
    case DeliveryStatus.SUCCEEDED:
      return { label: "Succeeded", tone: "ok" };
    case DeliveryStatus.FAILED:
      return { label: "Failed", tone: "bad" };
    case DeliveryStatus.SKIPPED:
      return { label: "Skipped", tone: "muted" };
    case DeliveryStatus.CANCELLED:
      return { label: "Cancelled", tone: "muted" };
    default:
      return { label: "None yet", tone: "muted" };
  }
}

/** The statuses the History filter offers. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  DeliveryStatus.PENDING,
  DeliveryStatus.SUCCEEDED,
  DeliveryStatus.FAILED,
  DeliveryStatus.SKIPPED,
  DeliveryStatus.CANCELLED,
];

export function triggerLabel(trigger: AttemptTrigger): string {
  switch (trigger) {
    case AttemptTrigger.SCHEDULED:
      return "Scheduled";
    case AttemptTrigger.RESEND:
      return "Resend";
    case AttemptTrigger.RECOVER:
      return "Recovery";
    default:
      return "Attempt";
  }
}

export function errorKindLabel(kind: AttemptErrorKind): string {
  switch (kind) {
    case AttemptErrorKind.TIMEOUT:
      return "Timed out";
    case AttemptErrorKind.CONNECT:
      return "Connection failed";
    case AttemptErrorKind.DNS:
      return "Host name did not resolve";
    case AttemptErrorKind.TLS:
      return "TLS handshake failed";
    case AttemptErrorKind.STATUS:
      return "Non-2xx answer";
    case AttemptErrorKind.REFUSED:
      return "Refused by the service's rules";
    case AttemptErrorKind.PROTOCOL:
      return "Not a readable HTTP answer";
    default:
      return "";
  }
}

/** A timestamp in the user's own time zone and locale; "—" when unset. */
export function formatTime(ts: Timestamp | undefined, locale?: string, timeZone?: string): string {
  if (!ts) return "—";
  return timestampDate(ts).toLocaleString(locale, timeZone ? { timeZone } : undefined);
}

/** The ISO form of a timestamp, for <time dateTime>. */
export function isoTime(ts: Timestamp | undefined): string | undefined {
  return ts ? timestampDate(ts).toISOString() : undefined;
}

/** Milliseconds in a protobuf Duration. */
export function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}

/** "35 ms", "1.20 s", "2 min 5 s"; "—" when unset. */
export function formatDuration(d: Duration | undefined): string {
  const ms = durationMs(d);
  if (ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes} min ${seconds} s`;
}

/** "512 B", "12.3 KB", "1.5 MB" (UTF-8 bytes of a string). */
export function formatSize(text: string): string {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Bodies longer than this start collapsed. */
export const LARGE_BODY_CHARS = 2000;

export function isLargeBody(text: string): boolean {
  return text.length > LARGE_BODY_CHARS || text.split("\n").length > 40;
}

/** JSON pretty-printed with two spaces; any other text unchanged. */
export function prettyBody(text: string): string {
  const trimmed = text.trim();
  if (!(trimmed.startsWith("{") || trimmed.startsWith("["))) return text;
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return text;
  }
}

/** A new signing secret in the Standard Webhooks form: "whsec_" + base64 of 32 random bytes. */
export function generateSecret(random: (bytes: Uint8Array) => Uint8Array = (b) => crypto.getRandomValues(b)): string {
  const bytes = random(new Uint8Array(32));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `whsec_${btoa(binary)}`;
}

/** The reason phrase of common HTTP status codes, for "500 Internal Server Error". */
export function httpStatusText(code: number): string {
  if (code === 0) return "No response";
  const names: Record<number, string> = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  return names[code] ? `${code} ${names[code]}` : String(code);
}

/** GitHub-style heading anchor: "Verifying the signature" → "verifying-the-signature". */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .trim()
    .replace(/<[^>]*>/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The credential settings of the webhook form, as far as the update mask is concerned. */
export interface CredentialEdits {
  /** Whether the header rows differ from the webhook's (names added, removed, renamed or a value typed). */
  headersChanged: boolean;
  clientCertPem: string;
  clientKeyPem: string;
  removeClientCert: boolean;
  serverCaPem: string;
  removeServerCa: boolean;
}

/**
 * The UpdateWebhook mask paths for the credential part of the form: a certificate and its key always
 * change together, and an untouched field is left out so its stored value stays.
 */
export function credentialPaths(edits: CredentialEdits): string[] {
  const paths: string[] = [];
  if (edits.headersChanged) paths.push("headers");
  if (edits.removeClientCert || edits.clientCertPem.trim() !== "" || edits.clientKeyPem.trim() !== "") {
    paths.push("client_certificate_pem", "client_key_pem");
  }
  if (edits.removeServerCa || edits.serverCaPem.trim() !== "") paths.push("server_ca_pem");
  return paths;
}

/** A JSON value of an audit diff in a few words: strings as they are, lists joined, the rest as JSON. */
function diffValue(value: unknown): string {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map(diffValue).join(", ");
  return JSON.stringify(value);
}

/**
 * An audit row's diff as one line per field: `name: Old → New` for a change, `name: New` for a
 * creation, `name: was Old` for a deletion, `(value changed)` when a secret-bearing field changed
 * (the trail never holds the secret itself), and `key: value` for an action's other facts.
 */
export function describeDiff(diff: Record<string, unknown> | undefined): string[] {
  if (!diff) return [];
  return Object.entries(diff).map(([key, value]) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const change = value as Record<string, unknown>;
      const parts: string[] = [];
      const has = (k: string) => Object.prototype.hasOwnProperty.call(change, k);
      if (has("before") && has("after")) parts.push(`${diffValue(change.before)} → ${diffValue(change.after)}`);
      else if (has("after")) parts.push(diffValue(change.after));
      else if (has("before")) parts.push(`was ${diffValue(change.before)}`);
      if (change.value === "changed") parts.push("(value changed)");
      if (parts.length === 0) parts.push(diffValue(change));
      return `${key}: ${parts.join(" ")}`;
    }
    return `${key}: ${diffValue(value)}`;
  });
}

/** What the console says about a webhook's health: fine, failing (attempts fail in a row), or disabled. */
export type WebhookHealth = "ok" | "failing" | "disabled";

/** A webhook's health from its fields: disabled wins, then any failed attempt in a row or an open circuit. */
export function webhookHealth(w: {
  enabled: boolean;
  consecutiveFailures: number;
  circuitOpenUntil?: unknown;
}): WebhookHealth {
  if (!w.enabled) return "disabled";
  if (w.consecutiveFailures > 0 || w.circuitOpenUntil) return "failing";
  return "ok";
}

/** The reason SetWebhookEnabled records: such a webhook was turned off on purpose, it is not failing. */
export const ADMIN_DISABLED_REASON = "disabled by an admin";

/** How many of `webhooks` are failing endpoints: failing, or disabled by the service (a 410, auto-disable). */
export function failingCount(
  webhooks: readonly { enabled: boolean; consecutiveFailures: number; circuitOpenUntil?: unknown; disabledReason: string }[],
): number {
  return webhooks.filter((w) => {
    const health = webhookHealth(w);
    return health === "failing" || (health === "disabled" && w.disabledReason !== ADMIN_DISABLED_REASON);
  }).length;
}
