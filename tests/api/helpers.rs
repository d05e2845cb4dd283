//! Test harness: a fresh database per test, the real service on a random port, gRPC clients, and
//! real HTTP receivers on 127.0.0.1 that record what they get.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use tokio::sync::oneshot;
use tokio_postgres::NoTls;
use tonic::transport::Channel;
use uuid::Uuid;
use webhooks::config::{Cli, Command, ServeConfig};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;
use webhooks::startup::Application;

/// The Postgres server tests create their databases on (no database name).
pub fn server_url() -> String {
    std::env::var("WEBHOOKS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A fresh database name for one test.
pub fn fresh_database_url() -> (String, String) {
    let name = format!("webhooks_test_{}", Uuid::new_v4().simple());
    (format!("{}/{name}", server_url()), name)
}

/// A running service and clients to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub database_url: String,
    pub database_name: String,
    pub admin: WebhookAdminClient<Channel>,
    pub ingest: EventIngestClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Default flags for tests: fast polling and retries, loopback destinations allowed.
pub const TEST_FLAGS: &[&str] = &[
    "--allow-private-destinations",
    "true",
    "--poll-interval",
    "100ms",
    "--retry-schedule",
    "300ms,300ms,300ms",
    "--request-timeout",
    "3s",
    "--connect-timeout",
    "1s",
    "--log-level",
    "warn",
];

/// The `serve` configuration for a database, with `extra` flags overriding the test defaults.
pub fn serve_config(database_url: &str, extra: &[&str]) -> ServeConfig {
    let mut args = vec![
        "webhooks",
        "serve",
        "--database-url",
        database_url,
        "--grpc-addr",
        "127.0.0.1:0",
    ];
    // Defaults come in flag/value pairs; a flag given in `extra` replaces its default.
    for pair in TEST_FLAGS.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    args.extend_from_slice(extra);
    match Cli::parse_from(args).command {
        Command::Serve(config) => config,
        Command::Migrate(_) => unreachable!("serve was parsed"),
    }
}

/// Spawns the service on a fresh database with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the service on a fresh database with extra flags.
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let (database_url, database_name) = fresh_database_url();
    spawn_app_on(&database_url, &database_name, extra).await
}

/// Spawns the service on a given database (which may already exist).
pub async fn spawn_app_on(database_url: &str, database_name: &str, extra: &[&str]) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
    let config = serve_config(database_url, extra);
    let app = Application::build(config)
        .await
        .expect("the service starts");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let endpoint = format!("http://{addr}");
    let channel = Channel::from_shared(endpoint)
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects");
    TestApp {
        addr,
        database_url: database_url.to_owned(),
        database_name: database_name.to_owned(),
        admin: WebhookAdminClient::new(channel.clone()),
        ingest: EventIngestClient::new(channel),
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the service gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// A direct connection to the test database, for checks the API does not offer.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls)
            .await
            .expect("db connects");
        tokio::spawn(connection);
        client
    }

    /// Creates a webhook with `destination_url`, the given function and events.
    pub async fn create_webhook(
        &self,
        destination_url: &str,
        function: pb::Function,
        nodes: &[u32],
        rejection: bool,
    ) -> pb::CreateWebhookResponse {
        self.admin
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(pb::Webhook {
                    name: "Test hook".into(),
                    destination_url: destination_url.into(),
                    function: function as i32,
                    events: Some(pb::EventSelection {
                        approval_nodes: nodes.to_vec(),
                        rejection,
                    }),
                    ..Default::default()
                }),
                secret: String::new(),
            })
            .await
            .expect("webhook created")
            .into_inner()
    }

    /// Waits until the delivery reaches `status`, and returns it with its attempts.
    pub async fn wait_for_delivery_status(
        &self,
        delivery_id: &str,
        status: pb::DeliveryStatus,
    ) -> pb::Delivery {
        let mut last = None;
        for _ in 0..200 {
            let delivery = self
                .admin
                .clone()
                .get_delivery(pb::GetDeliveryRequest {
                    id: delivery_id.into(),
                })
                .await
                .expect("delivery readable")
                .into_inner();
            if delivery.status == status as i32 {
                return delivery;
            }
            last = Some(delivery);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("delivery {delivery_id} never reached {status:?}; last seen: {last:#?}");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A withdrawal decision for request `request_id`.
pub fn withdrawal_event(
    key: &str,
    request_id: &str,
    decision: pb::Decision,
    node: Option<u32>,
) -> pb::PublishEventRequest {
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: decision as i32,
        approval_node: node,
        occurred_at: None,
        request: Some(pb::publish_event_request::Request::Withdrawal(
            pb::WithdrawalRequest {
                id: request_id.into(),
                client_id: "C-100".into(),
                client_name: "Ada Lovelace".into(),
                client_email: "ada@example.com".into(),
                trading_account: "MT5-123456".into(),
                amount: "1250.00".into(),
                currency: "USD".into(),
                payment_method: "bank_transfer".into(),
                beneficiary: Some(pb::Beneficiary {
                    account_holder: "Ada Lovelace".into(),
                    bank_name: "Example Bank".into(),
                    iban: "GB33BUKB20201555555555".into(),
                    swift_code: "BUKBGB22".into(),
                    ..Default::default()
                }),
                submitted_at: None,
                status: "approved".into(),
                remarks: String::new(),
            },
        )),
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Replies to give, in order; when empty, `default_reply`.
    script: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Option<Reply>>,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers as scripted
/// (204 by default).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replies to give next, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    /// The reply once the script is used up.
    pub fn reply_by_default(&self, reply: Reply) {
        *self.state.default_reply.lock().expect("lock") = Some(reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Everything received at `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until at least `count` requests arrived (at most `within`), and returns them all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: std::time::Instant::now(),
    });
    let reply = state
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .or_else(|| state.default_reply.lock().expect("lock").clone())
        .unwrap_or_else(|| Reply::status(204));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Asserts that `result` failed with `code` and that its message mentions `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    match result {
        Ok(value) => panic!("expected {code:?} mentioning `{needle}`, got success: {value:?}"),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "unexpected code; message: {}",
                status.message()
            );
            assert!(
                status.message().contains(needle),
                "message `{}` does not mention `{needle}`",
                status.message()
            );
        }
    }
}
