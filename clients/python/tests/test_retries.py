"""The channel's deadline and retries, against a scripted EventIngest server on 127.0.0.1.

The real service cannot be made to fail on cue (or, yet, to send RetryInfo), so these run the
client over real gRPC against a small server that answers as each test scripts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from backoffice.webhooks.v1 import ingest_pb2_grpc
from backoffice_webhooks import Client, approval, ingest_pb2, retry_delay, service_config

from conftest import withdrawal

# What a scripted server does with call number n (1-based): answer, or abort.
Script = Callable[[int, grpc.ServicerContext], None]


class ScriptedIngest(ingest_pb2_grpc.EventIngestServicer):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls = 0
        self.lock = threading.Lock()

    def PublishEvent(
        self, request: ingest_pb2.PublishEventRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.PublishEventResponse:
        with self.lock:
            self.calls += 1
            n = self.calls
        self.script(n, context)
        return ingest_pb2.PublishEventResponse(
            event_id=f"event-{n}", event_type="withdrawal.approved"
        )

    def PublishEvents(
        self, request: ingest_pb2.PublishEventsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.PublishEventsResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")


def abort(context: grpc.ServicerContext, code: int, message: str, *details: object) -> None:
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)  # type: ignore[arg-type]
        packed.append(wrapped)
    context.abort_with_status(
        rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))
    )


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], tuple[ScriptedIngest, str]]]:
    servers: list[grpc.Server] = []

    def start(script: Script) -> tuple[ScriptedIngest, str]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = ScriptedIngest(script)
        ingest_pb2_grpc.add_EventIngestServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(grace=None)


def event() -> ingest_pb2.PublishEventRequest:
    return approval(withdrawal("wd-1"), node=1, idempotency_key="key-1")


def max_attempts() -> int:
    policy = service_config()["methodConfig"][0]["retryPolicy"]
    return int(policy["maxAttempts"])


def test_unavailable_is_retried_until_an_answer(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    def script(n: int, context: grpc.ServicerContext) -> None:
        if n <= 2:
            abort(context, code_pb2.UNAVAILABLE, "the database is unavailable; retry later")

    server, address = scripted(script)
    with Client.connect(address) as client:
        answer = client.publish(event())
    assert answer.event_id == "event-3"
    assert server.calls == 3


def test_retries_stop_after_the_configured_attempts(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    def script(n: int, context: grpc.ServicerContext) -> None:
        abort(context, code_pb2.RESOURCE_EXHAUSTED, "ingest rate limit for this token exceeded")

    server, address = scripted(script)
    with Client.connect(address) as client, pytest.raises(grpc.RpcError) as caught:
        client.publish(event())
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert server.calls == max_attempts() == 5


def test_invalid_argument_is_not_retried(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    def script(n: int, context: grpc.ServicerContext) -> None:
        abort(context, code_pb2.INVALID_ARGUMENT, "withdrawal.amount: must be positive")

    server, address = scripted(script)
    with Client.connect(address) as client, pytest.raises(grpc.RpcError):
        client.publish(event())
    assert server.calls == 1


def test_retry_info_delay_is_waited_before_retrying(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    # Refuses for 2 s from the first call, saying how long is left: longer than grpc's own
    # backoff for all five attempts can wait (0.1 + 0.2 + 0.4 + 0.8 s at most).
    window = 2.0
    first: list[float] = []

    def script(n: int, context: grpc.ServicerContext) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
        left = first[0] + window - now
        if left > 0:
            delay = duration_pb2.Duration()
            delay.FromTimedelta(timedelta(seconds=left))
            abort(
                context,
                code_pb2.RESOURCE_EXHAUSTED,
                "ingest rate limit for this token exceeded",
                error_details_pb2.RetryInfo(retry_delay=delay),
            )

    server, address = scripted(script)
    began = time.monotonic()
    with Client.connect(address) as client:
        answer = client.publish(event())
    assert answer.event_type == "withdrawal.approved"
    assert time.monotonic() - began >= window
    assert server.calls > 1


def test_retry_delay_reads_retry_info(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    def script(n: int, context: grpc.ServicerContext) -> None:
        abort(
            context,
            code_pb2.FAILED_PRECONDITION,
            "try later",
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=7)),
        )

    _, address = scripted(script)
    with Client.connect(address) as client, pytest.raises(grpc.RpcError) as caught:
        client.publish(event())
    assert retry_delay(caught.value) == 7.0


def test_token_goes_as_a_bearer_header_even_in_plaintext_to_loopback(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    seen: list[str] = []

    def script(n: int, context: grpc.ServicerContext) -> None:
        seen.extend(str(v) for k, v in context.invocation_metadata() if k == "authorization")

    _, address = scripted(script)
    with Client.connect(address, token="ingest-token-0123") as client:
        client.publish(event())
    assert seen == ["Bearer ingest-token-0123"]


def test_default_deadline_ends_a_slow_call(
    scripted: Callable[[Script], tuple[ScriptedIngest, str]],
) -> None:
    def script(n: int, context: grpc.ServicerContext) -> None:
        time.sleep(3)

    _, address = scripted(script)
    began = time.monotonic()
    with Client.connect(address, deadline=0.5) as client, pytest.raises(grpc.RpcError) as caught:
        client.publish(event())
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 2.5
