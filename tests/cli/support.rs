//! Harness of the CLI tests: the real service in-process on a random port with a fresh database,
//! the real `webhooks` binary run as child processes (one-shot with a deadline, under a pseudo
//! terminal with `script`, or long-running with their output collected line by line), a
//! recording HTTP receiver, and a TCP proxy that can cut connections.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use uuid::Uuid;
use webhooks::config::{Cli, Command as ServiceCommand, ServeConfig};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;
use webhooks::startup::Application;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_webhooks");

/// How long anything the service should do "soon" may take (the machine is shared and noisy).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long one CLI invocation may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Environment variables of the CLI that must not leak in from the test's environment.
const CLI_ENV: &[&str] = &[
    "WEBHOOKS_SERVER",
    "WEBHOOKS_TOKEN",
    "WEBHOOKS_TOKEN_FILE",
    "WEBHOOKS_CA_CERT",
    "WEBHOOKS_CLIENT_CERT",
    "WEBHOOKS_CLIENT_KEY",
    "WEBHOOKS_OUTPUT",
    "WEBHOOKS_LISTEN_SECRET",
];

// ---------------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------------

/// The Postgres server the tests create their databases on (no database name).
pub fn server_url() -> String {
    std::env::var("WEBHOOKS_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Flags for tests: loopback destinations, fast polling and retries (two retries: a delivery to a
/// failing receiver is FAILED after three attempts, within about a second).
const TEST_FLAGS: &[&str] = &[
    "--allow-private-destinations",
    "true",
    "--poll-interval",
    "100ms",
    "--retry-schedule",
    "300ms,300ms",
    "--request-timeout",
    "3s",
    "--connect-timeout",
    "1s",
    "--log-level",
    "warn",
];

/// The service running in-process, and gRPC clients to it for setting up and checking.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port` (`https://` with [`spawn_tls_app`]), for `--server`.
    pub server: String,
    pub admin: WebhookAdminClient<Channel>,
    pub ingest: EventIngestClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the service on a fresh database with the test flags and `extra` ones.
pub async fn spawn_app(extra: &[&str]) -> TestApp {
    spawn(extra, None).await
}

/// Starts the service with `extra` flags that give it TLS (`--tls-cert`, `--tls-key`, maybe
/// `--tls-client-ca`); the test's own clients connect with `tls`.
pub async fn spawn_tls_app(extra: &[&str], tls: tonic::transport::ClientTlsConfig) -> TestApp {
    spawn(extra, Some(tls)).await
}

async fn spawn(extra: &[&str], tls: Option<tonic::transport::ClientTlsConfig>) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
    let database_url = format!("{}/webhooks_test_{}", server_url(), Uuid::new_v4().simple());
    let mut args = vec![
        "webhooks",
        "serve",
        "--database-url",
        database_url.as_str(),
        "--grpc-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(TEST_FLAGS);
    args.extend_from_slice(extra);
    let ServiceCommand::Serve(config) = Cli::parse_from(args).command else {
        panic!("serve was parsed")
    };
    let config: ServeConfig = config;
    let app = Application::build(config)
        .await
        .expect("the service starts");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = format!("{scheme}://{addr}");
    let mut endpoint = Channel::from_shared(server.clone()).expect("valid endpoint");
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).expect("a TLS client");
    }
    let channel = endpoint.connect().await.expect("connects");
    TestApp {
        addr,
        server,
        admin: WebhookAdminClient::new(channel.clone()),
        ingest: EventIngestClient::new(channel),
        stop: Some(stop),
    }
}

impl TestApp {
    /// Runs the CLI against this service (`--server` added).
    pub async fn cli(&self, args: &[&str]) -> Run {
        run(&self.with_server(args), None).await
    }

    /// Runs the CLI against this service with `env` set in its environment.
    pub async fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let args = self.with_server(args);
        let mut command = cli_command(BIN);
        command
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        finish(command, args, None).await
    }

    /// Runs the CLI against this service with `input` on stdin (a pipe, not a terminal).
    pub async fn cli_with_stdin(&self, args: &[&str], input: &str) -> Run {
        run(&self.with_server(args), Some(input)).await
    }

    /// Runs the CLI against this service on a pseudo terminal (util-linux `script`), typing
    /// `input`. stdout and stderr both come back in `stdout`.
    pub async fn cli_in_terminal(&self, args: &[&str], input: &str) -> Run {
        run_in_terminal(&self.with_server(args), input).await
    }

    fn with_server(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.push("--server".to_owned());
        all.push(self.server.clone());
        all
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

    /// GetWebhook.
    pub async fn get_webhook(&self, id: &str) -> Result<pb::Webhook, tonic::Status> {
        self.admin
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: id.into() })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Waits until the delivery satisfies `check` and returns it.
    pub async fn wait_for_delivery(
        &self,
        id: &str,
        what: &str,
        check: impl Fn(&pb::Delivery) -> bool,
    ) -> pb::Delivery {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let delivery = self.get_delivery(id).await;
            if check(&delivery) {
                return delivery;
            }
            assert!(
                Instant::now() < deadline,
                "delivery {id} never got {what}; last seen: {delivery:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the delivery has `status`.
    pub async fn wait_for_status(&self, id: &str, status: pb::DeliveryStatus) -> pb::Delivery {
        self.wait_for_delivery(id, &format!("{status:?}"), |d| d.status == status as i32)
            .await
    }

    /// Creates a withdrawal webhook (approval at node 1, rejection) to `url`, via the API.
    pub async fn create_webhook(&self, name: &str, url: &str, secret: &str) -> pb::Webhook {
        self.admin
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(pb::Webhook {
                    name: name.into(),
                    destination_url: url.into(),
                    function: pb::Function::Withdrawal as i32,
                    events: Some(pb::EventSelection {
                        approval_nodes: vec![1],
                        rejection: true,
                    }),
                    ..Default::default()
                }),
                secret: secret.into(),
            })
            .await
            .expect("webhook created")
            .into_inner()
            .webhook
            .expect("the webhook is returned")
    }

    /// Publishes a withdrawal approval at node 1 for `request_id` via the API; returns its one
    /// delivery id.
    pub async fn publish_withdrawal(&self, key: &str, request_id: &str) -> String {
        let response = self
            .ingest
            .clone()
            .publish_event(pb::PublishEventRequest {
                idempotency_key: key.into(),
                decision: pb::Decision::Approved as i32,
                approval_node: Some(1),
                occurred_at: None,
                request: Some(pb::publish_event_request::Request::Withdrawal(
                    pb::WithdrawalRequest {
                        id: request_id.into(),
                        client_id: "C-1".into(),
                        amount: "10.00".into(),
                        currency: "USD".into(),
                        ..Default::default()
                    },
                )),
            })
            .await
            .expect("event published")
            .into_inner();
        assert_eq!(response.delivery_ids.len(), 1, "{response:?}");
        response.delivery_ids[0].clone()
    }
}

// ---------------------------------------------------------------------------------------------
// One-shot CLI runs
// ---------------------------------------------------------------------------------------------

/// What a finished CLI run left.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole run unless it exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "the command failed: {self:#?}");
        self
    }

    /// Panics unless it exited with `code`.
    #[track_caller]
    pub fn exits(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks `{needle}`: {self:#?}"
        );
        self
    }

    /// Panics unless stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks `{needle}`: {self:#?}"
        );
        self
    }

    /// stdout parsed as one JSON document; the run must have succeeded.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:#?}"))
    }
}

fn cli_command(program: &str) -> Command {
    let mut command = Command::new(program);
    for name in CLI_ENV {
        command.env_remove(name);
    }
    command.kill_on_drop(true);
    command
}

/// Runs the binary with `args`, stdin `input` (or nothing), within the deadline.
pub async fn run(args: &[String], input: Option<&str>) -> Run {
    let mut command = cli_command(BIN);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    finish(command, args.to_vec(), input).await
}

/// `script -qec '<binary> <args>' /dev/null`: the binary runs on a pseudo terminal (so stdin
/// is a terminal), `input` is typed into it, and `script` exits with the binary's code.
pub async fn run_in_terminal(args: &[String], input: &str) -> Run {
    let line = std::iter::once(BIN.to_owned())
        .chain(args.iter().cloned())
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = cli_command("script");
    command
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut all = vec!["script".to_owned(), "-qec".to_owned(), line];
    all.push("/dev/null".to_owned());
    finish(command, all, Some(input)).await
}

/// [`run_in_terminal`] with `env` set (and `NO_COLOR`, `CLICOLOR_FORCE` unset unless `env` sets
/// them), typing nothing.
pub async fn run_in_terminal_with_env(args: &[String], env: &[(&str, &str)]) -> Run {
    let line = std::iter::once(BIN.to_owned())
        .chain(args.iter().cloned())
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = cli_command("script");
    command
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let all = vec![
        "script".to_owned(),
        "-qec".to_owned(),
        line,
        "/dev/null".to_owned(),
    ];
    finish(command, all, Some("")).await
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

async fn finish(mut command: Command, args: Vec<String>, input: Option<&str>) -> Run {
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("stdin written");
        // Dropping stdin closes it.
    }
    let output = tokio::time::timeout(COMMAND_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within {COMMAND_DEADLINE:?}"))
        .expect("the command ran");
    Run {
        args,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Long-running CLI processes (watch, listen)
// ---------------------------------------------------------------------------------------------

/// A running CLI process whose stdout and stderr lines are collected as they come; killed when
/// dropped.
pub struct Running {
    child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

fn collect_lines(
    reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().expect("lock").push(line);
        }
    });
}

impl Running {
    /// Starts the binary with `args`.
    pub fn start(args: &[String]) -> Self {
        let mut command = cli_command(BIN);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take().expect("piped"), stdout.clone());
        collect_lines(child.stderr.take().expect("piped"), stderr.clone());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The stdout lines so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("lock").clone()
    }

    /// The stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until the stdout lines satisfy `check`, and returns them.
    pub async fn wait_stdout(
        &mut self,
        what: &str,
        check: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        self.wait(what, true, check).await
    }

    /// Waits until the stderr lines satisfy `check`, and returns them.
    pub async fn wait_stderr(
        &mut self,
        what: &str,
        check: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        self.wait(what, false, check).await
    }

    async fn wait(
        &mut self,
        what: &str,
        stdout: bool,
        check: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let lines = if stdout {
                self.stdout_lines()
            } else {
                self.stderr_lines()
            };
            if check(&lines) {
                return lines;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the readers a moment to drain what is left.
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!(
                    "the process exited ({status}) before {what}; stdout: {:#?}; stderr: {:#?}",
                    self.stdout_lines(),
                    self.stderr_lines()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; stdout: {:#?}; stderr: {:#?}",
                self.stdout_lines(),
                self.stderr_lines()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the process and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A receiver and a proxy
// ---------------------------------------------------------------------------------------------

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers with a settable
/// status (204 to begin with).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        state.status.store(204, Ordering::SeqCst);
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` from now on.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits until a request satisfies `check`, and returns it.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.received().into_iter().find(|r| check(r)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}; it got {:#?}",
                self.received()
            );
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
    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that can drop every connection and refuse
/// new ones for a while, as a flaky network would.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("has an address");
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up_flag, tasks) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("lock").push(task);
            }
        });
        Self {
            addr,
            up,
            connections,
        }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// A raw HTTP/1.1 POST to `addr` with `headers` and `body`; returns the status and body.
pub async fn post(addr: &str, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    raw_request(addr, "POST", path, headers, body).await
}

/// A raw HTTP/1.1 request (one per connection); returns the status and body.
pub async fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("the response comes")
        .expect("response read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A fresh `whsec_` secret.
pub fn new_secret() -> String {
    use base64::Engine;
    let key: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`, computed independently of the
/// service's code.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 secret");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Strings of a JSON array field.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
