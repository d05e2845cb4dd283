//! The Rust client (`clients/rust`, crate `webhooks-client`): the whole flow a back office
//! runs (create a webhook, publish a decision, watch the deliveries and resume by cursor, read
//! the history, resend), a bad request's field error decoded into field -> rule, a call
//! retried until a service that refused connections comes up, and publishes over the ingest
//! rate limit (RESOURCE_EXHAUSTED) retried until they fit it.

use std::time::Duration;

use testkit::{PATIENCE, Receiver, spawn_app, spawn_app_with};
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use webhooks_client::{Client, FieldViolation, Verdict, v1};

/// A withdrawal webhook (approvals at node 1, and rejections) to `url`.
fn withdrawal_webhook(url: &str) -> v1::CreateWebhookRequest {
    v1::CreateWebhookRequest {
        webhook: Some(v1::Webhook {
            name: "Payments".to_owned(),
            destination_url: url.to_owned(),
            function: v1::Function::Withdrawal as i32,
            events: Some(v1::EventSelection {
                approval_nodes: vec![1],
                rejection: true,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn withdrawal(id: &str) -> v1::WithdrawalRequest {
    v1::WithdrawalRequest {
        id: id.to_owned(),
        client_id: "client-7".to_owned(),
        client_name: "Ada Lovelace".to_owned(),
        amount: "1250.00".to_owned(),
        currency: "EUR".to_owned(),
        ..Default::default()
    }
}

/// The next update of `stream`, within [`PATIENCE`].
async fn next_update(stream: &mut tonic::Streaming<v1::DeliveryUpdate>) -> v1::DeliveryUpdate {
    match tokio::time::timeout(PATIENCE, stream.next()).await {
        Ok(Some(Ok(update))) => update,
        other => panic!("no delivery update: {other:?}"),
    }
}

/// Reads `stream` until the delivery `id` succeeded; returns every update read.
async fn until_succeeded(
    stream: &mut tonic::Streaming<v1::DeliveryUpdate>,
    id: &str,
) -> Vec<v1::DeliveryUpdate> {
    let mut updates = Vec::new();
    loop {
        let update = next_update(stream).await;
        let delivery = update.delivery.clone().unwrap_or_default();
        let done = delivery.id == id && delivery.status == v1::DeliveryStatus::Succeeded as i32;
        updates.push(update);
        if done {
            return updates;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_publishes_watches_resumes_reads_history_and_resends() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let client = Client::builder(app.server.clone())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connects: {e}"));
    let mut admin = client.admin();

    let created = admin
        .create_webhook(withdrawal_webhook(&receiver.url("/payments")))
        .await
        .unwrap_or_else(|e| panic!("CreateWebhook: {e}"))
        .into_inner();
    let webhook = created.webhook.unwrap_or_default();
    assert!(!webhook.id.is_empty());

    let mut watch = admin
        .watch_deliveries(v1::WatchDeliveriesRequest {
            webhook_id: webhook.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("WatchDeliveries: {e}"))
        .into_inner();

    let published = client
        .publish_withdrawal_decision(
            "wd-1/approved/1",
            Verdict::Approved { node: 1 },
            withdrawal("wd-1"),
        )
        .await
        .unwrap_or_else(|e| panic!("PublishEvent: {e}"));
    let [delivery_id] = published.delivery_ids.as_slice() else {
        panic!("one delivery per matching webhook: {published:?}")
    };

    let updates = until_succeeded(&mut watch, delivery_id).await;
    assert!(updates.len() >= 2, "queued, then succeeded: {updates:?}");
    let [received] = receiver
        .received()
        .try_into()
        .unwrap_or_else(|all: Vec<_>| panic!("one POST, got {}", all.len()));
    assert_eq!(received.path, "/payments");
    assert_eq!(received.event_type(), "withdrawal.approved");

    // Resuming after the first update replays every later one, up to the success.
    drop(watch);
    let mut resumed = admin
        .watch_deliveries(v1::WatchDeliveriesRequest {
            webhook_id: webhook.id.clone(),
            after_cursor: updates[0].cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("WatchDeliveries resumed: {e}"))
        .into_inner();
    let replayed = until_succeeded(&mut resumed, delivery_id).await;
    let cursors = |updates: &[v1::DeliveryUpdate]| -> Vec<String> {
        updates.iter().map(|u| u.cursor.clone()).collect()
    };
    assert_eq!(cursors(&replayed), cursors(&updates[1..]));

    // The history: the delivery and its one successful attempt.
    let delivery = admin
        .get_delivery(v1::GetDeliveryRequest {
            id: delivery_id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("GetDelivery: {e}"))
        .into_inner();
    assert_eq!(delivery.status, v1::DeliveryStatus::Succeeded as i32);
    assert_eq!(delivery.attempts.len(), 1, "{delivery:?}");
    assert!(
        (200..300).contains(&delivery.attempts[0].response_status),
        "{delivery:?}"
    );
    let listed = admin
        .list_deliveries(v1::ListDeliveriesRequest {
            webhook_id: webhook.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("ListDeliveries: {e}"))
        .into_inner();
    assert_eq!(
        listed
            .deliveries
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        [delivery_id.as_str()]
    );

    // Resending posts the same event again. (`..Default::default()`: the request gains an
    // optional `request_id`, issue 15, which this call leaves unset.)
    #[allow(clippy::needless_update)]
    let resend = v1::ResendDeliveryRequest {
        id: delivery_id.clone(),
        ..Default::default()
    };
    let resent = admin
        .resend_delivery(resend)
        .await
        .unwrap_or_else(|e| panic!("ResendDelivery: {e}"))
        .into_inner();
    until_succeeded(&mut resumed, &resent.id).await;
    let posts = receiver.received();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].event_id(), posts[0].event_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_decodes_into_field_and_rule() {
    let app = spawn_app().await;
    let client = Client::builder(app.server.clone())
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connects: {e}"));

    let refused = client
        .admin()
        .create_webhook(withdrawal_webhook("ftp://example.com/hooks"))
        .await
        .map_err(webhooks_client::Error::from);
    let Err(error) = refused else {
        panic!("an ftp:// destination was accepted")
    };
    assert_eq!(error.code(), Some(tonic::Code::InvalidArgument));
    let violations = error.field_violations();
    assert!(
        violations
            .iter()
            .any(|FieldViolation { field, description }| {
                field == "webhook.destination_url" && description.contains("http")
            }),
        "{violations:?}"
    );

    // The typed helper refuses an unknown currency the same way.
    let mut bad = withdrawal("wd-2");
    bad.currency = "euro".to_owned();
    let Err(error) = client
        .publish_withdrawal_decision("wd-2/rejected", Verdict::Rejected, bad)
        .await
    else {
        panic!("a currency of four lower-case letters was accepted")
    };
    let fields: Vec<_> = error
        .field_violations()
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["withdrawal.currency"], "{error}");
}

/// Listens on a free port only after `delay`, forwarding every connection to `target`: until
/// then, connecting to the port is refused.
async fn late_proxy(target: std::net::SocketAddr, delay: Duration) -> std::net::SocketAddr {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = TcpListener::bind(port)
            .await
            .unwrap_or_else(|e| panic!("binds {port} again: {e}"));
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_until_the_service_is_up() {
    let app = spawn_app().await;
    let list = |client: Client| async move {
        client
            .admin()
            .list_webhooks(v1::ListWebhooksRequest::default())
            .await
    };

    // Without retries, a port that refuses connections fails the call at once.
    let closed = late_proxy(app.addr, Duration::from_secs(3600)).await;
    let once = Client::builder(format!("http://{closed}"))
        .max_attempts(1)
        .connect_lazy()
        .unwrap_or_else(|e| panic!("a lazy client: {e}"));
    let status = list(once).await.err().map(|s| s.code());
    assert_eq!(status, Some(tonic::Code::Unavailable));

    // With the service config's retries, the call outlasts the refusals: the port opens 50 ms
    // after the first attempt, and the backoff (up to 1.5 s over four retries) waits for it.
    let opens = late_proxy(app.addr, Duration::from_millis(50)).await;
    let retrying = Client::builder(format!("http://{opens}"))
        .connect_lazy()
        .unwrap_or_else(|e| panic!("a lazy client: {e}"));
    let listed = list(retrying).await;
    assert!(
        listed.is_ok(),
        "not retried until the port opened: {listed:?}"
    );
}

const INGEST: &str = "clients-rust-ingest-token-0123456789";

/// Publishes `count` rejections at once through `client`, under keys starting with `round`.
async fn publish_at_once(
    client: &Client,
    round: &str,
    count: usize,
) -> Vec<Result<v1::PublishEventResponse, webhooks_client::Error>> {
    let calls = (0..count).map(|i| {
        let key = format!("{round}-{i}");
        async move {
            client
                .publish_withdrawal_decision(key.clone(), Verdict::Rejected, withdrawal(&key))
                .await
        }
    });
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_over_the_rate_limit_are_retried_until_they_fit() {
    // 20 a second per token, in bursts of up to 20: 22 at once are 2 too many.
    let app = spawn_app_with(&["--ingest-token", INGEST, "--ingest-rate-limit", "20"]).await;
    let connect = |attempts: u32| {
        Client::builder(app.server.clone())
            .bearer_token(INGEST)
            .max_attempts(attempts)
            .connect()
    };

    let once = connect(1).await.unwrap_or_else(|e| panic!("connects: {e}"));
    let limited = publish_at_once(&once, "once", 22)
        .await
        .into_iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Some(tonic::Code::ResourceExhausted)))
        .count();
    assert!(
        limited > 0,
        "22 publishes at once stayed under a limit of 20"
    );

    // A full burst again, then the same with the service config's retries: every publish lands.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let retrying = connect(5).await.unwrap_or_else(|e| panic!("connects: {e}"));
    let failed: Vec<_> = publish_at_once(&retrying, "retried", 22)
        .await
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    assert!(failed.is_empty(), "not retried into the limit: {failed:?}");
}
