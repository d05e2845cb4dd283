//! Faults: the database dropping every connection mid-delivery, and receivers that reset
//! connections or answer garbage.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhooks::proto::v1 as pb;

use testkit::{Receiver, Reply, server_url, spawn_app_with, withdrawal_event};

/// The service with `retry_schedule`, one withdrawal webhook to a receiver answering 204 after
/// `delay`, and a connection to the server's maintenance database to terminate backends from.
async fn app_with_one_webhook(
    retry_schedule: &str,
    delay: Duration,
) -> (testkit::TestApp, Receiver, tokio_postgres::Client) {
    let app = spawn_app_with(&["--retry-schedule", retry_schedule]).await;
    let receiver = Receiver::start().await;
    receiver.reply_by_default(Reply::status(204).after(delay));
    app.create_webhook(&receiver.url("/hook"), pb::Function::Withdrawal, &[], true)
        .await;
    let (admin_db, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    (app, receiver, admin_db)
}

#[tokio::test]
async fn connections_dropped_mid_delivery_lose_no_acknowledged_event() {
    let (app, receiver, admin_db) = app_with_one_webhook(
        "200ms,200ms,200ms,200ms,200ms,200ms",
        Duration::from_millis(20),
    )
    .await;
    let name = app.database.name.clone();
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

    let missing = never_arrived(&receiver, &acknowledged, "/data/event_id", 400).await;
    assert!(
        missing.is_empty(),
        "{} acknowledged events never arrived",
        missing.len()
    );
}

/// The `expected` values of the field at JSON `pointer` that no received body carried after
/// waiting up to `polls` tenths of a second for them.
async fn never_arrived(
    receiver: &Receiver,
    expected: &[String],
    pointer: &str,
    polls: u32,
) -> Vec<String> {
    let mut missing = expected.to_vec();
    for _ in 0..polls {
        let received: std::collections::HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| r.json().pointer(pointer)?.as_str().map(str::to_owned))
            .collect();
        missing.retain(|value| !received.contains(value));
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    missing
}

/// The retry policy docs/grpc-api.md gives publishers: UNAVAILABLE, RESOURCE_EXHAUSTED and
/// DEADLINE_EXCEEDED are retried with backoff and the same idempotency key; anything else is
/// final. Returns the final answer, or panics on a code the docs call final.
async fn publish_as_documented(
    ingest: &mut webhooks::proto::v1::event_ingest_client::EventIngestClient<
        tonic::transport::Channel,
    >,
    batch: Vec<pb::PublishEventRequest>,
) -> usize {
    let mut backoff = Duration::from_millis(10);
    let mut retries = 0;
    // A budget of time, not of tries: on a loaded machine a publish may need many tries to fit
    // between two terminations (every 15 ms), and the policy is to keep trying.
    let started = std::time::Instant::now();
    loop {
        let answer = if batch.len() == 1 {
            ingest.publish_event(batch[0].clone()).await.map(|_| ())
        } else {
            ingest
                .publish_events(pb::PublishEventsRequest {
                    events: batch.clone(),
                })
                .await
                .map(|_| ())
        };
        match answer {
            Ok(()) => return retries,
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::DeadlineExceeded
                ) =>
            {
                retries += 1;
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "still failing after {retries} retries in 120 s: {status:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
            Err(status) => panic!(
                "a publisher following the docs would drop this event: {:?} {}",
                status.code(),
                status.message()
            ),
        }
    }
}

#[tokio::test]
async fn publishes_while_backends_are_terminated_are_retryable_and_all_delivered() {
    let (app, receiver, admin_db) =
        app_with_one_webhook("100ms,100ms,100ms,100ms,100ms", Duration::ZERO).await;
    let name = app.database.name.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // Terminates every backend of the service's database, over and over, while it publishes.
    let terminator = tokio::spawn(async move {
        let mut rounds = 0u32;
        while !*stop_rx.borrow() {
            admin_db
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .await
                .unwrap();
            rounds += 1;
            // Every 15 ms, with a longer gap every fourth round: on a slow or throttled machine a
            // publish (a new connection, its statements, the commit) may need more than 15 ms,
            // and with no gap at all it could never get through, however long it retried.
            let gap = if rounds.is_multiple_of(4) { 200 } else { 15 };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(gap)) => {}
                _ = stop_rx.changed() => {}
            }
        }
        rounds
    });

    // Four publishers: single events and batches of five, each retried as documented.
    let mut publishers = tokio::task::JoinSet::new();
    for publisher in 0..4 {
        let mut ingest = app.ingest.clone();
        publishers.spawn(async move {
            let mut keys = Vec::new();
            let mut retries = 0;
            for round in 0..30 {
                let size = if round % 2 == 0 { 1 } else { 5 };
                let batch: Vec<_> = (0..size)
                    .map(|i| {
                        let key = format!("term-{publisher}-{round}-{i}");
                        withdrawal_event(&key, &key, pb::Decision::Rejected, None)
                    })
                    .collect();
                keys.extend(batch.iter().map(|e| e.idempotency_key.clone()));
                retries += publish_as_documented(&mut ingest, batch).await;
            }
            (keys, retries)
        });
    }
    let mut published = Vec::new();
    let mut retries = 0;
    while let Some(result) = publishers.join_next().await {
        let (keys, publisher_retries) = result.unwrap();
        published.extend(keys);
        retries += publisher_retries;
    }
    let _ = stop_tx.send(true);
    let rounds = terminator.await.unwrap();
    assert!(rounds > 10, "backends were terminated {rounds} times only");
    assert!(
        retries > 0,
        "no publish met a terminated backend ({rounds} rounds): the test proved nothing"
    );

    // Every event published (each answered once, after any retries) reaches the receiver.
    let missing = never_arrived(&receiver, &published, "/data/withdrawal/id", 300).await;
    assert!(
        missing.is_empty(),
        "{} of {} events never arrived (after {retries} retries): {:?}",
        missing.len(),
        published.len(),
        &missing[..missing.len().min(5)]
    );
}

/// A TCP endpoint that answers every connection with `reply` and closes it.
async fn raw_endpoint(reply: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request first and drain the socket after: closing it with unread
                // bytes would reset the connection before the client has read the reply.
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = socket.write_all(reply).await;
                let _ = socket.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Ok(n) = socket.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn resets_are_connect_and_unreadable_answers_protocol_failures_and_retried() {
    let app = spawn_app_with(&["--retry-schedule", "200ms"]).await;
    // A response head of 1 MiB: far over what hyper reads before giving up.
    let huge_head: &'static [u8] = format!(
        "HTTP/1.1 200 OK\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    )
    .into_bytes()
    .leak();
    for (url, label, kind) in [
        (
            raw_endpoint(b"").await,
            "reset",
            pb::AttemptErrorKind::Connect,
        ),
        (
            raw_endpoint(b"this is not HTTP at all\r\n\r\n").await,
            "garbage",
            pb::AttemptErrorKind::Protocol,
        ),
        (
            raw_endpoint(huge_head).await,
            "huge head",
            pb::AttemptErrorKind::Protocol,
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
            assert_eq!(
                attempt.error_kind, kind as i32,
                "{label}: {}",
                attempt.error_message
            );
            assert!(!attempt.error_message.is_empty(), "{label}");
        }
        app.admin
            .clone()
            .delete_webhook(pb::DeleteWebhookRequest {
                id: hook.id,
                ..Default::default()
            })
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
