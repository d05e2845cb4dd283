"""What a failed call says beyond its code: the google.rpc details in its trailers.

The service attaches a `google.rpc.BadRequest` to every INVALID_ARGUMENT (the field as the
request spelled it, and the rule it breaks), and may attach `google.rpc.RetryInfo` (how long to
wait before retrying) and `google.rpc.ErrorInfo` (a machine-readable reason) to others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

_Detail = TypeVar("_Detail", bound=Message)


@dataclass(frozen=True)
class FieldViolation:
    """One broken rule: `field` is the request field's path (`webhook.destination_url`,
    `withdrawal.amount`), `rule` what it must be."""

    field: str
    rule: str


def status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The call's `google.rpc.Status`, or None when it sent none (or is not a finished call)."""
    if not isinstance(error, grpc.Call):
        return None
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except ValueError:
        # A status whose code or message disagree with the call's: not one to trust.
        return None
    return status


def _details(error: grpc.RpcError, kind: type[_Detail]) -> list[_Detail]:
    status = status_of(error)
    if status is None:
        return []
    found = []
    for detail in status.details:
        if detail.TypeName() == kind.DESCRIPTOR.full_name:
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


def field_violations(error: grpc.RpcError) -> list[FieldViolation]:
    """The `google.rpc.BadRequest` field violations of an INVALID_ARGUMENT, in the order sent;
    empty for any other error."""
    return [
        FieldViolation(field=violation.field, rule=violation.description)
        for bad_request in _details(error, error_details_pb2.BadRequest)
        for violation in bad_request.field_violations
    ]


def retry_delay(error: grpc.RpcError) -> float | None:
    """Seconds the service asks the caller to wait before retrying (`google.rpc.RetryInfo`), or
    None when it did not say."""
    for info in _details(error, error_details_pb2.RetryInfo):
        if info.HasField("retry_delay"):
            return max(0.0, info.retry_delay.ToTimedelta().total_seconds())
    return None


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The `google.rpc.ErrorInfo` (reason, domain, metadata) of the error, if it has one."""
    infos = _details(error, error_details_pb2.ErrorInfo)
    return infos[0] if infos else None
