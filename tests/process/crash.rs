//! A crash (SIGKILL) while deliveries are in flight loses nothing: after a restart on the same
//! database every acknowledged event reaches the receiver at least once, and every delivery ends
//! SUCCEEDED. Duplicates (attempts that reached the receiver but died before being recorded) are
//! allowed and reported.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use webhooks::config::ServeConfig;
use webhooks::proto::v1 as pb;

use testkit::{
    Receiver, Service, TestDatabase, all_deliveries, withdrawal_approved, withdrawal_webhook,
};

use crate::support::{BIN, answering_after};

/// Events published one by one (concurrently).
const SINGLE_EVENTS: usize = 100;
/// Events published with PublishEvents, in batches of `BATCH`.
const BATCHED_EVENTS: usize = 200;
const BATCH: usize = 50;
/// Kill once the receiver has seen at least this many requests.
const KILL_AFTER: usize = 50;

const FLAGS: &[&str] = &[
    "--allow-private-destinations",
    "true",
    "--poll-interval",
    "100ms",
    "--retry-schedule",
    "200ms,200ms,200ms,200ms,200ms",
    "--request-timeout",
    "2s",
    "--worker-concurrency",
    "8",
];

/// `serve`'s settings alone, to read what the service makes of `FLAGS`.
#[derive(Parser)]
struct ServeFlags {
    #[command(flatten)]
    serve: ServeConfig,
}

/// The claim lease the service uses with `FLAGS` (`ServeConfig::lease`): a killed worker's
/// deliveries become due again only when it runs out.
fn lease() -> Duration {
    let mut args = vec!["webhooks"];
    args.extend_from_slice(FLAGS);
    ServeFlags::parse_from(args).serve.lease()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_delivery_loses_nothing() {
    let started = Instant::now();
    let database = TestDatabase::fresh();
    let receiver = answering_after(0, 50).await;
    let mut first = Service::start(BIN, &database, FLAGS).await;

    let webhook = first
        .admin()
        .await
        .create_webhook(withdrawal_webhook(
            "crash test",
            &receiver.url("/hooks/crash"),
        ))
        .await
        .expect("webhook created")
        .into_inner()
        .webhook
        .expect("webhook in the answer");

    // Publish; every acknowledged event id is recorded.
    let ingest = first.ingest().await;
    let mut acknowledged: HashSet<String> = HashSet::new();
    let singles: Vec<pb::PublishEventResponse> = futures_util::stream::iter(0..SINGLE_EVENTS)
        .map(|i| {
            let mut ingest = ingest.clone();
            async move {
                ingest
                    .publish_event(withdrawal_approved(
                        &format!("crash-single-{i}"),
                        &format!("WD-single-{i}"),
                    ))
                    .await
                    .expect("PublishEvent acknowledged")
                    .into_inner()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut responses = singles;
    for batch in 0..BATCHED_EVENTS / BATCH {
        let events = (0..BATCH)
            .map(|i| {
                let n = batch * BATCH + i;
                withdrawal_approved(&format!("crash-batch-{n}"), &format!("WD-batch-{n}"))
            })
            .collect();
        let answer = ingest
            .clone()
            .publish_events(pb::PublishEventsRequest { events })
            .await
            .expect("PublishEvents acknowledged")
            .into_inner();
        assert_eq!(answer.results.len(), BATCH, "one result per event");
        responses.extend(answer.results);
    }
    for response in &responses {
        assert!(!response.duplicate, "distinct keys are never duplicates");
        assert_eq!(
            response.delivery_ids.len(),
            1,
            "one matching webhook, one delivery: {response:?}"
        );
        acknowledged.insert(response.event_id.clone());
    }
    let total = SINGLE_EVENTS + BATCHED_EVENTS;
    assert_eq!(acknowledged.len(), total, "every event id is distinct");
    let published_after = started.elapsed();

    // SIGKILL once deliveries are flowing but not all have arrived.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.count() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} deliveries arrived within 30 s of publishing",
            receiver.count()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let in_flight_at_kill = receiver.in_flight();
    let status = first.sigkill();
    let killed_at = Instant::now();
    let received_at_kill = receiver.count();
    let distinct_at_kill = distinct_event_ids(&receiver).len();
    assert!(
        distinct_at_kill < total,
        "every event had already arrived before the SIGKILL ({received_at_kill} requests); the \
         crash hit nothing in flight"
    );
    let killed_after = started.elapsed();

    // What the dead process left behind: claimed (leased) but unrecorded deliveries.
    let db = database.connect().await;
    let leased: i64 = db
        .query_one(
            "SELECT count(*) FROM deliveries WHERE status = 'pending' AND claim_token IS NOT NULL",
            &[],
        )
        .await
        .expect("deliveries readable")
        .get(0);
    let pending: i64 = db
        .query_one(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'",
            &[],
        )
        .await
        .expect("deliveries readable")
        .get(0);

    // Restart on the same database and a new port. Deliveries the dead process had claimed
    // become due again only when their lease runs out, so the deadline counts from the kill.
    let second = Service::start(BIN, &database, FLAGS).await;
    let lease = lease();
    let wait = lease + Duration::from_secs(60);
    let deadline = killed_at + wait;
    loop {
        let seen = distinct_event_ids(&receiver);
        let missing: Vec<&String> = acknowledged.difference(&seen).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events never reached the receiver within {wait:?} of the SIGKILL \
             (lease {lease:?}); e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_received_after = started.elapsed();

    // Every delivery ends SUCCEEDED, as the admin API reports it.
    let mut admin = second.admin().await;
    let deliveries = loop {
        let deliveries = all_deliveries(&mut admin, &webhook.id).await;
        let unfinished = deliveries
            .iter()
            .filter(|d| d.status != pb::DeliveryStatus::Succeeded as i32)
            .count();
        if unfinished == 0 && deliveries.len() >= total {
            break deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} of {} deliveries are not SUCCEEDED {wait:?} after the SIGKILL \
             (lease {lease:?}); e.g. {:?}",
            deliveries.len(),
            deliveries
                .iter()
                .find(|d| d.status != pb::DeliveryStatus::Succeeded as i32)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all_succeeded_after = started.elapsed();

    // The receiver saw nothing but our events, each always under its delivery's webhook-id.
    let received = receiver.received();
    let mut headers_by_event: HashMap<String, HashSet<String>> = HashMap::new();
    for request in &received {
        let event_id = request.event_id();
        assert!(
            acknowledged.contains(&event_id),
            "an event nobody published arrived: {event_id}"
        );
        headers_by_event
            .entry(event_id)
            .or_default()
            .insert(request.webhook_id());
    }

    assert_eq!(deliveries.len(), total, "one delivery per event");
    let delivered_events: HashSet<String> = deliveries.iter().map(|d| d.event_id.clone()).collect();
    assert_eq!(
        delivered_events, acknowledged,
        "deliveries are for our events"
    );
    // GetDelivery of each, 8 at a time: SUCCEEDED, the last attempt answered 200, and every
    // request the receiver got for its event carried the delivery's webhook-id.
    let fetched: Vec<pb::Delivery> = futures_util::stream::iter(deliveries.iter().map(|listed| {
        let mut admin = admin.clone();
        let id = listed.id.clone();
        async move {
            admin
                .get_delivery(pb::GetDeliveryRequest { id })
                .await
                .expect("GetDelivery answers")
                .into_inner()
        }
    }))
    .buffer_unordered(8)
    .collect()
    .await;
    for delivery in &fetched {
        assert_eq!(
            delivery.status,
            pb::DeliveryStatus::Succeeded as i32,
            "{delivery:?}"
        );
        let last = delivery
            .attempts
            .last()
            .unwrap_or_else(|| panic!("a succeeded delivery without attempts: {delivery:?}"));
        assert!(last.succeeded && last.response_status == 200, "{last:?}");
        let headers = &headers_by_event[&delivery.event_id];
        assert_eq!(
            headers,
            &HashSet::from([delivery.message_id.clone()]),
            "every request of a delivery carries its webhook-id"
        );
    }

    let checked_after = started.elapsed();
    let duplicates = received.len() - acknowledged.len();
    eprintln!(
        "kill_9_mid_delivery_loses_nothing: {total} events acknowledged in {published_after:.1?}; \
         SIGKILL ({status}) at {killed_after:.1?} with {received_at_kill} requests received \
         ({distinct_at_kill} distinct events), {in_flight_at_kill} unanswered at the receiver, \
         {leased} deliveries left leased and {pending} pending in the database; lease \
         {lease:?}; all {total} events received {:.1?} after start, all SUCCEEDED at {:.1?}, \
         GetDelivery checks done at {:.1?}; {} requests in all, {duplicates} duplicates; test \
         took {:.1?}",
        all_received_after,
        all_succeeded_after,
        checked_after,
        received.len(),
        started.elapsed()
    );

    drop(db);
    drop(second);
    database.drop_database().await;
}

fn distinct_event_ids(receiver: &Receiver) -> HashSet<String> {
    receiver.received().iter().map(|r| r.event_id()).collect()
}
