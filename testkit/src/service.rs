//! The real `webhooks` binary as a child process, for tests that need what only a process has:
//! signals, exit codes, a crash with SIGKILL, the binary's own flag parsing. The guard kills the
//! process when it drops (panics included) and prints the tail of its log on failure.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use crate::db::TestDatabase;
use crate::grpc;

/// How long a starting service may take to answer health checks (it creates and migrates its
/// database first).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Prints how long `what` took when it took more than 5 s (the tests share the machine with
/// builds and other suites; this tells a slow phase from a slow service).
pub fn note_if_slow(began: Instant, what: &str) {
    let took = began.elapsed();
    if took > Duration::from_secs(5) {
        eprintln!("note: {what} took {took:.1?}");
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bound, read, released), and that this
/// process has not handed out before. The kernel may give a released port again at once, so a
/// test that took a port for metrics and then started a service (which takes one for gRPC)
/// once saw both on the same port, and the service failed to start.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds 127.0.0.1:0");
        let port = listener.local_addr().expect("has an address").port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// `<bin> <args>` (the `webhooks` binary, see [`crate::webhooks_bin`]), with none of the service's environment fallbacks inherited, so only the
/// flags given configure it.
pub fn webhooks_command(bin: &str, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
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
pub async fn run_webhooks(bin: &str, args: &[&str], within: Duration) -> (ExitStatus, String) {
    let mut command = tokio::process::Command::from(webhooks_command(bin, args));
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
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
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
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// Where its stdout and stderr go.
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Service {
    /// Starts `<bin> serve` on `database` and a free port with `extra` flags, and waits until
    /// its health service reports SERVING.
    pub async fn start(bin: &str, database: &TestDatabase, extra: &[&str]) -> Self {
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

        let dir = std::env::temp_dir().join("webhooks-process-logs");
        std::fs::create_dir_all(&dir).expect("log directory");
        let log_path = dir.join(format!("{}-{port}.log", database.name));
        let log = File::create(&log_path).expect("log file");
        let child = webhooks_command(bin, &args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file clone"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
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
        grpc::health(channel, "backoffice.webhooks.v1.WebhookAdmin").await
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
