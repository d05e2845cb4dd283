//! Endpoint isolation: a hanging or failing endpoint cannot hold up the others; circuit breaker
//! and auto-disable.

use std::time::Duration;

use webhooks::proto::v1 as pb;

use testkit::{Receiver, Reply, spawn_app_with, withdrawal_event};

fn participation(key: &str) -> pb::PublishEventRequest {
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: pb::Decision::Rejected as i32,
        approval_node: None,
        occurred_at: None,
        request: Some(
            pb::publish_event_request::Request::PropTradingParticipation(
                pb::PropTradingParticipationRequest {
                    id: format!("P-{key}"),
                    client_id: "C-1".into(),
                    ..Default::default()
                },
            ),
        ),
    }
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_a_healthy_one() {
    let app = spawn_app_with(&[
        "--worker-concurrency",
        "4",
        "--max-in-flight-per-webhook",
        "2",
        "--request-timeout",
        "20s",
    ])
    .await;
    let hanging = Receiver::start().await;
    hanging.reply_by_default(Reply::status(200).after(Duration::from_secs(60)));
    let healthy = Receiver::start().await;
    app.create_webhook(&hanging.url("/hang"), pb::Function::Withdrawal, &[], true)
        .await;
    app.create_webhook(
        &healthy.url("/ok"),
        pb::Function::PropTradingParticipation,
        &[],
        true,
    )
    .await;

    let mut ingest = app.ingest.clone();
    for i in 0..10 {
        ingest
            .publish_event(withdrawal_event(
                &format!("hang-{i}"),
                &format!("W-{i}"),
                pb::Decision::Rejected,
                None,
            ))
            .await
            .unwrap();
    }
    // Let the hanging endpoint take every slot it can.
    hanging.wait_for(2, Duration::from_secs(10)).await;
    for i in 0..20 {
        ingest
            .publish_event(participation(&format!("ok-{i}")))
            .await
            .unwrap();
    }
    let arrived = healthy.wait_for(20, Duration::from_secs(15)).await;
    assert_eq!(arrived.len(), 20, "every healthy delivery arrived");
    // ...while the hanging endpoint still holds its first requests (20 s timeout not reached)
    // and never had more than its cap in flight.
    assert_eq!(
        hanging.received().len(),
        2,
        "the per-webhook cap held the hanging endpoint to 2 attempts"
    );
    let db = app.db().await;
    let recorded: i64 = db
        .query_one(
            "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             JOIN webhooks w ON w.id = d.webhook_id WHERE w.destination_url LIKE '%/hang'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        recorded, 0,
        "the healthy endpoint was served while the hanging attempts were still running"
    );
}

#[tokio::test]
async fn repeated_failures_open_the_circuit_and_a_successful_probe_closes_it() {
    let app = spawn_app_with(&[
        "--circuit-breaker-threshold",
        "2",
        "--circuit-breaker-cooldown",
        "2s",
        "--retry-schedule",
        "100ms,100ms,100ms,100ms,100ms",
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(500)]);
    let hook = app
        .create_webhook(
            &receiver.url("/flaky"),
            pb::Function::Withdrawal,
            &[1],
            false,
        )
        .await
        .webhook
        .unwrap();
    app.ingest
        .clone()
        .publish_event(withdrawal_event(
            "cb-1",
            "W-1",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .unwrap();
    receiver.wait_for(2, Duration::from_secs(10)).await;

    // Two failures: the circuit is open, the webhook says so.
    let mut open = None;
    for _ in 0..50 {
        let webhook = app
            .admin
            .clone()
            .get_webhook(pb::GetWebhookRequest {
                id: hook.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if webhook.circuit_open_until.is_some() {
            open = Some(webhook);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = open.expect("the circuit opened");
    assert_eq!(open.consecutive_failures, 2);

    // The probe waits for the cooldown (well beyond the 100 ms schedule), then succeeds.
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 3);
    let gap = received[2].at - received[1].at;
    assert!(
        gap >= Duration::from_millis(1500),
        "the open circuit held the probe back only {gap:?}"
    );
    let mut closed = false;
    for _ in 0..50 {
        let webhook = app
            .admin
            .clone()
            .get_webhook(pb::GetWebhookRequest {
                id: hook.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if webhook.consecutive_failures == 0 && webhook.circuit_open_until.is_none() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "a successful probe closes the circuit");
}

#[tokio::test]
async fn a_webhook_failing_for_the_whole_span_is_auto_disabled_and_re_enabling_clears_it() {
    let app = spawn_app_with(&[
        "--auto-disable-after",
        "1s",
        "--retry-schedule",
        "400ms,400ms,400ms,400ms,400ms,400ms",
        "--circuit-breaker-threshold",
        "100",
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.reply_by_default(Reply::status(500));
    let hook = app
        .create_webhook(&receiver.url("/down"), pb::Function::Withdrawal, &[], true)
        .await
        .webhook
        .unwrap();
    app.ingest
        .clone()
        .publish_event(withdrawal_event(
            "ad-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap();
    let mut disabled = None;
    for _ in 0..100 {
        let webhook = app
            .admin
            .clone()
            .get_webhook(pb::GetWebhookRequest {
                id: hook.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if !webhook.enabled {
            disabled = Some(webhook);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let disabled = disabled.expect("auto-disabled");
    assert!(
        disabled.disabled_reason.starts_with("auto-disabled"),
        "{}",
        disabled.disabled_reason
    );

    receiver.reply_by_default(Reply::status(204));
    let enabled = app
        .admin
        .clone()
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id: hook.id.clone(),
            enabled: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(enabled.disabled_reason.is_empty());
    assert_eq!(enabled.consecutive_failures, 0);
    let deliveries = app
        .admin
        .clone()
        .list_deliveries(pb::ListDeliveriesRequest {
            webhook_id: hook.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    app.wait_for_delivery_status(&deliveries[0].id, pb::DeliveryStatus::Succeeded)
        .await;
}
