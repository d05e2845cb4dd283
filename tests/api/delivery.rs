//! The delivery engine end to end: signatures checked by an independent Standard Webhooks
//! implementation and by hand, the body and headers, retries, Retry-After, timeouts, 410 Gone,
//! failure, resend, recovery, test events, admin actions taking effect, and the history API.
//! Every test runs the real service on its own database and real HTTP receivers on 127.0.0.1.

use std::time::{Duration, SystemTime};

use tonic::Code;
use webhooks::proto::v1 as pb;

use testkit::{
    Receiver, Reply, TestApp, assert_status, expected_signature, spawn_app, spawn_app_with,
    verify_with_standardwebhooks, wait_until, withdrawal_event,
};

const APPROVED: pb::Decision = pb::Decision::Approved;
const REJECTED: pb::Decision = pb::Decision::Rejected;
const WITHDRAWAL: pb::Function = pb::Function::Withdrawal;

/// The value of header `name` in a recorded attempt.
fn header<'a>(headers: &'a [pb::HttpHeader], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

/// "msg_" followed by the delivery id without dashes.
fn message_id_of(delivery_id: &str) -> String {
    format!("msg_{}", delivery_id.replace('-', ""))
}

/// Sleeps until a server timestamp has passed (plus a margin), never more than 3 s.
async fn sleep_past(at: &prost_types::Timestamp) {
    let at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(at.seconds.max(0) as u64)
        + Duration::from_nanos(at.nanos.max(0) as u64);
    let wait = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::sleep(wait.min(Duration::from_secs(3)) + Duration::from_millis(300)).await;
}

/// Creates a webhook selecting node 1 and the rejection; returns it and its secret.
async fn hook(app: &TestApp, url: &str) -> (pb::Webhook, String) {
    let created = app.create_webhook(url, WITHDRAWAL, &[1], true).await;
    (created.webhook.unwrap(), created.secret)
}

/// Publishes a control event to a second webhook and waits for it to succeed: proof that the
/// workers have claimed everything that was due before it.
async fn control_round(app: &TestApp, key: &str) {
    let published = app
        .publish(withdrawal_event(
            key,
            &format!("CTRL-{key}"),
            APPROVED,
            Some(9),
        ))
        .await;
    assert_eq!(
        published.delivery_ids.len(),
        1,
        "only the control webhook selects node 9"
    );
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
}

/// A webhook selecting only node 9, for control events.
async fn control_hook(app: &TestApp, rx: &Receiver) {
    app.create_webhook(&rx.url("/control"), WITHDRAWAL, &[9], false)
        .await;
}

// ------------------------------------------------------------------------------------------
// Signature, body and headers
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_approved_withdrawal_arrives_signed_so_the_standardwebhooks_crate_and_a_hand_hmac_verify_it()
 {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (_, secret) = hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let received = rx.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];

    verify_with_standardwebhooks(&secret, request).expect("standardwebhooks verifies it");

    let signature = request.header("webhook-signature");
    let expected = expected_signature(
        &secret,
        &request.header("webhook-id"),
        request.header("webhook-timestamp"),
        &request.body,
    );
    assert_eq!(
        signature, expected,
        "one v1 signature, HMAC-SHA256 of id.timestamp.body"
    );

    // The verification is real: another secret or a changed body fails.
    let other = format!(
        "whsec_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    assert!(verify_with_standardwebhooks(&other, request).is_err());
    let mut tampered = request.clone();
    tampered.body = String::from_utf8(request.body.to_vec())
        .unwrap()
        .replace("1250.00", "9250.00")
        .into();
    assert_ne!(tampered.body, request.body);
    assert!(verify_with_standardwebhooks(&secret, &tampered).is_err());
}

#[tokio::test]
async fn the_body_and_headers_follow_the_documented_shape() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (webhook, _) = hook(&app, &rx.url("/h")).await;
    let before = time_now();
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery_id = &published.delivery_ids[0];
    let delivery = app
        .wait_for_delivery_status(delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    let after = time_now();
    let request = &rx.received()[0];

    assert_eq!(request.path, "/h");
    assert_eq!(request.header("content-type"), "application/json");
    assert!(
        request
            .header("user-agent")
            .starts_with("backoffice-webhooks/"),
        "user-agent: {}",
        request.header("user-agent")
    );
    let message_id = request.header("webhook-id");
    assert_eq!(message_id, message_id_of(delivery_id));
    assert_eq!(message_id, delivery.message_id);
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .parse()
        .expect("webhook-timestamp is integer seconds");
    assert!(
        (before - 1..=after + 1).contains(&timestamp),
        "webhook-timestamp {timestamp} is the send time"
    );

    let body = request.json();
    assert_eq!(body["type"], "withdrawal.approved");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    assert_eq!(body["data"]["event_id"], published.event_id.as_str());
    assert_eq!(body["data"]["decision"], "approved");
    assert_eq!(body["data"]["approval_node"], 1);
    let withdrawal = &body["data"]["withdrawal"];
    assert_eq!(withdrawal["id"], "W-1");
    assert_eq!(withdrawal["client_id"], "C-100");
    assert_eq!(withdrawal["currency"], "USD");
    assert_eq!(
        withdrawal["amount"],
        serde_json::json!("1250.00"),
        "the amount is a string, never a float"
    );
    assert_eq!(withdrawal["beneficiary"]["iban"], "GB33BUKB20201555555555");

    // History shows the exact bytes that were sent.
    assert_eq!(delivery.payload.as_bytes(), &request.body[..]);
    assert_eq!(delivery.webhook_id, webhook.id);
    assert_eq!(delivery.event_id, published.event_id);
    assert_eq!(delivery.request_id, "W-1");
    assert_eq!(delivery.function(), WITHDRAWAL);

    // A rejection carries a null approval_node.
    let rejected = app
        .publish(withdrawal_event("k2", "W-1", REJECTED, None))
        .await;
    app.wait_for_delivery_status(&rejected.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let body = rx.received()[1].json();
    assert_eq!(body["type"], "withdrawal.rejected");
    assert_eq!(body["data"]["decision"], "rejected");
    assert!(body["data"]["approval_node"].is_null());
}

fn time_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ------------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_the_same_webhook_id_until_it_succeeds_and_history_shows_every_attempt()
 {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script([
        Reply::status(500).with_body("database on fire"),
        Reply::status(502).with_body("bad gateway"),
    ]);
    rx.reply_by_default(Reply::status(200).with_body("thanks"));
    let (_, secret) = hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;

    let received = rx.received();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.header("webhook-id"), delivery.message_id);
        assert_eq!(request.body, received[0].body, "the same body every time");
        verify_with_standardwebhooks(&secret, request).expect("every attempt is signed");
    }

    assert_eq!(delivery.attempt_count, 3);
    assert_eq!(delivery.last_response_status, 200);
    assert!(delivery.next_attempt_at.is_none());
    let attempts = &delivery.attempts;
    assert_eq!(attempts.len(), 3);
    let numbers: Vec<u32> = attempts.iter().map(|a| a.attempt_number).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let statuses: Vec<u32> = attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, vec![500, 502, 200]);
    let bodies: Vec<&str> = attempts.iter().map(|a| a.response_body.as_str()).collect();
    assert_eq!(bodies, vec!["database on fire", "bad gateway", "thanks"]);
    let kinds: Vec<pb::AttemptErrorKind> = attempts.iter().map(|a| a.error_kind()).collect();
    assert_eq!(
        kinds,
        vec![
            pb::AttemptErrorKind::Status,
            pb::AttemptErrorKind::Status,
            pb::AttemptErrorKind::Unspecified
        ]
    );
    let succeeded: Vec<bool> = attempts.iter().map(|a| a.succeeded).collect();
    assert_eq!(succeeded, vec![false, false, true]);
    for (attempt, request) in attempts.iter().zip(&received) {
        assert_eq!(attempt.trigger(), pb::AttemptTrigger::Scheduled);
        assert_eq!(attempt.request_url, rx.url("/h"));
        assert_eq!(attempt.request_body.as_bytes(), &request.body[..]);
        for name in [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "content-type",
            "user-agent",
        ] {
            assert_eq!(
                header(&attempt.request_headers, name),
                Some(request.header(name).as_str()),
                "recorded {name} is what arrived"
            );
        }
        assert!(
            header(&attempt.response_headers, "content-length").is_some(),
            "response headers are kept: {:?}",
            attempt.response_headers
        );
    }
    assert!(attempts[0].error_message.contains("500"));
}

#[tokio::test]
async fn retry_after_on_429_and_503_holds_the_next_attempt_back_beyond_the_schedule() {
    let app = spawn_app().await; // schedule 300ms,300ms,300ms
    let rx = Receiver::start().await;
    rx.script([
        Reply::status(429).with_header("retry-after", "2"),
        Reply::status(503).with_header("retry-after", "2"),
    ]);
    hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let received = rx.received();
    assert_eq!(received.len(), 3);
    for pair in received.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(1500),
            "Retry-After: 2 was not honoured: the next attempt came after {gap:?}"
        );
    }
    let statuses: Vec<u32> = delivery
        .attempts
        .iter()
        .map(|a| a.response_status)
        .collect();
    assert_eq!(statuses, vec![429, 503, 204]);
}

#[tokio::test]
async fn an_endpoint_slower_than_the_request_timeout_is_recorded_as_a_timeout_and_retried() {
    let app = spawn_app_with(&["--request-timeout", "1s"]).await;
    let rx = Receiver::start().await;
    rx.script([Reply::status(204).after(Duration::from_secs(4))]);
    hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(delivery.attempts.len(), 2);
    let first = &delivery.attempts[0];
    assert_eq!(first.error_kind(), pb::AttemptErrorKind::Timeout);
    assert_eq!(first.response_status, 0, "no response arrived");
    assert!(!first.succeeded);
    assert!(!first.error_message.is_empty());
    let took = first.duration.as_ref().expect("a duration");
    assert!(
        took.seconds >= 1 || took.nanos >= 900_000_000,
        "the attempt ran until the timeout: {took:?}"
    );
    assert!(delivery.attempts[1].succeeded);
    let ids: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, vec![delivery.message_id.clone(), delivery.message_id]);
}

#[tokio::test]
async fn a_delivery_fails_for_good_after_the_last_scheduled_attempt() {
    let app = spawn_app().await; // 3 retries: 4 attempts
    let rx = Receiver::start().await;
    rx.reply_by_default(Reply::status(500));
    hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Failed)
        .await;
    assert_eq!(delivery.attempt_count, 4, "schedule length + 1");
    assert_eq!(delivery.attempts.len(), 4);
    assert!(delivery.next_attempt_at.is_none());
    assert_eq!(delivery.last_response_status, 500);
    assert!(
        delivery.status_reason.contains("500"),
        "reason: {}",
        delivery.status_reason
    );
    assert!(
        delivery
            .attempts
            .iter()
            .all(|a| a.response_status == 500 && !a.succeeded)
    );
    assert_eq!(rx.received().len(), 4);
    let failed = app
        .list_deliveries(pb::ListDeliveriesRequest {
            statuses: vec![pb::DeliveryStatus::Failed as i32],
            ..Default::default()
        })
        .await;
    assert_eq!(failed.deliveries.len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_recorded_as_a_connect_error_until_the_delivery_fails() {
    let app = spawn_app_with(&["--retry-schedule", "100ms"]).await;
    // A port that was just free: nothing listens on it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    hook(&app, &format!("http://{closed}/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Failed)
        .await;
    assert_eq!(delivery.attempts.len(), 2);
    for attempt in &delivery.attempts {
        assert_eq!(attempt.error_kind(), pb::AttemptErrorKind::Connect);
        assert_eq!(attempt.response_status, 0);
        assert!(!attempt.error_message.is_empty());
    }
    assert_eq!(delivery.last_response_status, 0);
    assert!(!delivery.status_reason.is_empty());
}

#[tokio::test]
async fn a_response_body_over_64_kib_is_cut_in_history_and_flagged() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.reply_by_default(Reply::status(200).with_body(&"x".repeat(100 * 1024)));
    hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let attempt = &delivery.attempts[0];
    assert!(attempt.succeeded);
    assert_eq!(attempt.response_body.len(), 64 * 1024);
    assert!(attempt.response_body_truncated);
}

// ------------------------------------------------------------------------------------------
// 410 Gone, resend, recovery, test events
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_410_gone_disables_the_webhook_and_re_enabling_resumes_its_pending_delivery() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script_when(
        |r| r.path == "/gone",
        [Reply::status(410).with_body("gone")],
    );
    let (gone, _) = hook(&app, &rx.url("/gone")).await;
    control_hook(&app, &rx).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery_id = &published.delivery_ids[0];

    let disabled = wait_until("the webhook to be disabled", testkit::PATIENCE, || {
        let app = &app;
        let id = gone.id.clone();
        async move {
            let webhook = app.get_webhook(&id).await;
            (!webhook.enabled).then_some(webhook)
        }
    })
    .await;
    assert!(
        disabled.disabled_reason.contains("410"),
        "reason: {}",
        disabled.disabled_reason
    );
    assert!(disabled.disabled_at.is_some());

    let pending = app
        .wait_for_delivery(delivery_id, "its first attempt recorded", |d| {
            d.attempts.len() == 1
        })
        .await;
    assert_eq!(pending.status(), pb::DeliveryStatus::Pending);
    assert_eq!(pending.last_response_status, 410);
    sleep_past(pending.next_attempt_at.as_ref().expect("a retry is due")).await;
    control_round(&app, "c1").await;
    assert_eq!(
        rx.received_at("/gone").len(),
        1,
        "nothing is sent while disabled"
    );
    assert_eq!(
        app.get_delivery(delivery_id).await.status(),
        pb::DeliveryStatus::Pending,
        "the delivery waits"
    );

    let enabled = app.set_enabled(&gone.id, true).await;
    assert!(enabled.enabled);
    assert!(enabled.disabled_reason.is_empty());
    let done = app
        .wait_for_delivery_status(delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(done.attempt_count, 2);
    let ids: Vec<String> = rx
        .received_at("/gone")
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, vec![done.message_id.clone(), done.message_id]);
}

#[tokio::test]
async fn resending_a_failed_delivery_makes_a_new_attempt_with_the_same_webhook_id() {
    let app = spawn_app_with(&["--retry-schedule", "200ms"]).await;
    let rx = Receiver::start().await;
    rx.reply_by_default(Reply::status(500));
    let (webhook, secret) = hook(&app, &rx.url("/h")).await;
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let delivery_id = &published.delivery_ids[0];
    let failed = app
        .wait_for_delivery_status(delivery_id, pb::DeliveryStatus::Failed)
        .await;
    assert_eq!(failed.attempt_count, 2);

    rx.reply_by_default(Reply::status(204));
    let resent = app
        .admin
        .clone()
        .resend_delivery(pb::ResendDeliveryRequest {
            id: delivery_id.clone(),
            ..Default::default()
        })
        .await
        .expect("resent")
        .into_inner();
    assert_eq!(resent.id, *delivery_id);
    assert_ne!(resent.status(), pb::DeliveryStatus::Failed);
    let done = app
        .wait_for_delivery_status(delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(done.attempt_count, 3);
    let last = done.attempts.last().unwrap();
    assert_eq!(last.attempt_number, 3);
    assert_eq!(last.trigger(), pb::AttemptTrigger::Resend);
    assert!(last.succeeded);
    let received = rx.received();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|r| r.header("webhook-id") == done.message_id)
    );
    verify_with_standardwebhooks(&secret, &received[2]).expect("the resend is signed");

    // A succeeded delivery can be resent too: one more POST, same webhook-id.
    app.admin
        .clone()
        .resend_delivery(pb::ResendDeliveryRequest {
            id: delivery_id.clone(),
            ..Default::default()
        })
        .await
        .expect("resent again");
    let again = app
        .wait_for_delivery(delivery_id, "a fourth, successful attempt", |d| {
            d.attempt_count == 4 && d.status() == pb::DeliveryStatus::Succeeded
        })
        .await;
    assert_eq!(
        again.attempts.last().unwrap().trigger(),
        pb::AttemptTrigger::Resend
    );
    let received = rx.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[3].header("webhook-id"), done.message_id);

    // Resending to a disabled webhook is refused rather than left waiting.
    app.set_enabled(&webhook.id, false).await;
    assert_status(
        app.admin
            .clone()
            .resend_delivery(pb::ResendDeliveryRequest {
                id: delivery_id.clone(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "disabled",
    );
}

#[tokio::test]
async fn resending_while_an_attempt_is_in_flight_numbers_the_two_attempts_apart() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    hook(&app, &rx.url("/h")).await;
    let delivery_id = first_attempt_in_flight(&app, &rx, "/h").await;
    app.admin
        .clone()
        .resend_delivery(pb::ResendDeliveryRequest {
            id: delivery_id.clone(),
            ..Default::default()
        })
        .await
        .expect("resent");
    let done = app
        .wait_for_delivery(&delivery_id, "both attempts recorded", |d| {
            d.attempts.len() == 2
        })
        .await;
    assert_eq!(
        done.status(),
        pb::DeliveryStatus::Succeeded,
        "the superseded attempt's late 500 does not undo the resend's success"
    );
    let mut numbers: Vec<u32> = done.attempts.iter().map(|a| a.attempt_number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2], "attempts: {:#?}", done.attempts);
    assert_eq!(done.attempt_count, 2);
    let resend = done
        .attempts
        .iter()
        .find(|a| a.trigger() == pb::AttemptTrigger::Resend)
        .expect("the resend is in history");
    assert!(resend.succeeded);
    let ids: Vec<String> = rx
        .received_at("/h")
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids, vec![done.message_id.clone(), done.message_id]);
}

#[tokio::test]
async fn recovering_failed_deliveries_requeues_every_one_since_a_time_and_they_then_succeed() {
    let app = spawn_app_with(&["--retry-schedule", "200ms"]).await;
    let rx = Receiver::start().await;
    let rx_other = Receiver::start().await;
    rx.reply_by_default(Reply::status(503));
    rx_other.reply_by_default(Reply::status(503));
    let (webhook, _) = hook(&app, &rx.url("/h")).await;
    let (other, _) = hook(&app, &rx_other.url("/other")).await;
    let since = SystemTime::now() - Duration::from_secs(2);

    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    // Two events: 4 consecutive failures per endpoint, below a circuit breaker's threshold.
    for i in 1..=2 {
        let published = app
            .publish(withdrawal_event(
                &format!("k{i}"),
                &format!("W-{i}"),
                APPROVED,
                Some(1),
            ))
            .await;
        for id in published.delivery_ids {
            let delivery = app
                .wait_for_delivery_status(&id, pb::DeliveryStatus::Failed)
                .await;
            if delivery.webhook_id == webhook.id {
                mine.push(id);
            } else {
                theirs.push(id);
            }
        }
    }
    assert_eq!((mine.len(), theirs.len()), (2, 2));

    let recover = |since: SystemTime| {
        let mut admin = app.admin.clone();
        let webhook_id = webhook.id.clone();
        async move {
            admin
                .recover_failed_deliveries(pb::RecoverFailedDeliveriesRequest {
                    webhook_id,
                    since: Some(since.into()),
                    ..Default::default()
                })
                .await
                .expect("recovered")
                .into_inner()
                .recovered
        }
    };
    assert_eq!(
        recover(SystemTime::now() + Duration::from_secs(60)).await,
        0,
        "nothing was created after `since`"
    );

    rx.reply_by_default(Reply::status(204));
    rx_other.reply_by_default(Reply::status(204));
    assert_eq!(recover(since).await, 2);
    for id in &theirs {
        assert_eq!(
            app.get_delivery(id).await.status(),
            pb::DeliveryStatus::Failed,
            "another webhook's failures stay failed"
        );
    }
    for id in &mine {
        let done = app
            .wait_for_delivery_status(id, pb::DeliveryStatus::Succeeded)
            .await;
        let last = done.attempts.last().unwrap();
        assert_eq!(last.trigger(), pb::AttemptTrigger::Recover);
        assert_eq!(last.attempt_number, 3);
        assert_eq!(done.attempt_count, 3);
    }
    assert_eq!(
        rx.received().len(),
        6,
        "2 failed attempts + 1 recovery each"
    );
    assert_eq!(rx_other.received().len(), 4);
    assert_eq!(
        app.deliveries_of(&other.id)
            .await
            .iter()
            .filter(|d| d.status() == pb::DeliveryStatus::Failed)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_test_event_delivers_a_signed_webhook_test() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let created = app
        .create_webhook(
            &rx.url("/h"),
            pb::Function::PropTradingLiveStage,
            &[4],
            false,
        )
        .await;
    let webhook = created.webhook.unwrap();
    let queued = app
        .admin
        .clone()
        .send_test_event(pb::SendTestEventRequest {
            webhook_id: webhook.id.clone(),
            ..Default::default()
        })
        .await
        .expect("test event queued")
        .into_inner();
    assert_eq!(queued.event_type, "webhook.test");
    assert_eq!(queued.webhook_id, webhook.id);
    let done = app
        .wait_for_delivery_status(&queued.id, pb::DeliveryStatus::Succeeded)
        .await;
    let received = rx.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    verify_with_standardwebhooks(&created.secret, request).expect("the test event is signed");
    assert_eq!(request.header("webhook-id"), done.message_id);
    let body = request.json();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"]["webhook_id"], webhook.id.as_str());
    assert_eq!(body["data"]["event_id"], done.event_id.as_str());
    assert_eq!(done.payload.as_bytes(), &request.body[..]);
}

// ------------------------------------------------------------------------------------------
// Admin actions take effect at once
// ------------------------------------------------------------------------------------------

/// Publishes W-1 to a webhook whose endpoint holds the first attempt open for a while and then
/// answers 500, and waits until that attempt is in flight.
async fn first_attempt_in_flight(app: &TestApp, rx: &Receiver, path: &str) -> String {
    rx.script_when(
        {
            let path = path.to_owned();
            move |r| r.path == path
        },
        [Reply::status(500).after(Duration::from_secs(2))],
    );
    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    rx.wait_for_at(path, 1).await;
    published.delivery_ids[0].clone()
}

#[tokio::test]
async fn a_disabled_webhook_gets_nothing_and_its_pending_delivery_goes_out_when_re_enabled() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (webhook, _) = hook(&app, &rx.url("/h")).await;
    control_hook(&app, &rx).await;
    let delivery_id = first_attempt_in_flight(&app, &rx, "/h").await;
    let disabled = app.set_enabled(&webhook.id, false).await;
    assert!(!disabled.enabled);

    let pending = app
        .wait_for_delivery(&delivery_id, "its first attempt recorded", |d| {
            d.attempts.len() == 1
        })
        .await;
    assert_eq!(pending.status(), pb::DeliveryStatus::Pending);
    let while_disabled = app
        .publish(withdrawal_event("k2", "W-2", APPROVED, Some(1)))
        .await;
    assert!(while_disabled.delivery_ids.is_empty());
    sleep_past(pending.next_attempt_at.as_ref().expect("a retry is due")).await;
    control_round(&app, "c1").await;
    assert_eq!(rx.received_at("/h").len(), 1, "nothing sent while disabled");
    assert_eq!(
        app.get_delivery(&delivery_id).await.status(),
        pb::DeliveryStatus::Pending
    );

    app.set_enabled(&webhook.id, true).await;
    let done = app
        .wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(done.attempt_count, 2);
    let sent: Vec<(String, String)> = rx
        .received_at("/h")
        .iter()
        .map(|r| (r.header("webhook-id"), r.request_id()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (done.message_id.clone(), "W-1".into()),
            (done.message_id.clone(), "W-1".into())
        ]
    );
}

#[tokio::test]
async fn deleting_a_webhook_cancels_its_pending_delivery_and_nothing_more_is_sent() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (webhook, _) = hook(&app, &rx.url("/h")).await;
    control_hook(&app, &rx).await;
    let delivery_id = first_attempt_in_flight(&app, &rx, "/h").await;
    app.admin
        .clone()
        .delete_webhook(pb::DeleteWebhookRequest {
            id: webhook.id.clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");

    let cancelled = app.get_delivery(&delivery_id).await;
    assert_eq!(cancelled.status(), pb::DeliveryStatus::Cancelled);
    assert!(
        cancelled.status_reason.contains("deleted"),
        "reason: {}",
        cancelled.status_reason
    );
    // The attempt that was in flight lands in history without reviving the delivery.
    let after = app
        .wait_for_delivery(&delivery_id, "the in-flight attempt recorded", |d| {
            !d.attempts.is_empty()
        })
        .await;
    assert_eq!(after.status(), pb::DeliveryStatus::Cancelled);
    assert_eq!(after.attempts[0].response_status, 500);
    assert_eq!(
        after.attempt_count, 1,
        "attempt_count counts the attempt that was made"
    );
    tokio::time::sleep(Duration::from_millis(600)).await; // past the 300 ms retry it would have had
    control_round(&app, "c1").await;
    assert_eq!(rx.received_at("/h").len(), 1, "nothing more is sent");
    assert_eq!(
        app.get_delivery(&delivery_id).await.status(),
        pb::DeliveryStatus::Cancelled
    );
    let history = app.deliveries_of(&webhook.id).await;
    assert_eq!(history.len(), 1, "a deleted webhook's history stays");
}

#[tokio::test]
async fn changing_the_destination_url_sends_the_next_attempt_to_the_new_url() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (webhook, _) = hook(&app, &rx.url("/old")).await;
    let delivery_id = first_attempt_in_flight(&app, &rx, "/old").await;
    let updated = app
        .admin
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            webhook: Some(pb::Webhook {
                id: webhook.id.clone(),
                destination_url: rx.url("/new"),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["destination_url".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.destination_url, rx.url("/new"));

    let done = app
        .wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    let urls: Vec<&str> = done
        .attempts
        .iter()
        .map(|a| a.request_url.as_str())
        .collect();
    assert_eq!(urls, vec![rx.url("/old"), rx.url("/new")]);
    assert_eq!(rx.received_at("/old").len(), 1);
    let new = rx.received_at("/new");
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].header("webhook-id"), done.message_id);
}

#[tokio::test]
async fn after_a_secret_rotation_deliveries_carry_one_signature_per_secret_and_both_verify() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let (webhook, old_secret) = hook(&app, &rx.url("/h")).await;
    let rotate = |grace: Option<prost_types::Duration>| {
        let mut admin = app.admin.clone();
        let id = webhook.id.clone();
        async move {
            admin
                .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
                    id,
                    secret: String::new(),
                    grace_period: grace,
                    ..Default::default()
                })
                .await
                .expect("rotated")
                .into_inner()
                .secret
        }
    };
    let new_secret = rotate(None).await;
    assert_ne!(new_secret, old_secret);

    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let request = &rx.received()[0];
    let header = request.header("webhook-signature");
    let signatures: Vec<&str> = header.split(' ').collect();
    assert_eq!(signatures.len(), 2, "two signatures: {header}");
    let (id, ts) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
    );
    assert_eq!(
        signatures,
        vec![
            expected_signature(&new_secret, &id, &ts, &request.body),
            expected_signature(&old_secret, &id, &ts, &request.body),
        ],
        "the new secret's signature, then the old one's"
    );
    verify_with_standardwebhooks(&new_secret, request).expect("the new secret verifies");
    verify_with_standardwebhooks(&old_secret, request).expect("the old secret verifies");

    // Rotating with no grace period drops the previous secret at once.
    let newest = rotate(Some(prost_types::Duration {
        seconds: 0,
        nanos: 0,
    }))
    .await;
    let published = app
        .publish(withdrawal_event("k2", "W-2", REJECTED, None))
        .await;
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let request = &rx.received()[1];
    assert_eq!(request.header("webhook-signature").split(' ').count(), 1);
    verify_with_standardwebhooks(&newest, request).expect("the newest secret verifies");
    assert!(verify_with_standardwebhooks(&new_secret, request).is_err());
}

// ------------------------------------------------------------------------------------------
// History
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn delivery_history_filters_by_webhook_status_event_type_and_request_newest_first_in_pages() {
    let app = spawn_app_with(&["--retry-schedule", "100ms"]).await;
    let rx = Receiver::start().await;
    rx.script_when(
        |r| r.path == "/b",
        std::iter::repeat_n(Reply::status(500), 100),
    );
    let a = app
        .create_webhook(&rx.url("/a"), WITHDRAWAL, &[1], true)
        .await
        .webhook
        .unwrap();
    let b = app
        .create_webhook(&rx.url("/b"), WITHDRAWAL, &[1], false)
        .await
        .webhook
        .unwrap();

    // Publish order: W-1 approved (a, b), W-2 approved (a, b), W-1 rejected (a), W-3 rejected (a).
    /// A delivery as the test made it.
    struct Made {
        id: String,
        webhook_id: String,
        request_id: String,
        event_type: String,
    }
    let mut created: Vec<Made> = Vec::new(); // oldest first
    for (key, request, decision, node) in [
        ("k1", "W-1", APPROVED, Some(1)),
        ("k2", "W-2", APPROVED, Some(1)),
        ("k3", "W-1", REJECTED, None),
        ("k4", "W-3", REJECTED, None),
    ] {
        let published = app
            .publish(withdrawal_event(key, request, decision, node))
            .await;
        for id in published.delivery_ids {
            let delivery = app
                .wait_for_delivery(&id, "a final status", |d| {
                    d.status != pb::DeliveryStatus::Pending as i32
                })
                .await;
            created.push(Made {
                id,
                webhook_id: delivery.webhook_id,
                request_id: request.to_owned(),
                event_type: published.event_type.clone(),
            });
        }
    }
    assert_eq!(created.len(), 6);
    let newest_first = |keep: &dyn Fn(&Made) -> bool| -> Vec<String> {
        created
            .iter()
            .rev()
            .filter(|d| keep(d))
            .map(|d| d.id.clone())
            .collect()
    };
    let ids = |deliveries: &[pb::Delivery]| -> Vec<String> {
        deliveries.iter().map(|d| d.id.clone()).collect()
    };
    let list = |filter: pb::ListDeliveriesRequest| app.all_deliveries(filter);

    let everything = list(pb::ListDeliveriesRequest::default()).await;
    assert_eq!(ids(&everything), newest_first(&|_| true), "newest first");
    assert!(
        everything
            .iter()
            .all(|d| d.attempts.is_empty() && d.attempt_count >= 1)
    );

    let of_a = list(pb::ListDeliveriesRequest {
        webhook_id: a.id.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&of_a), newest_first(&|d| d.webhook_id == a.id));
    assert!(
        of_a.iter()
            .all(|d| d.status() == pb::DeliveryStatus::Succeeded)
    );

    let failed = list(pb::ListDeliveriesRequest {
        statuses: vec![pb::DeliveryStatus::Failed as i32],
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&failed), newest_first(&|d| d.webhook_id == b.id));
    let both = list(pb::ListDeliveriesRequest {
        statuses: vec![
            pb::DeliveryStatus::Failed as i32,
            pb::DeliveryStatus::Succeeded as i32,
        ],
        ..Default::default()
    })
    .await;
    assert_eq!(both.len(), 6);
    let pending = list(pb::ListDeliveriesRequest {
        statuses: vec![pb::DeliveryStatus::Pending as i32],
        ..Default::default()
    })
    .await;
    assert!(pending.is_empty());

    let rejections = list(pb::ListDeliveriesRequest {
        event_type: "withdrawal.rejected".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&rejections),
        newest_first(&|d| d.event_type == "withdrawal.rejected")
    );
    assert_eq!(rejections.len(), 2);

    let about_w1 = list(pb::ListDeliveriesRequest {
        request_id: "W-1".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(&about_w1), newest_first(&|d| d.request_id == "W-1"));
    assert_eq!(about_w1.len(), 3);

    let a_about_w1 = list(pb::ListDeliveriesRequest {
        webhook_id: a.id.clone(),
        request_id: "W-1".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        ids(&a_about_w1),
        newest_first(&|d| d.webhook_id == a.id && d.request_id == "W-1")
    );
    assert_eq!(a_about_w1.len(), 2);

    let future = list(pb::ListDeliveriesRequest {
        created_after: Some((SystemTime::now() + Duration::from_secs(3600)).into()),
        ..Default::default()
    })
    .await;
    assert!(future.is_empty());

    // Paging: pages of 4 then 2 cover the whole list, in order, without overlap.
    let first = app
        .list_deliveries(pb::ListDeliveriesRequest {
            page_size: 4,
            ..Default::default()
        })
        .await;
    assert_eq!(first.deliveries.len(), 4);
    assert!(!first.next_page_token.is_empty());
    let second = app
        .list_deliveries(pb::ListDeliveriesRequest {
            page_size: 4,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(second.deliveries.len(), 2);
    assert!(second.next_page_token.is_empty(), "the last page says so");
    let paged: Vec<String> = ids(&first.deliveries)
        .into_iter()
        .chain(ids(&second.deliveries))
        .collect();
    assert_eq!(paged, ids(&everything));

    // Paging keeps the filter: a's 4 deliveries in pages of 3.
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let page = app
            .list_deliveries(pb::ListDeliveriesRequest {
                webhook_id: a.id.clone(),
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await;
        pages.push(ids(&page.deliveries));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 1]);
    assert_eq!(pages.concat(), ids(&of_a));
}
