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

use crate::helpers::operator;
use testkit::{Receiver, Reply, fresh_database_url, serve_config, withdrawal_event};

/// A service instance whose update hub the test can inspect.
struct Instance {
    addr: std::net::SocketAddr,
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
        addr,
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
            ..Default::default()
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
    // Pruning goes a batch at a time; each of these updates is a batch of its own (one
    // delivery created, or one attempt recorded, per statement).
    db.batch_execute(
        "DELETE FROM delivery_update_entries WHERE batch_id IN \
             (SELECT id FROM delivery_update_batches WHERE first_cursor <= 3); \
         DELETE FROM delivery_update_batches WHERE first_cursor <= 3;",
    )
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

/// Set in the child process that runs a memory test alone (see [`in_a_process_of_its_own`]).
const ALONE: &str = "WEBHOOKS_TEST_ALONE";

/// Whether this is the child that should do the measuring. The parent re-runs `test` (its path
/// in this test binary) in a process of its own and checks that it passed: tests run side by
/// side in one process, so its RSS would otherwise count the other tests' memory too.
fn in_a_process_of_its_own(test: &str) -> bool {
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(ALONE, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "{test} failed on its own");
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run on its own: {stdout}"
    );
    false
}

/// This process's resident set size, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// A WatchDeliveries call over a raw HTTP/2 connection whose client never reads the response
/// body, so it never gives the server flow-control window beyond the first `window` bytes.
/// Returns the response (kept to keep the stream open) and the request half.
async fn stalled_watch(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    addr: std::net::SocketAddr,
    request: &pb::WatchDeliveriesRequest,
) -> (http::Response<h2::RecvStream>, h2::SendStream<bytes::Bytes>) {
    use prost::Message;
    let encoded = request.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + encoded.len());
    frame.push(0u8);
    frame.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&encoded);
    let http_request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!(
            "http://{addr}/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries"
        ))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .body(())
        .unwrap();
    let ready = client
        .clone()
        .ready()
        .await
        .expect("the connection takes a stream");
    *client = ready;
    let (response, mut send) = client
        .send_request(http_request, false)
        .expect("the stream opens");
    send.send_data(bytes::Bytes::from(frame), true)
        .expect("the request is sent");
    let response = response.await.expect("response headers");
    assert_eq!(response.status(), http::StatusCode::OK);
    (response, send)
}

/// Opens `count` raw HTTP/2 connections to `addr` whose streams get a window of `window` bytes.
async fn stalled_connections(
    addr: std::net::SocketAddr,
    count: usize,
    window: u32,
) -> (
    Vec<h2::client::SendRequest<bytes::Bytes>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let mut clients = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..count {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        let (client, connection) = h2::client::Builder::new()
            .initial_window_size(window)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .expect("HTTP/2 handshake");
        clients.push(client);
        connections.push(tokio::spawn(async move {
            let _ = connection.await;
        }));
    }
    (clients, connections)
}

/// Fills the log with `count` CREATED updates (one per published event, workers off so nothing
/// follows them) and waits until they are all sequenced.
async fn fill_the_log(instance: &Instance, url: &str, count: usize) {
    create_hook(instance, "http://127.0.0.1:9/never-sent").await;
    let mut ingest = instance.ingest.clone();
    for batch in 0..count.div_ceil(1000) {
        let events = (batch * 1000..((batch + 1) * 1000).min(count))
            .map(|i| {
                withdrawal_event(
                    &format!("fill-{i}"),
                    &format!("W-FILL-{i}"),
                    pb::Decision::Rejected,
                    None,
                )
            })
            .collect();
        ingest
            .publish_events(pb::PublishEventsRequest { events })
            .await
            .expect("a batch published");
    }
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let want = i64::try_from(count).unwrap();
    testkit::wait_until(
        "the log to hold every update",
        Duration::from_secs(60),
        || {
            let db = &db;
            async move {
                let row = db
                    .query_one(
                        "SELECT coalesce(max(last_cursor), 0) FROM delivery_update_batches",
                        &[],
                    )
                    .await
                    .ok()?;
                (row.get::<_, i64>(0) >= want).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn replaying_watchers_that_never_read_hold_a_few_pages_not_the_log() {
    if !in_a_process_of_its_own(
        "watch::replaying_watchers_that_never_read_hold_a_few_pages_not_the_log",
    ) {
        return;
    }
    const STREAMS: usize = 100;
    const CONNECTIONS: usize = 10;
    const LIMIT_KIB: u64 = 8 * 1024;
    let (url, _) = fresh_database_url();
    // All 100 streams come from one address with authentication off: no cap on them here.
    let instance = start_instance(
        &url,
        &[
            "--disable-workers",
            "true",
            "--max-watch-streams-per-credential",
            "0",
        ],
    )
    .await;
    let addr = instance.addr;
    fill_the_log(&instance, &url, 10_000).await;
    let replay = pb::WatchDeliveriesRequest {
        after_cursor: "0".into(),
        ..Default::default()
    };

    // Warm up: the pool's connections, prepared statements and the first HTTP/2 connections
    // are allocated once, whatever the number of streams.
    let (mut warm_clients, warm_connections) = stalled_connections(addr, 2, 1024).await;
    let mut warm = Vec::new();
    for client in &mut warm_clients {
        warm.push(stalled_watch(client, addr, &replay).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(warm);
    drop(warm_clients);
    for connection in warm_connections {
        connection.abort();
    }
    testkit::wait_until("warm-up streams to close", Duration::from_secs(10), || {
        let open = instance.hub.open_watchers();
        async move { (open == 0).then_some(()) }
    })
    .await;

    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    testkit::os::trim_the_heap();
    let before = rss_kib();
    let (mut clients, connections) = stalled_connections(addr, CONNECTIONS, 1024).await;
    let mut streams = Vec::new();
    for i in 0..STREAMS {
        let client = &mut clients[i % CONNECTIONS];
        streams.push(stalled_watch(client, addr, &replay).await);
    }
    assert_eq!(instance.hub.open_watchers(), STREAMS);
    let opened = rss_kib();
    // The streams do replay: the first window's worth of updates arrived (reading it releases
    // no window, so the server still may not send more).
    let first = tokio::time::timeout(Duration::from_secs(10), streams[0].0.body_mut().data())
        .await
        .expect("the replay starts")
        .expect("a data frame")
        .expect("readable");
    assert_eq!(first[0], 0, "a gRPC message frame");
    // Let every stream read as far as it will.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = rss_kib();
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    println!(
        "RSS before {before} KiB, after opening {STREAMS} streams {opened} KiB (+{}), \
         3 s later {settled} KiB (+{}); tasks {tasks_before} -> {tasks}",
        opened.saturating_sub(before),
        settled.saturating_sub(before),
    );
    let grown = opened.max(settled).saturating_sub(before);
    assert!(
        grown < LIMIT_KIB,
        "{STREAMS} stalled replaying streams grew the RSS by {grown} KiB (limit {LIMIT_KIB} KiB)"
    );
    // hyper's task per HTTP/2 stream and the connections' (both ends are in this process), but
    // no task of the watchers' own.
    assert!(
        tasks < tasks_before + STREAMS + 4 * CONNECTIONS,
        "the streams run tasks of their own: {tasks_before} -> {tasks} alive tasks"
    );

    // Cancelling the streams (RST_STREAM, the connections stay up) frees their watchers.
    drop(streams);
    testkit::wait_until(
        "cancelled streams to close",
        Duration::from_secs(10),
        || {
            let open = instance.hub.open_watchers();
            async move { (open == 0).then_some(()) }
        },
    )
    .await;
    drop(clients);
    for connection in connections {
        connection.abort();
    }
}

/// How long after its key's revocation a stream may still run (the key cache's 5 s plus the
/// 5 s between two checks of a running call), with room for a loaded machine.
const REVOKED_WITHIN: Duration = Duration::from_secs(10 + 5);

/// A WatchDeliveries call over gRPC-Web on HTTP/1.1, as a browser makes it on the console's
/// port. Resolves when the stream ends, with its messages' count and its trailers.
async fn grpc_web_watch(
    addr: std::net::SocketAddr,
    request: &pb::WatchDeliveriesRequest,
    token: &str,
) -> (usize, std::collections::HashMap<String, String>) {
    use bytes::Buf;
    use http_body_util::{BodyExt, Full};
    use prost::Message;
    let encoded = request.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&encoded);
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!(
            "http://{addr}/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries"
        ))
        .header(http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header(http::header::ACCEPT, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(bytes::Bytes::from(frame)))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let response = client.request(request).await.expect("the console answers");
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    let mut messages = 0;
    let mut trailers = std::collections::HashMap::new();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let payload = body.split_to(length.min(body.len()));
        if flag & 0x80 == 0 {
            messages += 1;
        } else {
            for line in String::from_utf8_lossy(&payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
        }
    }
    (messages, trailers)
}

#[tokio::test]
async fn a_revoked_keys_streams_end_unauthenticated_on_the_grpc_port_and_the_console() {
    let (url, name) = fresh_database_url();
    let app = testkit::spawn_app_on(
        &url,
        &name,
        &["--require-auth", "true", "--console-addr", "127.0.0.1:0"],
    )
    .await;
    let console = app.console_addr.expect("the console listens");
    let store = webhooks::store::Store::connect(&url, 2).unwrap();
    let (key, token) = store
        .create_api_key("watcher", webhooks::store::Role::Viewer, &operator())
        .await
        .unwrap();
    let mut grpc = app
        .admin
        .clone()
        .watch_deliveries(testkit::with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(&token),
        ))
        .await
        .expect("the key may watch")
        .into_inner();
    let web = tokio::spawn({
        let token = token.clone();
        async move { grpc_web_watch(console, &pb::WatchDeliveriesRequest::default(), &token).await }
    });
    // A valid key's streams outlive a re-check (one is due every 5 s).
    let quiet = tokio::time::timeout(Duration::from_secs(7), grpc.next()).await;
    assert!(quiet.is_err(), "the stream ended early: {quiet:?}");
    assert!(!web.is_finished(), "the gRPC-Web stream ended early");

    assert!(store.revoke_api_key(key.id, &operator()).await.unwrap());
    let revoked = std::time::Instant::now();
    let ended = tokio::time::timeout(REVOKED_WITHIN, grpc.next())
        .await
        .expect("the gRPC stream ends after the revocation");
    match ended {
        Some(Err(status)) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert!(status.message().contains("revoked"), "{status:?}");
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    println!(
        "the gRPC stream ended {:?} after the revocation",
        revoked.elapsed()
    );
    let (messages, trailers) = tokio::time::timeout(REVOKED_WITHIN, web)
        .await
        .expect("the gRPC-Web stream ends after the revocation")
        .unwrap();
    assert_eq!(messages, 0);
    assert_eq!(
        trailers.get("grpc-status").map(String::as_str),
        Some("16"),
        "{trailers:?}"
    );
    assert!(revoked.elapsed() < REVOKED_WITHIN);
}

#[tokio::test]
async fn a_token_removed_by_a_restart_ends_its_streams_then_is_refused() {
    const OLD: &str = "old-admin-token-0123456789";
    const NEW: &str = "new-admin-token-0123456789";
    let (url, name) = fresh_database_url();
    let app = testkit::spawn_app_on(&url, &name, &["--admin-token", OLD]).await;
    let mut stream = app
        .admin
        .clone()
        .watch_deliveries(testkit::with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(OLD),
        ))
        .await
        .expect("the token may watch")
        .into_inner();
    app.stop().await;
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Err(status))) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("expected UNAVAILABLE at shutdown, got {other:?}"),
    }

    // The instance comes back without the old token.
    let app = testkit::spawn_app_on(&url, &name, &["--admin-token", NEW]).await;
    let refused = app
        .admin
        .clone()
        .watch_deliveries(testkit::with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(OLD),
        ))
        .await;
    testkit::assert_status(refused, Code::Unauthenticated, "invalid or revoked token");
    app.admin
        .clone()
        .watch_deliveries(testkit::with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(NEW),
        ))
        .await
        .expect("the new token may watch");
}

#[tokio::test]
async fn a_stream_ended_by_shutdown_names_where_to_resume_and_another_instance_misses_nothing() {
    const EVENTS: usize = 10;
    let (url, _) = fresh_database_url();
    let watched = start_instance(&url, &["--disable-workers", "true"]).await;
    let worker = start_instance(&url, &[]).await;
    let receiver = Receiver::start().await;
    // The attempts succeed a while after the deliveries are created: the shutdown lands between.
    receiver.script(
        std::iter::repeat_with(|| Reply::status(200).after(Duration::from_millis(300)))
            .take(EVENTS),
    );
    let hook = create_hook(&watched, &receiver.url("/hook")).await;
    let only_hook = pb::WatchDeliveriesRequest {
        webhook_id: hook.clone(),
        ..Default::default()
    };
    let mut stream = watch(&watched, only_hook.clone()).await;
    for i in 0..EVENTS {
        worker
            .ingest
            .clone()
            .publish_event(withdrawal_event(
                &format!("shutdown-{i}"),
                &format!("W-SD{i}"),
                pb::Decision::Approved,
                Some(1),
            ))
            .await
            .unwrap();
    }
    let mut seen = vec![next(&mut stream, Duration::from_secs(20)).await];
    drop(watched);
    let resume = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(update))) => seen.push(update),
            Ok(Some(Err(status))) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let resume = status
                    .message()
                    .split("resume with after_cursor ")
                    .nth(1)
                    .unwrap_or_else(|| panic!("no cursor to resume after: {status:?}"))
                    .to_owned();
                break resume;
            }
            other => panic!("expected UNAVAILABLE at shutdown, got {other:?}"),
        }
    };
    // Everything up to the cursor named was sent before the stream ended.
    assert_eq!(resume, seen.last().unwrap().cursor);
    let mut resumed = watch(
        &worker,
        pb::WatchDeliveriesRequest {
            after_cursor: resume,
            ..only_hook
        },
    )
    .await;
    while seen.len() < 2 * EVENTS {
        seen.push(next(&mut resumed, Duration::from_secs(20)).await);
    }
    let cursors = cursors(&seen);
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "each update once, in order: {cursors:?}"
    );
    for kind in [pb::UpdateKind::Created, pb::UpdateKind::AttemptSucceeded] {
        let mut deliveries: Vec<String> = seen
            .iter()
            .filter(|u| u.kind == kind as i32)
            .map(|u| u.delivery.as_ref().unwrap().id.clone())
            .collect();
        deliveries.sort();
        deliveries.dedup();
        assert_eq!(deliveries.len(), EVENTS, "{kind:?} of every delivery once");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), resumed.next())
            .await
            .is_err(),
        "nothing beyond the {} updates of {EVENTS} deliveries",
        2 * EVENTS
    );
}

/// Opens a WatchDeliveries stream with `token`, or returns why not.
async fn try_watch(
    admin: &WebhookAdminClient<Channel>,
    token: Option<&str>,
) -> Result<Streaming<pb::DeliveryUpdate>, tonic::Status> {
    admin
        .clone()
        .watch_deliveries(testkit::with_token(
            pb::WatchDeliveriesRequest::default(),
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn each_credential_may_open_only_so_many_streams() {
    const ADMIN: &str = "capped-admin-token-0123456789";
    const VIEWER: &str = "capped-viewer-token-0123456789";
    let app = testkit::spawn_app_with(&[
        "--admin-token",
        ADMIN,
        "--viewer-token",
        VIEWER,
        "--max-watch-streams-per-credential",
        "3",
    ])
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            try_watch(&app.admin, Some(ADMIN))
                .await
                .expect("within the cap"),
        );
    }
    let refused = try_watch(&app.admin, Some(ADMIN)).await;
    testkit::assert_status(
        refused,
        Code::ResourceExhausted,
        "at most 3 WatchDeliveries streams may be open per credential",
    );
    let refused = try_watch(&app.admin, Some(ADMIN)).await;
    testkit::assert_status(
        refused,
        Code::ResourceExhausted,
        "WEBHOOKS_MAX_WATCH_STREAMS_PER_CREDENTIAL",
    );
    // Another credential has slots of its own.
    let _viewer = try_watch(&app.admin, Some(VIEWER))
        .await
        .expect("another credential is not capped by the first");

    // Cancelling a stream gives its slot back (once the server saw the RST_STREAM).
    drop(open.pop());
    let reopened = testkit::wait_until(
        "a cancelled stream's slot to be free again",
        Duration::from_secs(10),
        || async { try_watch(&app.admin, Some(ADMIN)).await.ok() },
    )
    .await;
    open.push(reopened);
    let refused = try_watch(&app.admin, Some(ADMIN)).await;
    assert_eq!(
        refused.err().map(|s| s.code()),
        Some(Code::ResourceExhausted)
    );
}

#[tokio::test]
async fn with_authentication_off_streams_are_capped_per_client_address() {
    let app = testkit::spawn_app_with(&["--max-watch-streams-per-credential", "2"]).await;
    let _first = try_watch(&app.admin, None).await.expect("within the cap");
    // A token means nothing with authentication off: it does not open a bucket of its own.
    let _second = try_watch(&app.admin, Some("anything"))
        .await
        .expect("within the cap");
    let refused = try_watch(&app.admin, Some("something-else")).await;
    testkit::assert_status(refused, Code::ResourceExhausted, "per client address");
}

/// A delivery created by a publish on an instance without workers, and a watcher of its webhook
/// that has seen its `created` entry: the setting of the rolling-upgrade tests below.
async fn watched_pending_delivery(
    url: &str,
) -> (Instance, Streaming<pb::DeliveryUpdate>, String, i64) {
    let instance = start_instance(url, &["--disable-workers", "true"]).await;
    let hook = create_hook(&instance, "http://127.0.0.1:9/never").await;
    let mut stream = watch(
        &instance,
        pb::WatchDeliveriesRequest {
            webhook_id: hook.clone(),
            ..Default::default()
        },
    )
    .await;
    instance
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "legacy-1",
            "W-LEGACY",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .unwrap();
    let created = next(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(created.kind, pb::UpdateKind::Created as i32);
    let delivery = created.delivery.unwrap().id;
    let cursor = created.cursor.parse().unwrap();
    (instance, stream, delivery, cursor)
}

#[tokio::test]
async fn an_update_the_previous_release_wrote_to_its_inbox_reaches_watchers_in_order() {
    let (url, _) = fresh_database_url();
    let (_instance, mut stream, delivery, created_at) = watched_pending_delivery(&url).await;
    // What the previous release's writers do: append to the inbox, for its sequencer to move.
    let delivery_id: uuid::Uuid = delivery.parse().unwrap();
    testkit::connect(&url)
        .await
        .execute(
            "INSERT INTO delivery_update_inbox (delivery_id, webhook_id, function, kind, status, status_reason) \
             SELECT id, webhook_id, function, 'cancelled', 'cancelled', 'by the previous release' \
             FROM deliveries WHERE id = $1",
            &[&delivery_id],
        )
        .await
        .unwrap();
    let update = next(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(update.kind, pb::UpdateKind::Cancelled as i32);
    assert_eq!(update.cursor.parse::<i64>().unwrap(), created_at + 1);
    assert_eq!(update.delivery.unwrap().id, delivery);
}

#[tokio::test]
async fn an_entry_the_previous_release_sequenced_into_its_log_reaches_watchers() {
    let (url, _) = fresh_database_url();
    let (_instance, mut stream, delivery, created_at) = watched_pending_delivery(&url).await;
    // What the previous release's sequencer does: insert into its log with its own cursor.
    let delivery_id: uuid::Uuid = delivery.parse().unwrap();
    testkit::connect(&url)
        .await
        .execute(
            "INSERT INTO delivery_updates (cursor, delivery_id, webhook_id, function, kind, status, recorded_at) \
             SELECT 1000, id, webhook_id, function, 'cancelled', 'cancelled', now() \
             FROM deliveries WHERE id = $1",
            &[&delivery_id],
        )
        .await
        .unwrap();
    let update = next(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(update.kind, pb::UpdateKind::Cancelled as i32);
    assert_eq!(update.cursor.parse::<i64>().unwrap(), created_at + 1);
}
