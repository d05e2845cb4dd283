//! Operational alerts (issue 16): webhook-level updates on WatchDeliveries and operational
//! webhooks, from real endpoints answering 410, failing, then recovering.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Streaming;
use webhooks::proto::v1 as pb;

use testkit::{Receiver, Reply, TestApp};

/// The operational webhook's secret in these tests.
const OPS_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn watch(
    app: &TestApp,
    request: pb::WatchDeliveriesRequest,
) -> Streaming<pb::DeliveryUpdate> {
    app.admin
        .clone()
        .watch_deliveries(request)
        .await
        .expect("watch opens")
        .into_inner()
}

fn by_webhook(id: &str) -> pb::WatchDeliveriesRequest {
    pb::WatchDeliveriesRequest {
        webhook_id: id.into(),
        ..Default::default()
    }
}

fn kind(update: &pb::DeliveryUpdate) -> pb::UpdateKind {
    pb::UpdateKind::try_from(update.kind).unwrap_or(pb::UpdateKind::Unspecified)
}

/// Reads updates until one of `wanted` arrives (within 20 s); returns every update read.
async fn read_until(
    stream: &mut Streaming<pb::DeliveryUpdate>,
    wanted: pb::UpdateKind,
) -> Vec<pb::DeliveryUpdate> {
    let mut updates = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Ok(Some(Ok(update))) => {
                let done = kind(&update) == wanted;
                updates.push(update);
                if done {
                    return updates;
                }
            }
            other => panic!(
                "no {wanted:?} within 20 s: {other:?}; got {:?}",
                updates.iter().map(kind).collect::<Vec<_>>()
            ),
        }
    }
}

/// Every update that arrives until the stream stays quiet for `quiet`.
async fn read_while_busy(
    stream: &mut Streaming<pb::DeliveryUpdate>,
    quiet: Duration,
) -> Vec<pb::DeliveryUpdate> {
    let mut updates = Vec::new();
    while let Ok(Some(Ok(update))) = tokio::time::timeout(quiet, stream.next()).await {
        updates.push(update);
    }
    updates
}

async fn app_with_operational_webhook(ops: &Receiver, extra: &[&str]) -> TestApp {
    let url = ops.url("/ops");
    let mut args = vec![
        "--operational-webhook-url",
        url.as_str(),
        "--operational-webhook-secret",
        OPS_SECRET,
    ];
    args.extend_from_slice(extra);
    TestApp::builder().args(&args).spawn().await
}

#[tokio::test]
async fn gone_endpoint_sends_webhook_disabled_update_and_a_verified_operational_webhook() {
    let ops = Receiver::start().await;
    let app = app_with_operational_webhook(&ops, &[]).await;
    let endpoint = Receiver::start().await;
    endpoint.reply_by_default(Reply::status(410));
    let hook = app
        .create_withdrawal_webhook("payments", &endpoint.url("/hook"), "")
        .await;
    let mut stream = watch(&app, by_webhook(&hook.id)).await;

    app.publish_withdrawal("gone-1", "W-GONE").await;
    let updates = read_until(&mut stream, pb::UpdateKind::WebhookDisabled).await;

    let disabled = updates.last().expect("an update");
    assert!(disabled.delivery.is_none(), "{disabled:?}");
    let state = disabled.webhook.as_ref().expect("the webhook's state");
    assert_eq!(state.id, hook.id);
    assert!(!state.enabled);
    assert!(
        state.disabled_reason.contains("410 Gone"),
        "{}",
        state.disabled_reason
    );
    assert!(state.disabled_at.is_some());
    assert!(state.secret_hint.starts_with("whsec_…"), "only the hint");

    let received = ops
        .wait_until("a webhook.disabled alert", |r| {
            r.iter().any(|r| r.event_type() == "webhook.disabled")
        })
        .await;
    let alert = received
        .iter()
        .find(|r| r.event_type() == "webhook.disabled")
        .expect("found above");
    standardwebhooks::Webhook::new(OPS_SECRET)
        .expect("the secret is valid")
        .verify(&alert.body, &alert.headers)
        .expect("the standardwebhooks crate verifies the operational webhook");
    let body = alert.json();
    assert_eq!(body["data"]["webhook"]["id"], hook.id.as_str());
    assert_eq!(body["data"]["webhook"]["name"], "payments");
    assert_eq!(body["data"]["webhook"]["enabled"], false);
    assert!(
        body["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("410 Gone"),
        "{body}"
    );

    // The same disable is on the audit trail, once, by `system`.
    let trail = app
        .admin
        .clone()
        .list_audit_events(pb::ListAuditEventsRequest {
            actor: "system".into(),
            target_kind: "webhook".into(),
            target_id: hook.id.clone(),
            ..Default::default()
        })
        .await
        .expect("the trail")
        .into_inner()
        .audit_events;
    let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["webhook.disabled_gone"], "{trail:?}");
}

#[tokio::test]
async fn circuit_opens_after_failures_in_a_row_and_closes_on_success() {
    let app = TestApp::builder()
        .args(&[
            "--circuit-breaker-threshold",
            "2",
            "--circuit-breaker-cooldown",
            "300ms",
        ])
        .spawn()
        .await;
    let endpoint = Receiver::start().await;
    endpoint.script([Reply::status(500), Reply::status(503)]);
    let hook = app
        .create_withdrawal_webhook("flaky", &endpoint.url("/hook"), "")
        .await;
    let mut stream = watch(&app, by_webhook(&hook.id)).await;

    app.publish_withdrawal("circuit-1", "W-CIRCUIT").await;
    let updates = read_until(&mut stream, pb::UpdateKind::CircuitOpened).await;
    let opened = updates.last().expect("an update");
    let state = opened.webhook.as_ref().expect("the webhook's state");
    assert_eq!(state.consecutive_failures, 2);
    assert!(state.circuit_open_until.is_some());
    assert!(state.failing_since.is_some());
    assert!(state.last_error.contains("503"), "{}", state.last_error);

    let updates = read_until(&mut stream, pb::UpdateKind::CircuitClosed).await;
    let closed = updates.last().expect("an update");
    let state = closed.webhook.as_ref().expect("the webhook's state");
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.circuit_open_until.is_none());
    assert!(
        updates
            .iter()
            .any(|u| kind(u) == pb::UpdateKind::AttemptSucceeded),
        "the probe's success comes with the close: {:?}",
        updates.iter().map(kind).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn exhausted_delivery_follows_its_failed_update_and_status_watchers_do_not_get_it() {
    let app = TestApp::builder()
        .args(&[
            "--retry-schedule",
            "200ms",
            "--circuit-breaker-threshold",
            "50",
        ])
        .spawn()
        .await;
    let endpoint = Receiver::start().await;
    endpoint.reply_by_default(Reply::status(500));
    let hook = app
        .create_withdrawal_webhook("down", &endpoint.url("/hook"), "")
        .await;
    let mut all = watch(&app, pb::WatchDeliveriesRequest::default()).await;

    let delivery_id = app.publish_withdrawal("exhausted-1", "W-EXH").await;
    let updates = read_until(&mut all, pb::UpdateKind::DeliveryExhausted).await;

    let n = updates.len();
    assert!(n >= 2);
    assert_eq!(
        kind(&updates[n - 2]),
        pb::UpdateKind::Failed,
        "FAILED stays as it was"
    );
    let failed = &updates[n - 2];
    let exhausted = &updates[n - 1];
    assert_eq!(
        exhausted.delivery.as_ref().map(|d| d.id.as_str()),
        Some(delivery_id.as_str())
    );
    assert_eq!(
        exhausted.delivery, failed.delivery,
        "the same delivery state"
    );
    assert_eq!(
        exhausted.attempt.as_ref().map(|a| &a.id),
        failed.attempt.as_ref().map(|a| &a.id)
    );
    assert_eq!(
        exhausted.webhook.as_ref().map(|w| w.id.as_str()),
        Some(hook.id.as_str())
    );
    assert!(
        failed.webhook.is_none(),
        "delivery updates carry no webhook"
    );

    // A watcher filtering by status gets the delivery updates only: FAILED once, no alert.
    let mut failed_only = watch(
        &app,
        pb::WatchDeliveriesRequest {
            statuses: vec![pb::DeliveryStatus::Failed as i32],
            after_cursor: "0".into(),
            ..Default::default()
        },
    )
    .await;
    let replayed = read_while_busy(&mut failed_only, Duration::from_secs(1)).await;
    assert_eq!(
        replayed.iter().map(kind).collect::<Vec<_>>(),
        vec![pb::UpdateKind::Failed]
    );
}

#[tokio::test]
async fn admin_disable_and_enable_are_updates_that_replay_with_their_state_by_cursor() {
    let app = TestApp::builder().spawn().await;
    let endpoint = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("toggled", &endpoint.url("/hook"), "")
        .await;
    let other = app
        .create_withdrawal_webhook("other", &endpoint.url("/other"), "")
        .await;
    let mut stream = watch(&app, by_webhook(&hook.id)).await;

    app.set_enabled(&other.id, false).await;
    app.set_enabled(&hook.id, false).await;
    app.set_enabled(&hook.id, true).await;
    let live = read_until(&mut stream, pb::UpdateKind::WebhookEnabled).await;
    assert_eq!(
        live.iter().map(kind).collect::<Vec<_>>(),
        vec![
            pb::UpdateKind::WebhookDisabled,
            pb::UpdateKind::WebhookEnabled
        ],
        "only the watched webhook's updates"
    );
    assert_eq!(live[0].webhook.as_ref().map(|w| w.enabled), Some(false));
    assert_eq!(live[1].webhook.as_ref().map(|w| w.enabled), Some(true));

    // Resuming before them replays both, each with the state it recorded (the webhook is
    // enabled now, the first update still says disabled).
    let first: i64 = live[0].cursor.parse().expect("a cursor");
    let mut resumed = watch(
        &app,
        pb::WatchDeliveriesRequest {
            after_cursor: (first - 1).to_string(),
            ..Default::default()
        },
    )
    .await;
    let replayed = read_until(&mut resumed, pb::UpdateKind::WebhookEnabled).await;
    let cursors: Vec<&str> = replayed.iter().map(|u| u.cursor.as_str()).collect();
    let live_cursors: Vec<&str> = live.iter().map(|u| u.cursor.as_str()).collect();
    assert_eq!(cursors, live_cursors);
    assert_eq!(replayed[0].webhook.as_ref().map(|w| w.enabled), Some(false));
    assert_eq!(replayed[1].webhook.as_ref().map(|w| w.enabled), Some(true));
}

#[tokio::test]
async fn the_operational_webhook_never_alerts_about_itself() {
    let ops = Receiver::start().await;
    // The alert endpoint fails every attempt: its deliveries exhaust and its circuit opens,
    // which would raise alerts about itself if it were watched like the others.
    ops.reply_by_default(Reply::status(500));
    let app = app_with_operational_webhook(
        &ops,
        &[
            "--retry-schedule",
            "200ms,200ms",
            "--circuit-breaker-threshold",
            "2",
            "--circuit-breaker-cooldown",
            "200ms",
        ],
    )
    .await;
    let endpoint = Receiver::start().await;
    endpoint.reply_by_default(Reply::status(410));
    let hook = app
        .create_withdrawal_webhook("gone", &endpoint.url("/hook"), "")
        .await;

    app.publish_withdrawal("loop-1", "W-LOOP").await;
    // One alert, tried three times (the schedule), then exhausted.
    ops.wait_until("three attempts of the alert", |r| r.len() >= 3)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received = ops.received();
    assert_eq!(received.len(), 3, "no further alerts arrived");
    assert!(
        received
            .iter()
            .all(|r| r.webhook_id() == received[0].webhook_id()
                && r.event_type() == "webhook.disabled"
                && r.json()["data"]["webhook"]["id"] == hook.id.as_str()),
        "every request is the one alert about the customer webhook"
    );

    // The internal webhook is not one admins see.
    let listed = app
        .admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(
        listed
            .webhooks
            .iter()
            .map(|w| w.id.as_str())
            .collect::<Vec<_>>(),
        vec![hook.id.as_str()]
    );
}
