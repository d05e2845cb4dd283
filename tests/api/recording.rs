//! Attempt results are written in batches (`src/delivery/recorder.rs`). These tests write
//! batches straight through the store, against the real service's database, to pin down what a
//! batch means: endpoint health follows the order the attempts finished, and writing the same
//! batch twice records nothing twice.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;
use webhooks::domain::{DeliveryPolicy, Outcome};
use webhooks::proto::v1 as pb;
use webhooks::store::{FinishedAttempt, NewAttempt, Store};

use testkit::{Receiver, TestApp, spawn_app_with, withdrawal_event};

const APPROVED: pb::Decision = pb::Decision::Approved;

/// A service that stores but never sends (the test plays the worker), one webhook, and `n`
/// published events: the service, the webhook's id and a store on the service's database.
async fn published_deliveries(n: usize) -> (TestApp, String, Store) {
    let app = spawn_app_with(&["--disable-workers", "true"]).await;
    let rx = Receiver::start().await;
    let hook = app
        .create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], false)
        .await
        .webhook
        .unwrap();
    for i in 0..n {
        app.publish(withdrawal_event(
            &format!("batch-{i}"),
            &format!("W-{i}"),
            APPROVED,
            Some(1),
        ))
        .await;
    }
    let store = Store::connect(&app.database.url, 2).unwrap();
    (app, hook.id, store)
}

/// [`published_deliveries`], all of them claimed by the test: the claims come last.
async fn claimed_deliveries(
    n: usize,
) -> (
    TestApp,
    String,
    Store,
    Vec<webhooks::store::ClaimedDelivery>,
) {
    let (app, hook_id, store) = published_deliveries(n).await;
    let claimed = store
        .claim(
            n as i64,
            Duration::from_secs(60),
            &DeliveryPolicy::default(),
        )
        .await
        .unwrap()
        .deliveries;
    assert_eq!(claimed.len(), n, "every published delivery was claimed");
    (app, hook_id, store, claimed)
}

fn finished(claimed: &webhooks::store::ClaimedDelivery, ok: bool) -> FinishedAttempt {
    FinishedAttempt {
        attempt_id: Uuid::now_v7().into(),
        claimed: claimed.clone(),
        attempt: NewAttempt {
            started_at: OffsetDateTime::now_utc(),
            duration: Duration::from_millis(3),
            request_url: claimed.destination_url.clone(),
            request_headers: vec![("content-type".into(), "application/json".into())],
            response_status: Some(if ok { 200 } else { 500 }),
            response_headers: vec![],
            response_body: String::new(),
            response_body_truncated: false,
            error_kind: (!ok).then_some(webhooks::domain::AttemptErrorKind::Status),
            error_message: if ok { String::new() } else { "HTTP 500".into() },
        },
        outcome: if ok {
            Outcome::Succeeded
        } else {
            Outcome::RetryAfter {
                delay: Duration::from_secs(3600),
                reason: "HTTP 500".into(),
            }
        },
        disable: None,
    }
}

#[tokio::test]
async fn a_batch_counts_only_the_failures_after_its_last_success_and_writing_it_twice_changes_nothing()
 {
    let (app, hook_id, store, claimed) = claimed_deliveries(4).await;
    // In finishing order: fail, succeed, fail, fail -> a streak of 2, the circuit still closed.
    let batch: Vec<FinishedAttempt> = claimed
        .iter()
        .zip([false, true, false, false])
        .map(|(c, ok)| finished(c, ok))
        .collect();
    let refs: Vec<&FinishedAttempt> = batch.iter().collect();
    let policy = DeliveryPolicy::default();
    store.record_attempts(&refs, &policy).await.unwrap();

    let webhook = app.get_webhook(&hook_id).await;
    assert_eq!(webhook.consecutive_failures, 2);
    assert!(webhook.circuit_open_until.is_none());

    // The same batch again (a commit whose acknowledgement was lost): nothing new.
    store.record_attempts(&refs, &policy).await.unwrap();
    assert_eq!(app.get_webhook(&hook_id).await.consecutive_failures, 2);
    for (claim, ok) in claimed.iter().zip([false, true, false, false]) {
        let delivery = app.get_delivery(&claim.id.to_string()).await;
        assert_eq!(delivery.attempts.len(), 1, "one attempt recorded once");
        let expected = if ok {
            pb::DeliveryStatus::Succeeded
        } else {
            pb::DeliveryStatus::Pending
        };
        assert_eq!(delivery.status, expected as i32);
    }
}

#[tokio::test]
async fn a_batch_of_failures_reaching_the_threshold_opens_the_circuit_and_a_probe_closes_it() {
    let (app, hook_id, store, claimed) = claimed_deliveries(5).await;
    let policy = DeliveryPolicy {
        breaker_cooldown: Duration::from_millis(200),
        ..DeliveryPolicy::default()
    };
    let batch: Vec<FinishedAttempt> = claimed.iter().map(|c| finished(c, false)).collect();
    let refs: Vec<&FinishedAttempt> = batch.iter().collect();
    store.record_attempts(&refs, &policy).await.unwrap();
    let webhook = app.get_webhook(&hook_id).await;
    assert_eq!(webhook.consecutive_failures, 5);
    assert!(
        webhook.circuit_open_until.is_some(),
        "5 failures (the default threshold) open the circuit"
    );
    assert!(
        store
            .claim(10, Duration::from_secs(60), &policy)
            .await
            .unwrap()
            .deliveries
            .is_empty(),
        "an open circuit holds the webhook's deliveries back"
    );

    // Once the cooldown is over, one probe goes out; its success closes the circuit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.publish(withdrawal_event("probe", "P-1", APPROVED, Some(1)))
        .await;
    let probes = store
        .claim(10, Duration::from_secs(60), &policy)
        .await
        .unwrap()
        .deliveries;
    assert_eq!(
        probes.len(),
        1,
        "a half-open circuit lets one attempt through"
    );
    let batch = [finished(&probes[0], true)];
    store.record_attempts(&[&batch[0]], &policy).await.unwrap();
    let webhook = app.get_webhook(&hook_id).await;
    assert_eq!(webhook.consecutive_failures, 0);
    assert!(webhook.circuit_open_until.is_none());
}

/// The worker claims again at once only when a claim may have left something claimable
/// (`Claimed::took_all_found`), so a claim must tell "found fewer than it asked for" (wait for
/// a wake-up) from "found more than it could lock" (another instance is claiming: claim again).
#[tokio::test]
async fn a_claim_tells_whether_another_transaction_held_some_of_what_it_found() {
    let (app, _, store) = published_deliveries(3).await;
    let policy = DeliveryPolicy::default();
    // Another transaction holds two of the three, as another instance's claim would.
    let mut other = app.database.connect().await;
    let held = other.transaction().await.unwrap();
    held.query(
        "SELECT id FROM deliveries WHERE status = 'pending' ORDER BY seq LIMIT 2 FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    let claim = store
        .claim(10, Duration::from_secs(60), &policy)
        .await
        .unwrap();
    assert_eq!(claim.deliveries.len(), 1, "the held two are skipped");
    assert!(
        !claim.took_all_found,
        "two of the three it found were held by another transaction"
    );
    held.rollback().await.unwrap();
    let claim = store
        .claim(10, Duration::from_secs(60), &policy)
        .await
        .unwrap();
    assert_eq!(claim.deliveries.len(), 2);
    assert!(
        claim.took_all_found,
        "it found two, fewer than the ten it asked for, and took both"
    );
}
