//! Operability: health that tells the truth, and per-webhook statistics.

use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use webhooks::proto::v1 as pb;

use testkit::{Receiver, Reply, server_url, spawn_app, withdrawal_event};

async fn health(addr: std::net::SocketAddr, service: &str) -> i32 {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn wait_for_health(addr: std::net::SocketAddr, want: ServingStatus) {
    let mut seen = -1;
    for _ in 0..100 {
        seen = health(addr, "").await;
        if seen == want as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health never became {want:?}; last {seen}");
}

/// Refuses (`reachable` false, ending the service's connections) or allows new connections to
/// the app's database, from a maintenance connection (made when `admin_db` is None), returned
/// for the next call.
async fn set_database_reachable(
    app: &testkit::TestApp,
    reachable: bool,
    admin_db: Option<tokio_postgres::Client>,
) -> tokio_postgres::Client {
    let admin_db = match admin_db {
        Some(client) => client,
        None => {
            let (client, connection) = tokio_postgres::connect(
                &format!("{}/postgres", server_url()),
                tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(connection);
            client
        }
    };
    let name = &app.database.name;
    admin_db
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {reachable}"
        ))
        .await
        .unwrap();
    if !reachable {
        admin_db
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[name],
            )
            .await
            .unwrap();
    }
    admin_db
}

/// GETs `path` from the metrics port: the status code and the body.
async fn probe(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Polls `/readyz` until it answers `want`; the last body.
async fn wait_for_readyz(addr: std::net::SocketAddr, want: u16) -> String {
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = probe(addr, "/readyz").await;
        if last.0 == want {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {want}; last {last:?}");
}

#[tokio::test]
async fn http_probes_report_liveness_and_readiness_with_a_reason() {
    let app = testkit::spawn_app_with(&["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics = app.metrics_addr.expect("the metrics port listens");
    let (status, body) = probe(metrics, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok: the process is running"));
    let ready = wait_for_readyz(metrics, 200).await;
    assert!(ready.starts_with("ready"), "{ready}");
    // The gauges come from a sampler that starts with the service: give its first round time.
    let mut body = String::new();
    for _ in 0..50 {
        let (status, text) = probe(metrics, "/metrics").await;
        assert_eq!(status, 200);
        body = text;
        if body.contains("webhooks_db_pool_size") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("webhooks_db_pool_size"), "{body}");

    let admin_db = set_database_reachable(&app, false, None).await;
    let reason = wait_for_readyz(metrics, 503).await;
    assert_eq!(reason.trim(), "not ready: the database does not answer");
    assert_eq!(
        probe(metrics, "/healthz").await.0,
        200,
        "alive while not ready"
    );

    set_database_reachable(&app, true, Some(admin_db)).await;
    wait_for_readyz(metrics, 200).await;
    assert_eq!(probe(metrics, "/nope").await.0, 404);
}

#[tokio::test]
async fn health_is_not_serving_while_the_database_is_unreachable_and_recovers() {
    let app = spawn_app().await;
    wait_for_health(app.addr, ServingStatus::Serving).await;
    assert_eq!(
        health(app.addr, "backoffice.webhooks.v1.EventIngest").await,
        ServingStatus::Serving as i32
    );

    let admin_db = set_database_reachable(&app, false, None).await;
    wait_for_health(app.addr, ServingStatus::NotServing).await;

    set_database_reachable(&app, true, Some(admin_db)).await;
    wait_for_health(app.addr, ServingStatus::Serving).await;
}

#[tokio::test]
async fn stats_count_attempts_successes_and_latency() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    let hook = app
        .create_webhook(&receiver.url("/hook"), pb::Function::Withdrawal, &[1], true)
        .await
        .webhook
        .unwrap();
    let published = app
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "stats-1",
            "W-ST",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;

    let stats = app
        .admin
        .clone()
        .get_webhook_stats(pb::GetWebhookStatsRequest {
            id: hook.id.clone(),
            since: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.attempts, 2);
    assert_eq!(stats.succeeded_attempts, 1);
    assert!((stats.success_rate - 0.5).abs() < 1e-9);
    assert!(stats.latency_p50.is_some() && stats.latency_p99.is_some());
    assert!(stats.last_success_at.is_some() && stats.last_failure_at.is_some());
    assert_eq!(stats.pending_deliveries, 0);

    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = app
        .admin
        .clone()
        .get_webhook_stats(pb::GetWebhookStatsRequest {
            id: unknown,
            since: None,
        })
        .await;
    assert_eq!(missing.err().map(|s| s.code()), Some(tonic::Code::NotFound));
}

#[tokio::test]
async fn an_event_whose_body_exceeds_the_payload_cap_is_refused() {
    let app = testkit::spawn_app_with(&["--max-payload-bytes", "1000"]).await;
    let mut event = withdrawal_event("big-1", "W-BIG", pb::Decision::Rejected, None);
    if let Some(pb::publish_event_request::Request::Withdrawal(w)) = &mut event.request {
        w.remarks = "x".repeat(900);
    }
    let error = app
        .ingest
        .clone()
        .publish_event(event)
        .await
        .expect_err("too big");
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert!(
        error.message().contains("WEBHOOKS_MAX_PAYLOAD_BYTES"),
        "{}",
        error.message()
    );
    let small = withdrawal_event("small-1", "W-S", pb::Decision::Rejected, None);
    app.ingest
        .clone()
        .publish_event(small)
        .await
        .expect("a normal event fits");
}

#[tokio::test]
async fn retention_purges_finished_history_and_keeps_pending_deliveries() {
    let app = testkit::spawn_app_with(&["--retry-schedule", "1h"]).await;
    let receiver = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.reply_by_default(Reply::status(500));
    let done_hook = app
        .create_webhook(&receiver.url("/done"), pb::Function::Withdrawal, &[], true)
        .await
        .webhook
        .unwrap();
    // Its endpoint fails and the next retry is an hour away: the delivery stays pending.
    app.create_webhook(&failing.url("/wait"), pb::Function::Withdrawal, &[1], false)
        .await;
    let done = app
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "ret-1",
            "W-R1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    app.wait_for_delivery_status(&done.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let waiting = app
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "ret-2",
            "W-R2",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .unwrap()
        .into_inner();

    // Its first attempt failed and was recorded.
    failing.wait_for(1, Duration::from_secs(10)).await;
    let mut recorded = false;
    for _ in 0..50 {
        if app
            .get_delivery(&waiting.delivery_ids[0])
            .await
            .attempt_count
            == 1
        {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recorded);
    let store = webhooks::store::Store::connect(&app.database.url, 2).unwrap();
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut purged = 0;
    loop {
        let n = store.purge_history(future, 1).await.unwrap();
        if n == 0 {
            break;
        }
        purged += n;
    }
    assert_eq!(purged, 1, "only the finished delivery is purged");
    let gone = app
        .admin
        .clone()
        .get_delivery(pb::GetDeliveryRequest {
            id: done.delivery_ids[0].clone(),
        })
        .await;
    assert_eq!(gone.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    let kept = app.get_delivery(&waiting.delivery_ids[0]).await;
    assert_eq!(kept.status, pb::DeliveryStatus::Pending as i32);
    let db = app.db().await;
    let attempts: i64 = db
        .query_one("SELECT count(*) FROM delivery_attempts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 1, "only the pending delivery's attempt is left");
    let events: i64 = db
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1, "the pending delivery's event stays");
    let _ = done_hook;
}

#[tokio::test]
async fn shutdown_ends_open_watch_streams_with_unavailable() {
    use tokio_stream::StreamExt;
    let app = spawn_app().await;
    let mut stream = app
        .admin
        .clone()
        .watch_deliveries(pb::WatchDeliveriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let stopped = tokio::time::timeout(Duration::from_secs(15), app.stop()).await;
    assert!(
        stopped.is_ok(),
        "the server stopped although a stream was open"
    );
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ended");
    match end {
        Some(Err(status)) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
        other => panic!("expected UNAVAILABLE, got {other:?}"),
    }
}

#[tokio::test]
async fn instances_starting_at_once_on_a_new_database_all_start() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for round in 0..3 {
        let (database_url, _) = testkit::fresh_database_url();
        let builds = (0..4).map(|_| {
            webhooks::startup::Application::build(testkit::serve_config(&database_url, &[]))
        });
        for (instance, built) in futures_util::future::join_all(builds)
            .await
            .into_iter()
            .enumerate()
        {
            if let Err(error) = built {
                panic!("round {round}, instance {instance} failed to start: {error:#}");
            }
        }
    }
}
