"""One channel to the service with everything a caller needs: bearer token, TLS, a default
deadline and retries, and the stubs of both services on it."""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import grpc
from backoffice.webhooks.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    delivery_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
)

from .decisions import ClientRequest, approval, rejection
from .errors import retry_delay

ChannelOption = tuple[str, Any]

if TYPE_CHECKING:
    # What WatchDeliveries returns: an iterator of updates that is also a grpc.Call.
    DeliveryUpdates = grpc._CallIterator[delivery_pb2.DeliveryUpdate]


def service_config() -> dict[str, Any]:
    """The gRPC service config shared by every client of the service (clients/service-config.json,
    copied into this package when it was built): deadlines and the retry policy."""
    text = resources.files(__package__).joinpath("service-config.json").read_text()
    config: dict[str, Any] = json.loads(text)
    return config


@dataclass(frozen=True)
class Tls:
    """TLS to the service.

    `ca_file` is the CA bundle (PEM) that signed the service's certificate; unset, the
    system's roots are used (OpenSSL's default bundle, e.g. /etc/ssl/certs/ca-certificates.crt,
    else grpc's own). `cert_file` and `key_file` (PEM, both or neither) are a client certificate
    for a service that requires mutual TLS. `server_name` overrides the name the certificate is
    checked against (the host of the target otherwise).
    """

    ca_file: str | Path | None = None
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """grpc's channel credentials for these files."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("Tls: cert_file and key_file go together")
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file) if self.ca_file else _system_roots(),
            private_key=_read(self.key_file) if self.key_file else None,
            certificate_chain=_read(self.cert_file) if self.cert_file else None,
        )


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def _system_roots() -> bytes | None:
    # grpc does not read the operating system's store; OpenSSL's default bundle is that store on
    # Linux distributions. None lets grpc fall back to the roots it ships.
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return _read(candidate)
    return None


class _RetryPolicy(NamedTuple):
    max_attempts: int
    codes: frozenset[grpc.StatusCode]


def _policies(config: dict[str, Any]) -> dict[str, _RetryPolicy]:
    """The retry policy of each name in the config: `/Service/Method` or `/Service/`."""
    policies: dict[str, _RetryPolicy] = {}
    for method_config in config.get("methodConfig", []):
        policy = method_config.get("retryPolicy")
        if policy is None:
            continue
        parsed = _RetryPolicy(
            max_attempts=int(policy["maxAttempts"]),
            codes=frozenset(grpc.StatusCode[code] for code in policy["retryableStatusCodes"]),
        )
        for name in method_config.get("name", []):
            policies[f"/{name['service']}/{name.get('method', '')}"] = parsed
    return policies


class _CallDetails(
    NamedTuple(
        "_CallDetails",
        [
            ("method", str),
            ("timeout", "float | None"),
            ("metadata", Any),
            ("credentials", "grpc.CallCredentials | None"),
            ("wait_for_ready", "bool | None"),
            ("compression", "grpc.Compression | None"),
        ],
    ),
    grpc.ClientCallDetails,
):
    pass


class _RetryInfoPushback(grpc.UnaryUnaryClientInterceptor):
    """Honours `google.rpc.RetryInfo`. grpc retries by the service config with its own backoff
    and does not read RetryInfo; when a call still ends with a retryable code and the service
    said how long to wait, this waits that long (if the deadline leaves room) and calls again,
    up to the policy's maxAttempts times in all."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._policies = _policies(config)

    def _policy(self, method: str) -> _RetryPolicy | None:
        service = method.rsplit("/", 1)[0]
        return self._policies.get(method) or self._policies.get(f"{service}/")

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        if isinstance(method, bytes):
            method = method.decode()
        policy = self._policy(method)
        timeout = client_call_details.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        details = client_call_details
        attempt = 1
        while True:
            outcome = continuation(details, request)
            if policy is None or attempt >= policy.max_attempts:
                return outcome
            if not isinstance(outcome, grpc.RpcError) or outcome.code() not in policy.codes:
                return outcome
            delay = retry_delay(outcome)
            if delay is None:
                return outcome
            if deadline is not None:
                remaining = deadline - time.monotonic() - delay
                if remaining <= 0:
                    return outcome
                details = _CallDetails(
                    details.method,
                    remaining,
                    details.metadata,
                    details.credentials,
                    details.wait_for_ready,
                    details.compression,
                )
            time.sleep(delay)
            attempt += 1


class Client:
    """The WebhookAdmin and EventIngest stubs on one channel, and typed helpers.

    `admin` and `ingest` are the generated stubs (every RPC, typed by mypy-protobuf's stubs);
    calls through them get the token, the deadline and the retries of the channel. Close the
    client (or use it as a context manager) to close the channel.
    """

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.admin = admin_pb2_grpc.WebhookAdminStub(channel)
        self.ingest = ingest_pb2_grpc.EventIngestStub(channel)

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        token: str | None = None,
        tls: Tls | None = None,
        deadline: float | None = None,
        options: Sequence[ChannelOption] = (),
    ) -> Client:
        """Connects to `target` (`host:port`).

        `token` is sent as `authorization: Bearer <token>` on every call. With `tls`, the
        connection is TLS; without it, plaintext, which grpc allows with a token only to a
        loopback address (a local service), so a token never crosses a network in clear.
        `deadline` (seconds) replaces the default deadline of unary calls, the service
        config's 10 s; WatchDeliveries has none. Calls retry UNAVAILABLE and RESOURCE_EXHAUSTED
        by the shared service config, and honour RetryInfo.
        """
        config = service_config()
        if deadline is not None:
            if deadline <= 0:
                raise ValueError("deadline: must be positive")
            for method_config in config.get("methodConfig", []):
                if "timeout" in method_config:
                    method_config["timeout"] = f"{deadline:.3f}s"
        channel_options: list[ChannelOption] = [
            ("grpc.service_config", json.dumps(config)),
            ("grpc.enable_retries", 1),
        ]
        if tls is not None and tls.server_name:
            channel_options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel_options.extend(options)
        credentials: grpc.ChannelCredentials | None = None
        if tls is not None:
            credentials = tls.credentials()
        elif token is not None:
            credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        if token is not None and credentials is not None:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(token)
            )
        if credentials is None:
            channel = grpc.insecure_channel(target, options=channel_options)
        else:
            channel = grpc.secure_channel(target, credentials, options=channel_options)
        return cls(grpc.intercept_channel(channel, _RetryInfoPushback(config)))

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(
        self, event: ingest_pb2.PublishEventRequest, *, timeout: float | None = None
    ) -> ingest_pb2.PublishEventResponse:
        """Publishes one decision (built with `approval` or `rejection`). Retried calls are
        safe: a repeat of the same idempotency key answers `duplicate` with the first ids."""
        response: ingest_pb2.PublishEventResponse = self.ingest.PublishEvent(event, timeout=timeout)
        return response

    def publish_approval(
        self,
        request: ClientRequest,
        *,
        node: int,
        idempotency_key: str,
        timeout: float | None = None,
    ) -> ingest_pb2.PublishEventResponse:
        """Publishes the approval of `request` at approver level `node`."""
        event = approval(request, node=node, idempotency_key=idempotency_key)
        return self.publish(event, timeout=timeout)

    def publish_rejection(
        self, request: ClientRequest, *, idempotency_key: str, timeout: float | None = None
    ) -> ingest_pb2.PublishEventResponse:
        """Publishes the rejection of `request`."""
        event = rejection(request, idempotency_key=idempotency_key)
        return self.publish(event, timeout=timeout)

    def watch_deliveries(
        self, request: admin_pb2.WatchDeliveriesRequest | None = None, *, after_cursor: str = ""
    ) -> DeliveryUpdates:
        """Streams DeliveryUpdates (an iterator that is also a grpc.Call: `cancel()` ends it).

        Keep the `cursor` of the last update handled, and pass it as `after_cursor` when
        watching again: the service sends every update after it first, then the live tail.
        """
        watch = admin_pb2.WatchDeliveriesRequest()
        if request is not None:
            watch.CopyFrom(request)
        if after_cursor:
            watch.after_cursor = after_cursor
        updates: DeliveryUpdates = self.admin.WatchDeliveries(watch)
        return updates
