"""Typed builders of PublishEventRequest: one decision on one client request.

The rules the service enforces on the decision itself are checked here too, so a mistake fails
at the call site with a ValueError instead of a round trip: an approval names its approver level
(1 to 1000), a rejection names none.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Union

from backoffice.webhooks.v1 import ingest_pb2

#: The requests a decision can be about; the kind decides the event's function.
ClientRequest = Union[
    ingest_pb2.WithdrawalRequest,
    ingest_pb2.PropTradingParticipationRequest,
    ingest_pb2.PropTradingLiveStageRequest,
]

MAX_APPROVAL_NODE = 1000


def _event(
    request: ClientRequest,
    *,
    idempotency_key: str,
    decision: ingest_pb2.Decision.ValueType,
    occurred_at: datetime | None,
) -> ingest_pb2.PublishEventRequest:
    if not idempotency_key:
        raise ValueError("idempotency_key: must be set (1 to 200 characters, unique per event)")
    event = ingest_pb2.PublishEventRequest(idempotency_key=idempotency_key, decision=decision)
    if isinstance(request, ingest_pb2.WithdrawalRequest):
        event.withdrawal.CopyFrom(request)
    elif isinstance(request, ingest_pb2.PropTradingParticipationRequest):
        event.prop_trading_participation.CopyFrom(request)
    else:
        event.prop_trading_live_stage.CopyFrom(request)
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            raise ValueError("occurred_at: must be timezone-aware")
        event.occurred_at.FromDatetime(occurred_at.astimezone(timezone.utc))
    return event


def approval(
    request: ClientRequest,
    *,
    node: int,
    idempotency_key: str,
    occurred_at: datetime | None = None,
) -> ingest_pb2.PublishEventRequest:
    """The approval of `request` at approver level `node` (1-based): e.g. a
    `withdrawal.approved` event for a WithdrawalRequest. `occurred_at` unset means now."""
    if not 1 <= node <= MAX_APPROVAL_NODE:
        raise ValueError(f"approval_node: must be 1 to {MAX_APPROVAL_NODE}, not {node}")
    event = _event(
        request,
        idempotency_key=idempotency_key,
        decision=ingest_pb2.DECISION_APPROVED,
        occurred_at=occurred_at,
    )
    event.approval_node = node
    return event


def rejection(
    request: ClientRequest,
    *,
    idempotency_key: str,
    occurred_at: datetime | None = None,
) -> ingest_pb2.PublishEventRequest:
    """The rejection of `request` (at whatever level): e.g. a `withdrawal.rejected` event.
    `occurred_at` unset means now."""
    return _event(
        request,
        idempotency_key=idempotency_key,
        decision=ingest_pb2.DECISION_REJECTED,
        occurred_at=occurred_at,
    )
