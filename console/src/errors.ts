// Errors from the API in words for the screens: the status code's meaning, and the
// google.rpc.BadRequest field violations that INVALID_ARGUMENT carries (decoded with the schema
// generated from google/rpc/error_details.proto). No DOM: unit-tested in errors.test.ts.

import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@backoffice/webhooks-client/gen/google/rpc/error_details_pb";

export { Code, ConnectError };

/** What went wrong with a call, in words for the screen. */
export interface Problem {
  code: Code;
  /** A sentence for a banner. */
  message: string;
  /** INVALID_ARGUMENT field violations: field path → rule, e.g. "webhook.name" → "is required". */
  fields: Record<string, string>;
}

/** Turns any error from a call into a Problem with a clear message. */
export function describeError(err: unknown): Problem {
  const e = ConnectError.from(err);
  // fetch() itself failed (connection refused, network down): the service cannot be reached.
  if (e.code === Code.Unknown && e.cause instanceof TypeError) {
    return {
      code: Code.Unavailable,
      message: problemMessage(Code.Unavailable, "the service could not be reached"),
      fields: {},
    };
  }
  const fields: Record<string, string> = {};
  if (e.code === Code.InvalidArgument) {
    for (const detail of e.findDetails(BadRequestSchema)) {
      for (const v of detail.fieldViolations) {
        if (v.field && !(v.field in fields)) fields[v.field] = v.description;
      }
    }
  }
  return { code: e.code, message: problemMessage(e.code, e.rawMessage), fields };
}

/** The banner text for a status code and the server's message. Exported for tests. */
export function problemMessage(code: Code, serverMessage: string): string {
  const detail = serverMessage ? ` (${serverMessage})` : "";
  switch (code) {
    case Code.Unauthenticated:
      return `Not signed in: the service did not accept the access token (UNAUTHENTICATED)${detail}. Enter a valid token.`;
    case Code.PermissionDenied:
      return `Not allowed: this token's role may not do that (PERMISSION_DENIED)${detail}. Viewer tokens can only read and ingest tokens can only publish: sign in with an admin token.`;
    case Code.Unavailable:
      return `The service is unavailable (UNAVAILABLE)${detail}. It may be restarting, or its database may be unreachable: try again in a moment.`;
    case Code.InvalidArgument:
      return `The service refused the request: ${serverMessage || "invalid argument"}.`;
    case Code.NotFound:
      return `Not found: ${serverMessage || "it may have been deleted"}.`;
    case Code.FailedPrecondition:
      return `Not possible now: ${serverMessage}.`;
    case Code.Aborted:
      // A stale etag: someone saved this webhook after it was loaded here.
      return "Changed by someone else, reload: this webhook was changed after you opened it, and nothing was saved. Reload to see the current version, then make your change again.";
    case Code.DeadlineExceeded:
      return "The service took too long to answer (DEADLINE_EXCEEDED). Try again.";
    case Code.ResourceExhausted:
      return `Too many requests (RESOURCE_EXHAUSTED)${detail}. Wait a moment and try again.`;
    default:
      return `Something went wrong (${Code[code] ?? code})${detail}.`;
  }
}

/**
 * Maps an API field path to the form control it belongs to: "webhook.events.approval_nodes" →
 * "events", "webhook.destination_url" → "destination_url", "secret" → "secret".
 */
export function formFieldOf(path: string): string {
  const bare = path.replace(/^webhook\./, "");
  if (bare.startsWith("events")) return "events";
  return bare.split(/[.[]/)[0] ?? bare;
}
