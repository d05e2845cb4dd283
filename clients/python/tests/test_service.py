"""The client against the real service: create a webhook, publish, watch and resume by cursor,
read the history, resend, and the field errors of bad requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc
import pytest

from backoffice_webhooks import (
    Client,
    admin_pb2,
    approval,
    delivery_pb2,
    field_violations,
    webhook_pb2,
)

from conftest import Service, unique, withdrawal

T = TypeVar("T")
PATIENCE = 30.0


def eventually(what: str, check: Callable[[], T | None]) -> T:
    """Polls `check` until it returns something, or fails after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_published_approval_is_delivered_and_watched_then_resumed_by_cursor(
    client: Client, webhook: webhook_pb2.Webhook
) -> None:
    watch = client.watch_deliveries(admin_pb2.WatchDeliveriesRequest(webhook_id=webhook.id))
    # The headers come once the service has subscribed: nothing published after is missed.
    watch.initial_metadata()
    published = client.publish_approval(
        withdrawal(unique("wd")), node=1, idempotency_key=unique("key")
    )
    assert published.event_type == "withdrawal.approved"
    assert not published.duplicate
    [delivery_id] = published.delivery_ids

    seen: list[delivery_pb2.DeliveryUpdate] = []
    for update in watch:
        seen.append(update)
        if update.kind == delivery_pb2.UPDATE_KIND_ATTEMPT_SUCCEEDED:
            break
    watch.cancel()
    assert [u.kind for u in seen] == [
        delivery_pb2.UPDATE_KIND_CREATED,
        delivery_pb2.UPDATE_KIND_ATTEMPT_SUCCEEDED,
    ]
    assert all(u.delivery.id == delivery_id for u in seen)
    assert seen[1].attempt.response_status == 204

    # A new watch after the first update's cursor replays exactly what followed it.
    resumed = client.watch_deliveries(
        admin_pb2.WatchDeliveriesRequest(webhook_id=webhook.id), after_cursor=seen[0].cursor
    )
    replayed = next(resumed)
    resumed.cancel()
    assert replayed.cursor == seen[1].cursor
    assert replayed.kind == delivery_pb2.UPDATE_KIND_ATTEMPT_SUCCEEDED


def test_history_lists_the_delivery_and_resend_adds_an_attempt(
    client: Client, webhook: webhook_pb2.Webhook
) -> None:
    request_id = unique("wd")
    published = client.publish(
        approval(withdrawal(request_id), node=1, idempotency_key=unique("key"))
    )
    [delivery_id] = published.delivery_ids

    def succeeded(attempts: int) -> delivery_pb2.Delivery | None:
        delivery = client.admin.GetDelivery(admin_pb2.GetDeliveryRequest(id=delivery_id))
        done = (
            delivery.status == webhook_pb2.DELIVERY_STATUS_SUCCEEDED
            and len(delivery.attempts) == attempts
        )
        return delivery if done else None

    first = eventually("the delivery to succeed", lambda: succeeded(1))
    assert first.request_id == request_id
    assert first.attempts[0].response_status == 204

    history = client.admin.ListDeliveries(admin_pb2.ListDeliveriesRequest(webhook_id=webhook.id))
    assert [d.id for d in history.deliveries] == [delivery_id]
    assert history.deliveries[0].event_type == "withdrawal.approved"

    client.admin.ResendDelivery(admin_pb2.ResendDeliveryRequest(id=delivery_id))
    again = eventually("the resent attempt", lambda: succeeded(2))
    # Receivers de-duplicate on it: the resend carries the same webhook-id.
    assert again.message_id == first.message_id


def test_publishing_the_same_key_twice_stores_one_event(
    client: Client, webhook: webhook_pb2.Webhook
) -> None:
    event = approval(withdrawal(unique("wd")), node=1, idempotency_key=unique("key"))
    first = client.publish(event)
    second = client.publish(event)
    assert second.duplicate
    assert (second.event_id, list(second.delivery_ids)) == (
        first.event_id,
        list(first.delivery_ids),
    )


def test_bad_destination_url_names_the_field_and_rule(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.admin.CreateWebhook(
            admin_pb2.CreateWebhookRequest(
                webhook=webhook_pb2.Webhook(
                    name="bad url",
                    destination_url="not a url",
                    function=webhook_pb2.FUNCTION_WITHDRAWAL,
                    events=webhook_pb2.EventSelection(approval_nodes=[1]),
                )
            )
        )
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert [v.field for v in violations] == ["webhook.destination_url"]
    assert violations[0].rule
    assert error.details() == f"{violations[0].field}: {violations[0].rule}"


def test_bad_amount_in_a_decision_names_the_nested_field(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.publish_approval(
            withdrawal(unique("wd"), amount="-5"), node=1, idempotency_key=unique("key")
        )
    violations = field_violations(caught.value)
    assert len(violations) == 1
    assert violations[0].field == "withdrawal.amount"


def test_unknown_token_is_unauthenticated(service: Service) -> None:
    with Client.connect(service.address, token="not-a-token", tls=service.tls) as stranger:
        with pytest.raises(grpc.RpcError) as caught:
            stranger.admin.ListWebhooks(admin_pb2.ListWebhooksRequest())
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert field_violations(caught.value) == []
