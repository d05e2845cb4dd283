//! WatchDeliveries: the live delivery log, from every instance, resumable without gaps.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Streaming};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;
use webhooks::startup::Application;
use webhooks::stream::UpdateHub;

use crate::helpers::{Receiver, Reply, fresh_database_url, serve_config, withdrawal_event};

/// A service instance whose update hub the test can inspect.
struct Instance {
    admin: WebhookAdminClient<Channel>,
    ingest: EventIngestClient<Channel>,
    hub: Arc<UpdateHub>,
    _stop: oneshot::Sender<()>,
}

async fn start_instance(database_url: &str, extra: &[&str]) -> Instance {
    let _ = rustls::crypto::ring::default_provider().install_default();
    webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
    let app = Application::build(serve_config(database_url, extra))
        .await
        .expect("the service starts");
    let addr = app.local_addr();
    let hub = app.update_hub();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Instance {
        admin: WebhookAdminClient::new(channel.clone()),
        ingest: EventIngestClient::new(channel),
        hub,
        _stop: stop,
    }
}

async fn create_hook(instance: &Instance, url: &str) -> String {
    instance
        .admin
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(pb::Webhook {
                name: "Watched".into(),
                destination_url: url.into(),
                function: pb::Function::Withdrawal as i32,
                events: Some(pb::EventSelection {
                    approval_nodes: vec![1],
                    rejection: true,
                }),
                ..Default::default()
            }),
            secret: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap()
        .id
}

async fn watch(
    instance: &Instance,
    request: pb::WatchDeliveriesRequest,
) -> Streaming<pb::DeliveryUpdate> {
    instance
        .admin
        .clone()
        .watch_deliveries(request)
        .await
        .expect("watch opens")
        .into_inner()
}

/// The next update, or a panic after `within`.
async fn next(stream: &mut Streaming<pb::DeliveryUpdate>, within: Duration) -> pb::DeliveryUpdate {
    match tokio::time::timeout(within, stream.next()).await {
        Ok(Some(Ok(update))) => update,
        other => panic!("no update within {within:?}: {other:?}"),
    }
}

/// Reads updates until one leaves `delivery_id` in a final status (or `count` updates arrived).
async fn read_until_final(stream: &mut Streaming<pb::DeliveryUpdate>) -> Vec<pb::DeliveryUpdate> {
    let mut updates = Vec::new();
    loop {
        let update = next(stream, Duration::from_secs(20)).await;
        let status = update
            .delivery
            .as_ref()
            .map(|d| d.status)
            .unwrap_or_default();
        updates.push(update);
        if status == pb::DeliveryStatus::Succeeded as i32
            || status == pb::DeliveryStatus::Failed as i32
        {
            return updates;
        }
    }
}

fn kinds(updates: &[pb::DeliveryUpdate]) -> Vec<pb::UpdateKind> {
    updates
        .iter()
        .map(|u| pb::UpdateKind::try_from(u.kind).unwrap())
        .collect()
}

fn cursors(updates: &[pb::DeliveryUpdate]) -> Vec<i64> {
    updates.iter().map(|u| u.cursor.parse().unwrap()).collect()
}

#[tokio::test]
async fn a_watcher_sees_the_whole_life_of_a_delivery_that_fails_twice_then_succeeds() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(503)]);
    let hook = create_hook(&instance, &receiver.url("/hook")).await;
    let mut stream = watch(&instance, pb::WatchDeliveriesRequest::default()).await;

    let published = instance
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "life-1",
            "W-LIFE",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .unwrap()
        .into_inner();
    let updates = read_until_final(&mut stream).await;

    assert_eq!(
        kinds(&updates),
        vec![
            pb::UpdateKind::Created,
            pb::UpdateKind::AttemptFailed,
            pb::UpdateKind::AttemptFailed,
            pb::UpdateKind::AttemptSucceeded
        ]
    );
    let statuses: Vec<u32> = updates
        .iter()
        .skip(1)
        .map(|u| u.attempt.as_ref().unwrap().response_status)
        .collect();
    assert_eq!(statuses, vec![500, 503, 204]);
    let attempt_counts: Vec<u32> = updates
        .iter()
        .map(|u| u.delivery.as_ref().unwrap().attempt_count)
        .collect();
    assert_eq!(attempt_counts, vec![0, 1, 2, 3]);
    assert!(
        updates[1]
            .delivery
            .as_ref()
            .unwrap()
            .next_attempt_at
            .is_some(),
        "a retry is scheduled"
    );
    let cursors = cursors(&updates);
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors increase: {cursors:?}"
    );
    for update in &updates {
        let delivery = update.delivery.as_ref().unwrap();
        assert_eq!(delivery.id, published.delivery_ids[0]);
        assert_eq!(delivery.webhook_id, hook);
    }
}

#[tokio::test]
async fn resuming_from_any_cursor_replays_exactly_what_followed() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    create_hook(&instance, &receiver.url("/hook")).await;
    let mut live = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    let mut ingest = instance.ingest.clone();
    for i in 0..3 {
        ingest
            .publish_event(withdrawal_event(
                &format!("resume-{i}"),
                &format!("W-R{i}"),
                pb::Decision::Rejected,
                None,
            ))
            .await
            .unwrap();
    }
    // 3 created + 1 failed attempt + 3 successes.
    let mut seen = Vec::new();
    while seen.len() < 7 {
        seen.push(next(&mut live, Duration::from_secs(20)).await);
    }
    for (i, from) in seen.iter().enumerate() {
        let mut resumed = watch(
            &instance,
            pb::WatchDeliveriesRequest {
                after_cursor: from.cursor.clone(),
                ..Default::default()
            },
        )
        .await;
        let mut replayed = Vec::new();
        while replayed.len() < seen.len() - i - 1 {
            replayed.push(next(&mut resumed, Duration::from_secs(10)).await);
        }
        assert_eq!(
            replayed,
            seen[i + 1..].to_vec(),
            "resuming after cursor {}",
            from.cursor
        );
    }
}

#[tokio::test]
async fn a_watcher_on_one_instance_sees_deliveries_made_by_another() {
    let (url, _) = fresh_database_url();
    // The watched instance sends nothing itself.
    let watched = start_instance(&url, &["--disable-workers", "true"]).await;
    let worker = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    let hook = create_hook(&watched, &receiver.url("/hook")).await;
    let mut stream = watch(
        &watched,
        pb::WatchDeliveriesRequest {
            webhook_id: hook.clone(),
            ..Default::default()
        },
    )
    .await;
    worker
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "two-1",
            "W-TWO",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .unwrap();
    let updates = read_until_final(&mut stream).await;
    assert_eq!(
        kinds(&updates),
        vec![pb::UpdateKind::Created, pb::UpdateKind::AttemptSucceeded]
    );
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn filters_pass_only_matching_updates() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    let watched_hook = create_hook(&instance, &receiver.url("/a")).await;
    create_hook(&instance, &receiver.url("/b")).await;
    let mut succeeded_only = watch(
        &instance,
        pb::WatchDeliveriesRequest {
            webhook_id: watched_hook.clone(),
            statuses: vec![pb::DeliveryStatus::Succeeded as i32],
            ..Default::default()
        },
    )
    .await;
    instance
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "filter-1",
            "W-F",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap();
    let update = next(&mut succeeded_only, Duration::from_secs(20)).await;
    assert_eq!(update.kind, pb::UpdateKind::AttemptSucceeded as i32);
    assert_eq!(update.delivery.unwrap().webhook_id, watched_hook);
    // Nothing else matches: the other hook's updates and the CREATED ones are filtered out.
    let extra = tokio::time::timeout(Duration::from_millis(800), succeeded_only.next()).await;
    assert!(extra.is_err(), "unexpected update: {extra:?}");
}

#[tokio::test]
async fn a_consumer_that_never_reads_stalls_neither_deliveries_nor_other_watchers() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    create_hook(&instance, &receiver.url("/hook")).await;
    let _stuck = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    let mut reader = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    let events: Vec<_> = (0..300)
        .map(|i| {
            withdrawal_event(
                &format!("slow-{i}"),
                &format!("W-S{i}"),
                pb::Decision::Rejected,
                None,
            )
        })
        .collect();
    instance
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest { events })
        .await
        .unwrap();
    // 300 created + 300 succeeded, all seen by the reading watcher, in cursor order.
    let mut last = 0i64;
    let mut succeeded = 0;
    let mut total = 0;
    while succeeded < 300 {
        let update = next(&mut reader, Duration::from_secs(30)).await;
        let cursor: i64 = update.cursor.parse().unwrap();
        assert_eq!(cursor, last + 1, "no gaps, no duplicates");
        last = cursor;
        total += 1;
        if update.kind == pb::UpdateKind::AttemptSucceeded as i32 {
            succeeded += 1;
        }
    }
    assert_eq!(total, 600);
    assert_eq!(
        receiver.received().len(),
        300,
        "every delivery went out despite the stuck watcher"
    );
}

#[tokio::test]
async fn cancelling_a_stream_releases_its_watcher() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let stream = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    let second = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    assert_eq!(instance.hub.open_watchers(), 2);
    drop(stream);
    drop(second);
    let mut open = usize::MAX;
    for _ in 0..100 {
        open = instance.hub.open_watchers();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0, "dropped streams free their server tasks");
}

#[tokio::test]
async fn bad_cursors_are_refused() {
    let (url, _) = fresh_database_url();
    let instance = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    create_hook(&instance, &receiver.url("/hook")).await;
    let mut admin = instance.admin.clone();
    let result = admin
        .watch_deliveries(pb::WatchDeliveriesRequest {
            after_cursor: "abc".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(result.err().map(|s| s.code()), Some(Code::InvalidArgument));
    let result = admin
        .watch_deliveries(pb::WatchDeliveriesRequest {
            after_cursor: "999999".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(result.err().map(|s| s.code()), Some(Code::OutOfRange));

    // Fill the log, then prune its oldest entries as retention would.
    let mut stream = watch(&instance, pb::WatchDeliveriesRequest::default()).await;
    for i in 0..3 {
        instance
            .ingest
            .clone()
            .publish_event(withdrawal_event(
                &format!("old-{i}"),
                &format!("W-O{i}"),
                pb::Decision::Rejected,
                None,
            ))
            .await
            .unwrap();
    }
    for _ in 0..6 {
        next(&mut stream, Duration::from_secs(20)).await;
    }
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db.execute("DELETE FROM delivery_updates WHERE cursor <= 3", &[])
        .await
        .unwrap();
    let result = admin
        .watch_deliveries(pb::WatchDeliveriesRequest {
            after_cursor: "1".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(result.err().map(|s| s.code()), Some(Code::OutOfRange));
    // Right at the edge of what is kept still works.
    let mut edge = watch(
        &instance,
        pb::WatchDeliveriesRequest {
            after_cursor: "3".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(next(&mut edge, Duration::from_secs(10)).await.cursor, "4");
}
