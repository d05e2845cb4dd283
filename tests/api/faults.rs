//! Faults: the database dropping every connection mid-delivery, and receivers that reset
//! connections or answer garbage.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use webhooks::proto::v1 as pb;

use crate::helpers::{Receiver, Reply, server_url, spawn_app_with, withdrawal_event};

#[tokio::test]
async fn connections_dropped_mid_delivery_lose_no_acknowledged_event() {
    let app = spawn_app_with(&["--retry-schedule", "200ms,200ms,200ms,200ms,200ms,200ms"]).await;
    let receiver = Receiver::start().await;
    receiver.reply_by_default(Reply::status(204).after(Duration::from_millis(20)));
    app.create_webhook(&receiver.url("/hook"), pb::Function::Withdrawal, &[], true)
        .await;

    let (admin_db, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let name = app.database_name.clone();
    let mut acknowledged = Vec::new();
    let mut ingest = app.ingest.clone();
    for round in 0..4 {
        let events: Vec<_> = (0..50)
            .map(|i| {
                withdrawal_event(
                    &format!("f-{round}-{i}"),
                    &format!("W-{round}-{i}"),
                    pb::Decision::Rejected,
                    None,
                )
            })
            .collect();
        // A publish may fail while connections are being dropped; only acknowledged ones count.
        if let Ok(answer) = ingest
            .publish_events(pb::PublishEventsRequest { events })
            .await
        {
            acknowledged.extend(answer.into_inner().results.into_iter().map(|r| r.event_id));
        }
        // Drop every connection of the service, as a database restart would.
        admin_db
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        acknowledged.len() >= 100,
        "most publishes were acknowledged: {}",
        acknowledged.len()
    );

    let mut missing = acknowledged.clone();
    for _ in 0..400 {
        let received: std::collections::HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| r.json()["data"]["event_id"].as_str().map(str::to_owned))
            .collect();
        missing = acknowledged
            .iter()
            .filter(|id| !received.contains(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged events never arrived",
        missing.len()
    );
}

/// A TCP endpoint that answers every connection with `reply` and closes it.
async fn raw_endpoint(reply: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(reply).await;
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn resets_and_garbage_are_recorded_as_failed_attempts_and_retried() {
    let app = spawn_app_with(&["--retry-schedule", "200ms"]).await;
    for (url, label) in [
        (raw_endpoint(b"").await, "reset"),
        (
            raw_endpoint(b"this is not HTTP at all\r\n\r\n").await,
            "garbage",
        ),
    ] {
        let hook = app
            .create_webhook(&url, pb::Function::Withdrawal, &[], true)
            .await
            .webhook
            .unwrap();
        let published = app
            .ingest
            .clone()
            .publish_event(withdrawal_event(
                &format!("raw-{label}"),
                &format!("W-{label}"),
                pb::Decision::Rejected,
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        let failed = app
            .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Failed)
            .await;
        assert_eq!(
            failed.attempts.len(),
            2,
            "{label}: first attempt and one retry"
        );
        for attempt in &failed.attempts {
            assert_eq!(attempt.response_status, 0, "{label}");
            assert_ne!(
                attempt.error_kind,
                pb::AttemptErrorKind::Unspecified as i32,
                "{label}"
            );
            assert!(!attempt.error_message.is_empty(), "{label}");
        }
        app.admin
            .clone()
            .delete_webhook(pb::DeleteWebhookRequest { id: hook.id })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_response_body_with_nul_bytes_is_recorded_not_retried_forever() {
    // PostgreSQL's text type refuses NUL: such a body must still be stored (with U+FFFD), or the
    // attempt could never be recorded and the delivery would be sent again after every lease.
    let app = spawn_app_with(&["--retry-schedule", "200ms"]).await;
    let url =
        raw_endpoint(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nok\0\0bye")
            .await;
    app.create_webhook(&url, pb::Function::Withdrawal, &[], true)
        .await;
    let published = app
        .ingest
        .clone()
        .publish_event(withdrawal_event(
            "nul-body",
            "W-nul",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let delivered = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(delivered.attempts.len(), 1);
    assert_eq!(delivered.attempts[0].response_status, 200);
    assert_eq!(delivered.attempts[0].response_body, "ok\u{FFFD}\u{FFFD}bye");
}
