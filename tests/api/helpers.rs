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
    /// The web console's address, when `--console-addr` was given.
    pub console_addr: Option<SocketAddr>,
    /// The metrics and health probes' address, when `--metrics-addr` was given.
    pub metrics_addr: Option<SocketAddr>,
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
        _ => unreachable!("serve was parsed"),
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
    serve(app, database_url, database_name).await
}

/// Runs a built service until the [`TestApp`] is stopped, with clients connected to it.
async fn serve(app: Application, database_url: &str, database_name: &str) -> TestApp {
    let addr = app.local_addr();
    let console_addr = app.console_addr();
    let metrics_addr = app.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects");
    TestApp {
        addr,
        console_addr,
        metrics_addr,
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
        wait_for_delivery_status_of(&self.admin, delivery_id, status).await
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
    /// Replies for requests that match a predicate; consulted before `script`.
    rules: Mutex<Vec<ReplyRule>>,
}

/// Replies given, in order, to the requests a predicate picks (see [`Receiver::script_when`]).
struct ReplyRule {
    matches: Box<dyn Fn(&Received) -> bool + Send + Sync>,
    replies: VecDeque<Reply>,
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
    let received = Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: std::time::Instant::now(),
    };
    let ruled = state
        .rules
        .lock()
        .expect("lock")
        .iter_mut()
        .find(|rule| !rule.replies.is_empty() && (rule.matches)(&received))
        .and_then(|rule| rule.replies.pop_front());
    state.received.lock().expect("lock").push(received);
    let reply = ruled
        .or_else(|| state.script.lock().expect("lock").pop_front())
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

/// `message` as a gRPC request carrying `authorization: Bearer <token>` when a token is given.
pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("valid header"),
        );
    }
    request
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

// ---------------------------------------------------------------------------------------------
// Delivery-engine helpers (routing.rs, delivery.rs).
// ---------------------------------------------------------------------------------------------

/// How long a test waits for something the service should do "soon". Generous: the machine is
/// shared and noisy.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A decision on a request of `function` (a withdrawal, participation or live stage).
pub fn event_for(
    function: pb::Function,
    key: &str,
    request_id: &str,
    decision: pb::Decision,
    node: Option<u32>,
) -> pb::PublishEventRequest {
    use pb::publish_event_request::Request;
    let request = match function {
        pb::Function::Withdrawal | pb::Function::Unspecified => {
            return withdrawal_event(key, request_id, decision, node);
        }
        pb::Function::PropTradingParticipation => {
            Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
                id: request_id.into(),
                client_id: "C-200".into(),
                client_name: "Grace Hopper".into(),
                client_email: "grace@example.com".into(),
                program: "Pro Trader".into(),
                challenge: "Phase 1".into(),
                account_size: "100000".into(),
                fee: "499.00".into(),
                currency: "USD".into(),
                evaluation_account: "EVAL-1".into(),
                ..Default::default()
            })
        }
        pb::Function::PropTradingLiveStage => {
            Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
                id: request_id.into(),
                client_id: "C-300".into(),
                client_name: "Alan Turing".into(),
                client_email: "alan@example.com".into(),
                program: "Pro Trader".into(),
                challenge: "Phase 2".into(),
                account_size: "200000".into(),
                currency: "EUR".into(),
                evaluation_account: "EVAL-2".into(),
                live_account: "LIVE-2".into(),
                ..Default::default()
            })
        }
    };
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: decision as i32,
        approval_node: node,
        occurred_at: None,
        request: Some(request),
    }
}

/// The event-type prefix of a function, as in `withdrawal.approved`.
pub fn event_prefix(function: pb::Function) -> &'static str {
    match function {
        pb::Function::Withdrawal | pb::Function::Unspecified => "withdrawal",
        pb::Function::PropTradingParticipation => "prop_trading.participation",
        pb::Function::PropTradingLiveStage => "prop_trading.live_stage",
    }
}

/// A webhook to create, enabled, with a name.
pub fn webhook_spec(
    url: &str,
    function: pb::Function,
    nodes: &[u32],
    rejection: bool,
) -> pb::Webhook {
    pb::Webhook {
        name: "Engine test hook".into(),
        destination_url: url.into(),
        function: function as i32,
        events: Some(pb::EventSelection {
            approval_nodes: nodes.to_vec(),
            rejection,
        }),
        ..Default::default()
    }
}

impl TestApp {
    /// Creates `webhook` with `secret` ("" generates one).
    pub async fn create_webhook_from(
        &self,
        webhook: pb::Webhook,
        secret: &str,
    ) -> pb::CreateWebhookResponse {
        self.admin
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(webhook),
                secret: secret.into(),
            })
            .await
            .expect("webhook created")
            .into_inner()
    }

    /// Publishes one event and expects it accepted.
    pub async fn publish(&self, event: pb::PublishEventRequest) -> pb::PublishEventResponse {
        self.ingest
            .clone()
            .publish_event(event)
            .await
            .expect("event published")
            .into_inner()
    }

    /// GetDelivery, expected to succeed.
    pub async fn get_delivery(&self, id: &str) -> pb::Delivery {
        self.admin
            .clone()
            .get_delivery(pb::GetDeliveryRequest { id: id.into() })
            .await
            .expect("delivery readable")
            .into_inner()
    }

    /// GetWebhook, expected to succeed.
    pub async fn get_webhook(&self, id: &str) -> pb::Webhook {
        self.admin
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: id.into() })
            .await
            .expect("webhook readable")
            .into_inner()
    }

    /// SetWebhookEnabled, expected to succeed.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> pb::Webhook {
        self.admin
            .clone()
            .set_webhook_enabled(pb::SetWebhookEnabledRequest {
                id: id.into(),
                enabled,
            })
            .await
            .expect("enabled state set")
            .into_inner()
    }

    /// ListDeliveries, expected to succeed.
    pub async fn list_deliveries(
        &self,
        request: pb::ListDeliveriesRequest,
    ) -> pb::ListDeliveriesResponse {
        self.admin
            .clone()
            .list_deliveries(request)
            .await
            .expect("deliveries listed")
            .into_inner()
    }

    /// Every delivery matching `filter` (page_token ignored), newest first, following pages.
    pub async fn all_deliveries(&self, filter: pb::ListDeliveriesRequest) -> Vec<pb::Delivery> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .list_deliveries(pb::ListDeliveriesRequest {
                    page_token: token.clone(),
                    page_size: 1000,
                    ..filter.clone()
                })
                .await;
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    /// Every delivery to one webhook, newest first.
    pub async fn deliveries_of(&self, webhook_id: &str) -> Vec<pb::Delivery> {
        self.all_deliveries(pb::ListDeliveriesRequest {
            webhook_id: webhook_id.into(),
            ..Default::default()
        })
        .await
    }

    /// Waits until the delivery satisfies `check` (within [`PATIENCE`]) and returns it with its
    /// attempts.
    pub async fn wait_for_delivery(
        &self,
        delivery_id: &str,
        what: &str,
        check: impl Fn(&pb::Delivery) -> bool,
    ) -> pb::Delivery {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let delivery = self.get_delivery(delivery_id).await;
            if check(&delivery) {
                return delivery;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("delivery {delivery_id} never got {what}; last seen: {delivery:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Received {
    /// The `type` of the JSON body.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// The id of the client request the body is about (`data.<kind>.id`).
    pub fn request_id(&self) -> String {
        let data = &self.json()["data"];
        [
            "withdrawal",
            "prop_trading_participation",
            "prop_trading_live_stage",
        ]
        .iter()
        .find_map(|kind| data[*kind]["id"].as_str())
        .unwrap_or_default()
        .to_owned()
    }

    /// `data.approval_node` of the body (`None` for a rejection).
    pub fn approval_node(&self) -> Option<u64> {
        self.json()["data"]["approval_node"].as_u64()
    }
}

impl Receiver {
    /// Gives `replies`, in order, to the requests `matches` picks (before the general script);
    /// once they are used up those requests get the script or default reply.
    pub fn script_when(
        &self,
        matches: impl Fn(&Received) -> bool + Send + Sync + 'static,
        replies: impl IntoIterator<Item = Reply>,
    ) {
        self.state.rules.lock().expect("lock").push(ReplyRule {
            matches: Box::new(matches),
            replies: replies.into_iter().collect(),
        });
    }

    /// Waits (within [`PATIENCE`]) until what was received satisfies `check`; returns it all.
    pub async fn wait_until(
        &self,
        what: &str,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if check(&received) {
                return received;
            }
            if tokio::time::Instant::now() >= deadline {
                let summary: Vec<String> = received
                    .iter()
                    .map(|r| format!("{} {} {}", r.path, r.event_type(), r.request_id()))
                    .collect();
                panic!("receiver never got {what}; it got: {summary:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until at least `count` requests arrived at `path` and returns those.
    pub async fn wait_for_at(&self, path: &str, count: usize) -> Vec<Received> {
        self.wait_until(&format!("{count} requests at {path}"), |all| {
            all.iter().filter(|r| r.path == path).count() >= count
        })
        .await;
        self.received_at(path)
    }
}

/// Verifies a received request with the `standardwebhooks` crate (an implementation independent
/// of the service's).
pub fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<(), String> {
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| format!("secret refused: {e}"))?
        .verify(&received.body, &received.headers)
        .map_err(|e| e.to_string())
}

/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>` computed by hand for a
/// `whsec_` secret.
pub fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 secret");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Spawns the service on a given database like [`spawn_app_on`], resolving destination names
/// with `lookup` instead of the system resolver (at create, edit and connect time).
pub async fn spawn_app_on_resolving(
    database_url: &str,
    database_name: &str,
    extra: &[&str],
    lookup: Arc<dyn webhooks::delivery::guard::Lookup>,
) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
    let config = serve_config(database_url, extra);
    let app = Application::build_resolving_with(config, lookup)
        .await
        .expect("the service starts");
    serve(app, database_url, database_name).await
}

/// Waits until the delivery reaches `status` as `admin` reads it, and returns it with its
/// attempts (for services the test did not spawn in process).
pub async fn wait_for_delivery_status_of(
    admin: &WebhookAdminClient<Channel>,
    delivery_id: &str,
    status: pb::DeliveryStatus,
) -> pb::Delivery {
    let mut last = None;
    for _ in 0..200 {
        let delivery = admin
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

/// Runs the `webhooks` binary with `args` (and no DATABASE_URL from the environment), asserts it
/// succeeded, and returns what it printed.
pub fn webhooks_binary(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `webhooks reencrypt` on `database_url`, from `old` to `new` (base64 keys), asserts it
/// succeeded, and returns what it printed.
pub fn reencrypt(database_url: &str, new: &str, old: &str) -> String {
    webhooks_binary(&[
        "reencrypt",
        "--database-url",
        database_url,
        "--encryption-key",
        new,
        "--encryption-key-previous",
        old,
    ])
}
