// Typed helpers for publishing a decision: the request's kind and the outcome are checked by the
// compiler (an approval names its approver level; a rejection cannot), and the message is built
// with the generated schema.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  Decision,
  type PropTradingLiveStageRequestSchema,
  type PropTradingParticipationRequestSchema,
  type PublishEventRequest,
  PublishEventRequestSchema,
  type WithdrawalRequestSchema,
} from "./gen/backoffice/webhooks/v1/ingest_pb.js";

/** Approved at an approver level (1-based "node N"), or rejected. */
export type Outcome = { approved: { node: number }; rejected?: never } | { rejected: true; approved?: never };

/** The request the decision is about: exactly one of the three kinds. */
export type Subject =
  | { withdrawal: MessageInitShape<typeof WithdrawalRequestSchema> }
  | { propTradingParticipation: MessageInitShape<typeof PropTradingParticipationRequestSchema> }
  | { propTradingLiveStage: MessageInitShape<typeof PropTradingLiveStageRequestSchema> };

/** One decision to publish. */
export type DecisionInput = Outcome &
  Subject & {
    /**
     * Unique per event, 1 to 200 characters, e.g. "withdrawal-WD-1001-approved-1": a retry with
     * the same key and content returns the first answer and queues nothing.
     */
    idempotencyKey: string;
    /** When the decision was taken; unset: now. */
    occurredAt?: Date;
  };

/** The PublishEventRequest of a decision. */
export function decisionRequest(input: DecisionInput): PublishEventRequest {
  const request = ((): MessageInitShape<typeof PublishEventRequestSchema>["request"] => {
    if ("withdrawal" in input) return { case: "withdrawal", value: input.withdrawal };
    if ("propTradingParticipation" in input) {
      return { case: "propTradingParticipation", value: input.propTradingParticipation };
    }
    return { case: "propTradingLiveStage", value: input.propTradingLiveStage };
  })();
  return create(PublishEventRequestSchema, {
    idempotencyKey: input.idempotencyKey,
    decision: input.approved ? Decision.APPROVED : Decision.REJECTED,
    approvalNode: input.approved?.node,
    occurredAt: input.occurredAt && timestampFromDate(input.occurredAt),
    request,
  });
}
