//! Harness of the CLI tests, on top of `testkit`: the real service in-process with the CLI's
//! test flags, the real `webhooks` binary run as child processes (one-shot with a deadline,
//! under a pseudo terminal with `script`, or long-running with their output collected line by
//! line), and a TCP proxy that can cut connections.

use std::net::SocketAddr;
use std::ops::Deref;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::PATIENCE;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The binary under test.
pub const BIN: &str = testkit::webhooks_bin!();

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

/// The service in-process ([`testkit::TestApp`]), with the CLI run against it.
pub struct TestApp(testkit::TestApp);

impl Deref for TestApp {
    type Target = testkit::TestApp;

    fn deref(&self) -> &testkit::TestApp {
        &self.0
    }
}

/// The test defaults with two retries: a delivery to a failing receiver is FAILED after three
/// attempts, within about a second.
fn builder(extra: &[&str]) -> testkit::TestAppBuilder {
    testkit::TestApp::builder()
        .default_flag("--retry-schedule", "300ms,300ms")
        .args(extra)
}

/// Starts the service on a fresh database with the test flags and `extra` ones.
pub async fn spawn_app(extra: &[&str]) -> TestApp {
    TestApp(builder(extra).spawn().await)
}

/// Starts the service with `extra` flags that give it TLS (`--tls-cert`, `--tls-key`, maybe
/// `--tls-client-ca`); the test's own clients connect with `tls`.
pub async fn spawn_tls_app(extra: &[&str], tls: tonic::transport::ClientTlsConfig) -> TestApp {
    TestApp(builder(extra).tls(tls).spawn().await)
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
        assert_eq!(self.code, 0, "`{}` failed: {self:#?}", self.args.join(" "));
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
    in_terminal(args, input, None).await
}

/// [`run_in_terminal`] with `env` set (and `NO_COLOR`, `CLICOLOR_FORCE` unset unless `env` sets
/// them), typing nothing.
pub async fn run_in_terminal_with_env(args: &[String], env: &[(&str, &str)]) -> Run {
    in_terminal(args, "", Some(env)).await
}

async fn in_terminal(args: &[String], input: &str, env: Option<&[(&str, &str)]>) -> Run {
    let line = std::iter::once(BIN.to_owned())
        .chain(args.iter().cloned())
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = cli_command("script");
    if let Some(env) = env {
        command
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .envs(env.iter().copied());
    }
    command
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
    finish(command, all, Some(input)).await
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
// A proxy
// ---------------------------------------------------------------------------------------------

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
