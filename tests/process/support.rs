//! Harness of the process tests: fresh databases, free ports, the real `webhooks` binary as a
//! guarded child process (killed when the guard drops, panics included), a recording HTTP
//! receiver, and helpers for running commands with a deadline.

use std::collections::HashSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rand::Rng;
use tokio_postgres::NoTls;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_webhooks");

/// How long a starting service may take to answer health checks (it creates and migrates its
/// database first).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// The Postgres server the tests create their databases on (no database name).
pub fn server_url() -> String {
    std::env::var("WEBHOOKS_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database of one test; it does not exist until something creates it.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A new, unique database name on the test server (not created).
    pub fn fresh() -> Self {
        let name = format!("webhooks_test_{}", Uuid::new_v4().simple());
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// Whether the database exists on the server.
    pub async fn exists(&self) -> bool {
        admin_connection()
            .await
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.name],
            )
            .await
            .expect("pg_database is readable")
            .is_some()
    }

    /// A direct connection to the database, for checks the API does not offer.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url));
        tokio::spawn(connection);
        client
    }

    /// The tables of the `public` schema.
    pub async fn tables(&self) -> HashSet<String> {
        self.connect()
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                &[],
            )
            .await
            .expect("information_schema is readable")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    }

    /// Drops the database (called at the end of a passing test; a failing test leaves it for
    /// inspection).
    pub async fn drop_database(self) {
        let quoted = format!("\"{}\"", self.name.replace('"', "\"\""));
        let began = Instant::now();
        if let Err(e) = admin_connection()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .await
        {
            eprintln!("note: could not drop test database {}: {e}", self.name);
        }
        note_if_slow(began, &format!("dropping database {}", self.name));
    }
}

/// A connection to the server's `postgres` database.
async fn admin_connection() -> tokio_postgres::Client {
    let url = format!("{}/postgres", server_url());
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test PostgreSQL at {url}: {e} \
                 (run scripts/test.sh, or set WEBHOOKS_TEST_DATABASE_URL)"
            )
        });
    tokio::spawn(connection);
    client
}

/// Prints how long `what` took when it took more than 5 s (the tests share the machine with
/// builds and other suites; this tells a slow phase from a slow service).
pub fn note_if_slow(began: Instant, what: &str) {
    let took = began.elapsed();
    if took > Duration::from_secs(5) {
        eprintln!("note: {what} took {took:.1?}");
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds 127.0.0.1:0");
    listener.local_addr().expect("has an address").port()
}

/// `webhooks <args>`, with none of the service's environment fallbacks inherited, so only the
/// flags given configure it.
pub fn webhooks_command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("WEBHOOKS_") || key_text == "DATABASE_URL" || key_text == "RUST_LOG"
        {
            command.env_remove(&key);
        }
    }
    command
}

/// Runs `webhooks <args>` to completion (at most `within`), returning its status and combined
/// output.
pub async fn run_webhooks(args: &[&str], within: Duration) -> (ExitStatus, String) {
    let mut command = tokio::process::Command::from(webhooks_command(args));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let began = Instant::now();
    let output = tokio::time::timeout(within, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`webhooks {}` did not finish within {within:?}",
                args.join(" ")
            )
        })
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    note_if_slow(began, &format!("`webhooks {}`", args.join(" ")));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, text)
}

/// A `webhooks serve` child process. Dropping it kills the process (SIGKILL) and reaps it; when
/// the test is panicking, the tail of the process's log is printed.
pub struct Service {
    child: Child,
    pub addr: SocketAddr,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Service {
    /// Starts `webhooks serve` on `database` and a free port with `extra` flags, and waits until
    /// its health service reports SERVING.
    pub async fn start(database: &TestDatabase, extra: &[&str]) -> Self {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("valid address");
        let addr_text = addr.to_string();
        let mut args = vec![
            "serve",
            "--database-url",
            database.url.as_str(),
            "--grpc-addr",
            addr_text.as_str(),
            "--log-format",
            "text",
        ];
        args.extend_from_slice(extra);

        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("process-logs");
        std::fs::create_dir_all(&dir).expect("log directory");
        let log_path = dir.join(format!("{}-{port}.log", database.name));
        let log = File::create(&log_path).expect("log file");
        let child = webhooks_command(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file clone"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let began = Instant::now();
        let mut service = Self {
            child,
            addr,
            log_path,
            exit: None,
        };
        service.wait_until_serving().await;
        note_if_slow(began, &format!("starting webhooks serve on {addr}"));
        service
    }

    async fn wait_until_serving(&mut self) {
        let started = Instant::now();
        let mut last_error = String::from("no attempt yet");
        while started.elapsed() < STARTUP_DEADLINE {
            if let Some(status) = self.try_exit() {
                panic!(
                    "webhooks serve exited during startup with {status}; log:\n{}",
                    self.log()
                );
            }
            match tokio::time::timeout(Duration::from_secs(2), self.health_check()).await {
                Ok(Ok(ServingStatus::Serving)) => return,
                Ok(Ok(other)) => last_error = format!("health answered {other:?}"),
                Ok(Err(e)) => last_error = e,
                Err(_) => last_error = "health check timed out".to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "webhooks serve on {} did not become healthy within {STARTUP_DEADLINE:?} (last: {last_error}); log:\n{}",
            self.addr,
            self.log()
        );
    }

    /// One health check of the WebhookAdmin service over a new connection.
    pub async fn health_check(&self) -> Result<ServingStatus, String> {
        let channel = Channel::from_shared(self.endpoint())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: "backoffice.webhooks.v1.WebhookAdmin".to_owned(),
            })
            .await
            .map_err(|e| format!("health check: {e}"))?
            .into_inner();
        Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A gRPC channel to the service.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("valid endpoint")
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.addr))
    }

    /// An admin client on a new channel.
    pub async fn admin(&self) -> WebhookAdminClient<Channel> {
        WebhookAdminClient::new(self.channel().await)
    }

    /// An ingest client on a new channel.
    pub async fn ingest(&self) -> EventIngestClient<Channel> {
        EventIngestClient::new(self.channel().await)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn sigkill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            panic!("webhooks serve had already exited with {status} before SIGKILL");
        }
        self.child.kill().expect("SIGKILL sent");
        let status = self.child.wait().expect("reaped");
        self.exit = Some(status);
        status
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("the kill command runs");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait works");
        }
        self.exit
    }

    /// Waits (at most `within`) for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            eprintln!(
                "--- last lines of webhooks serve on {} ({}) ---\n{tail}\n---",
                self.addr,
                self.log_path.display()
            );
        }
    }
}

/// One POST a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub webhook_id: String,
    pub body: Bytes,
}

impl Received {
    /// `data.event_id` of the body.
    pub fn event_id(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body));
        body["data"]["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("body has no data.event_id: {body}"))
            .to_owned()
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    in_flight: AtomicUsize,
    delay_ms: (u64, u64),
}

/// A real HTTP server on 127.0.0.1 that records every request as it arrives (webhook-id header
/// and body), then answers 200 after a random delay within a range.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver answering after `min_ms..=max_ms` milliseconds.
    pub async fn start(min_ms: u64, max_ms: u64) -> Self {
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            delay_ms: (min_ms, max_ms),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
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

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.state.received.lock().expect("lock").len()
    }

    /// Requests received but not answered yet.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight counter however the handler ends (answered, or dropped because the
/// connection died).
struct InFlight(Arc<ReceiverState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.received.lock().expect("lock").push(Received {
        webhook_id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body,
    });
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(state.clone());
    let (min, max) = state.delay_ms;
    let delay = rand::rng().random_range(min..=max);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    StatusCode::OK
}

/// A withdrawal approved at node 1, for request `request_id`.
pub fn withdrawal_approved(key: &str, request_id: &str) -> pb::PublishEventRequest {
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: pb::Decision::Approved as i32,
        approval_node: Some(1),
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

/// A withdrawal webhook fired by approvals at node 1, sending to `destination_url`.
pub fn withdrawal_webhook(name: &str, destination_url: &str) -> pb::CreateWebhookRequest {
    pb::CreateWebhookRequest {
        webhook: Some(pb::Webhook {
            name: name.into(),
            destination_url: destination_url.into(),
            function: pb::Function::Withdrawal as i32,
            events: Some(pb::EventSelection {
                approval_nodes: vec![1],
                rejection: false,
            }),
            ..Default::default()
        }),
        secret: String::new(),
    }
}

/// Every delivery of a webhook, all pages.
pub async fn all_deliveries(
    admin: &mut WebhookAdminClient<Channel>,
    webhook_id: &str,
) -> Vec<pb::Delivery> {
    let mut deliveries = Vec::new();
    let mut page_token = String::new();
    for _ in 0..1000 {
        let page = admin
            .list_deliveries(pb::ListDeliveriesRequest {
                webhook_id: webhook_id.to_owned(),
                page_size: 200,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListDeliveries answers")
            .into_inner();
        deliveries.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            return deliveries;
        }
        page_token = page.next_page_token;
    }
    panic!("ListDeliveries never returned a last page");
}
