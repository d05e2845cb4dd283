"""The service under test comes from the environment: tests/clients/python.rs starts it (with
TLS, mutual TLS and an admin token) and a receiver, then runs pytest with these variables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from backoffice_webhooks import Client, Tls, admin_pb2, ingest_pb2, webhook_pb2


@dataclass(frozen=True)
class Service:
    """Where the service and the receiver are, and how to reach them."""

    address: str
    token: str
    tls: Tls
    receiver_url: str


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        # Not a skip: these tests exist to run against the service.
        raise RuntimeError(
            f"{name} is not set: run these tests through `cargo test --test clients`"
        )
    return value


@pytest.fixture(scope="session")
def service() -> Service:
    return Service(
        address=_env("WEBHOOKS_ADDRESS"),
        token=_env("WEBHOOKS_TOKEN"),
        tls=Tls(
            ca_file=_env("WEBHOOKS_CA_FILE"),
            cert_file=_env("WEBHOOKS_CLIENT_CERT"),
            key_file=_env("WEBHOOKS_CLIENT_KEY"),
        ),
        receiver_url=_env("WEBHOOKS_RECEIVER_URL"),
    )


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client.connect(service.address, token=service.token, tls=service.tls) as client:
        yield client


def unique(prefix: str) -> str:
    """An id no other test uses (the tests share one service and database)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def withdrawal(request_id: str, amount: str = "1250.00") -> ingest_pb2.WithdrawalRequest:
    """A withdrawal request as a back office would describe it."""
    return ingest_pb2.WithdrawalRequest(
        id=request_id,
        client_id="client-42",
        client_name="Ada Lovelace",
        amount=amount,
        currency="EUR",
        payment_method="bank_transfer",
    )


@pytest.fixture
def webhook(client: Client, service: Service) -> Iterator[webhook_pb2.Webhook]:
    """A webhook fired by withdrawal approvals at node 1, deleted after the test: the tests
    share one service, and a webhook left behind would receive the next test's events."""
    response = client.admin.CreateWebhook(
        admin_pb2.CreateWebhookRequest(
            webhook=webhook_pb2.Webhook(
                name=unique("python-client"),
                destination_url=service.receiver_url,
                function=webhook_pb2.FUNCTION_WITHDRAWAL,
                events=webhook_pb2.EventSelection(approval_nodes=[1]),
            )
        )
    )
    assert response.secret.startswith("whsec_")
    yield response.webhook
    client.admin.DeleteWebhook(admin_pb2.DeleteWebhookRequest(id=response.webhook.id))
