// The error details the service attaches (google.rpc.BadRequest on INVALID_ARGUMENT,
// google.rpc.RetryInfo on RESOURCE_EXHAUSTED and UNAVAILABLE), decoded with the messages
// generated from the vendored proto/google/rpc/error_details.proto.

import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** One rule a request broke: the field's path and the rule, as the service words it. */
export interface FieldViolation {
  /** The field's path in the request, e.g. "webhook.destination_url". */
  field: string;
  /** What the field must be, e.g. "must be an https:// URL". */
  rule: string;
}

/**
 * The field violations of an INVALID_ARGUMENT error, in the order the service gave them; empty
 * for any other error (or one without a BadRequest detail).
 */
export function fieldViolations(err: unknown): FieldViolation[] {
  const e = ConnectError.from(err);
  if (e.code !== Code.InvalidArgument) return [];
  return e
    .findDetails(BadRequestSchema)
    .flatMap((detail) => detail.fieldViolations.map((v) => ({ field: v.field, rule: v.description })));
}

/** How long the service asked the caller to wait (google.rpc.RetryInfo), if it did. */
export function retryDelayMs(err: unknown): number | undefined {
  const info = ConnectError.from(err).findDetails(RetryInfoSchema)[0];
  const delay = info?.retryDelay;
  if (!delay) return undefined;
  return Number(delay.seconds) * 1000 + delay.nanos / 1e6;
}
