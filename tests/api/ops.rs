//! Operability: health that tells the truth, and per-webhook statistics.

use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use webhooks::proto::v1 as pb;

use crate::helpers::{Receiver, Reply, server_url, spawn_app, withdrawal_event};

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

#[tokio::test]
async fn health_is_not_serving_while_the_database_is_unreachable_and_recovers() {
    let app = spawn_app().await;
    wait_for_health(app.addr, ServingStatus::Serving).await;
    assert_eq!(
        health(app.addr, "backoffice.webhooks.v1.EventIngest").await,
        ServingStatus::Serving as i32
    );

    let (admin_db, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let name = &app.database_name;
    admin_db
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin_db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[name],
        )
        .await
        .unwrap();
    wait_for_health(app.addr, ServingStatus::NotServing).await;

    admin_db
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
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
