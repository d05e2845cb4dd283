//! Direct dispatch, seen from outside: which path each attempt took, read off the real
//! process's `webhooks_attempts_started_total{path}` (a process of its own, so no other test's
//! attempts are counted), and what the claim is still there for.

use std::time::Duration;

use webhooks::proto::v1 as pb;

use testkit::{Service, TestDatabase, free_port, withdrawal_approved, withdrawal_webhook};

use crate::metrics::{sample, scrape};
use crate::support::{BIN, answering_after};

const DIRECT: &str = "webhooks_attempts_started_total{path=\"direct\"}";
const CLAIMED: &str = "webhooks_attempts_started_total{path=\"claimed\"}";

/// A service whose poll interval is far longer than any wait here, so whatever a claim sends it
/// sends because something woke it, never because it polled.
async fn service_without_polling(database: &TestDatabase, extra: &[&str]) -> (Service, u16) {
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut args = vec![
        "--allow-private-destinations",
        "true",
        "--poll-interval",
        "60s",
        "--metrics-addr",
        &metrics_addr,
    ];
    args.extend_from_slice(extra);
    (Service::start(BIN, database, &args).await, metrics_port)
}

/// Lets the claim loop settle after the set-up: an admin change wakes it, and while it claims, a
/// publish of the same instance leases nothing (their turns to lease exclude each other), which
/// would move that publish's deliveries to the claim path these tests tell apart.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn published_deliveries_are_sent_by_the_publishing_instance_without_a_claim() {
    let database = TestDatabase::fresh();
    let (service, metrics_port) = service_without_polling(&database, &[]).await;
    let receiver = answering_after(0, 0).await;
    let mut admin = service.admin().await;
    admin
        .create_webhook(withdrawal_webhook("direct", &receiver.url("/hook")))
        .await
        .expect("created");
    settle().await;
    let mut ingest = service.ingest().await;
    for i in 0..5 {
        ingest
            .publish_event(withdrawal_approved(&format!("d-{i}"), &format!("W-D{i}")))
            .await
            .expect("published");
    }
    receiver.wait_for(5, Duration::from_secs(20)).await;
    let text = scrape(metrics_port).await;
    assert_eq!(sample(&text, DIRECT), Some(5.0), "{text}");
    assert_eq!(
        sample(&text, CLAIMED),
        None,
        "no attempt needed a claim: {text}"
    );
    database.drop_database().await;
}

#[tokio::test]
async fn deliveries_past_the_cap_wait_and_are_claimed_when_an_attempt_frees_room() {
    let database = TestDatabase::fresh();
    let (service, metrics_port) =
        service_without_polling(&database, &["--max-in-flight-per-webhook", "1"]).await;
    let receiver = answering_after(300, 300).await;
    let mut admin = service.admin().await;
    admin
        .create_webhook(withdrawal_webhook("capped", &receiver.url("/hook")))
        .await
        .expect("created");
    settle().await;
    let mut ingest = service.ingest().await;
    let batch = pb::PublishEventsRequest {
        events: (0..3)
            .map(|i| withdrawal_approved(&format!("c-{i}"), &format!("W-C{i}")))
            .collect(),
    };
    ingest.publish_events(batch).await.expect("published");
    // With polling out of the picture, the two queued deliveries go out only because recording
    // the attempt before each woke the claim.
    let received = receiver.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 3);
    for pair in received.windows(2) {
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(250),
            "one attempt at a time under a cap of 1"
        );
    }
    let text = scrape(metrics_port).await;
    assert_eq!(sample(&text, DIRECT), Some(1.0), "one slot of room: {text}");
    assert_eq!(sample(&text, CLAIMED), Some(2.0), "{text}");
    database.drop_database().await;
}

#[tokio::test]
async fn a_later_event_of_the_same_request_in_one_batch_is_not_sent_beside_the_first() {
    let database = TestDatabase::fresh();
    let (service, metrics_port) = service_without_polling(&database, &[]).await;
    let receiver = answering_after(300, 300).await;
    let mut admin = service.admin().await;
    let mut spec =
        testkit::webhook_spec(&receiver.url("/hook"), pb::Function::Withdrawal, &[1], true);
    spec.name = "ordered".into();
    admin
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(spec),
            ..Default::default()
        })
        .await
        .expect("created");
    settle().await;
    settle().await;
    let mut ingest = service.ingest().await;
    let batch = pb::PublishEventsRequest {
        events: vec![
            withdrawal_approved("o-1", "W-O1"),
            testkit::withdrawal_event("o-2", "W-O1", pb::Decision::Rejected, None),
        ],
    };
    ingest.publish_events(batch).await.expect("published");
    let received = receiver.wait_for(2, Duration::from_secs(20)).await;
    let order: Vec<String> = received.iter().map(|r| r.event_type()).collect();
    assert_eq!(order, ["withdrawal.approved", "withdrawal.rejected"]);
    assert!(
        received[1].at.duration_since(received[0].at) >= Duration::from_millis(250),
        "the rejection went out only after the approval was answered"
    );
    let text = scrape(metrics_port).await;
    assert_eq!(sample(&text, DIRECT), Some(1.0), "{text}");
    assert_eq!(sample(&text, CLAIMED), Some(1.0), "{text}");
    database.drop_database().await;
}

/// Publishes from 8 callers at once, spread over `services`, half of them starting with a
/// batch so the first statements overlap, to one webhook whose endpoint holds every request; then
/// asserts that only the cap of 3 was ever sent (anything past it would go out at once, beside
/// the first three) and that every instance together started just 3 attempts.
async fn publish_concurrently_to_a_hanging_webhook(services: &[(Service, u16)]) {
    let hanging = testkit::Receiver::start().await;
    hanging.reply_by_default(testkit::Reply::status(200).after(Duration::from_secs(120)));
    let mut admin = services[0].0.admin().await;
    admin
        .create_webhook(withdrawal_webhook("hanging", &hanging.url("/hang")))
        .await
        .expect("created");
    settle().await;
    let mut calls = tokio::task::JoinSet::new();
    for caller in 0..8 {
        let mut ingest = services[caller % services.len()].0.ingest().await;
        calls.spawn(async move {
            for i in 0..5 {
                let key = format!("cap-{caller}-{i}");
                if (i + caller) % 2 == 0 {
                    ingest
                        .publish_event(withdrawal_approved(&key, &format!("W-{key}")))
                        .await
                        .map(|_| ())
                } else {
                    let batch = pb::PublishEventsRequest {
                        events: (0..4)
                            .map(|j| {
                                withdrawal_approved(&format!("{key}-{j}"), &format!("W-{key}-{j}"))
                            })
                            .collect(),
                    };
                    ingest.publish_events(batch).await.map(|_| ())
                }
                .expect("published");
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        done.expect("caller finished");
    }
    hanging.wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hanging.received().len(),
        3,
        "at most the cap of 3 attempts in flight to the webhook"
    );
    let mut started = 0.0;
    for (_, metrics_port) in services {
        let text = scrape(*metrics_port).await;
        started += sample(&text, DIRECT).unwrap_or(0.0) + sample(&text, CLAIMED).unwrap_or(0.0);
    }
    assert_eq!(started, 3.0);
}

#[tokio::test]
async fn concurrent_publishes_never_lease_past_the_per_webhook_cap() {
    let database = TestDatabase::fresh();
    let service = service_without_polling(&database, &["--max-in-flight-per-webhook", "3"]).await;
    publish_concurrently_to_a_hanging_webhook(&[service]).await;
    database.drop_database().await;
}

#[tokio::test]
async fn publishes_on_two_instances_never_lease_past_the_cluster_wide_cap() {
    let database = TestDatabase::fresh();
    let first = service_without_polling(&database, &["--max-in-flight-per-webhook", "3"]).await;
    let second = service_without_polling(&database, &["--max-in-flight-per-webhook", "3"]).await;
    publish_concurrently_to_a_hanging_webhook(&[first, second]).await;
    database.drop_database().await;
}
