//! The Python client (`clients/python`): its pytest suite runs against the service over mutual
//! TLS with an admin token, delivering to a real receiver, and must pass with nothing skipped.
//!
//! pytest runs in the virtual environment `scripts/ensure-python-client.sh` makes
//! (`.cache/python-client`, or `WEBHOOKS_PYTHON_CLIENT_VENV`); scripts/test.sh runs it first. The
//! suite reads the service from `WEBHOOKS_ADDRESS`, `WEBHOOKS_TOKEN`, `WEBHOOKS_CA_FILE`,
//! `WEBHOOKS_CLIENT_CERT`, `WEBHOOKS_CLIENT_KEY` and the receiver from `WEBHOOKS_RECEIVER_URL`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testkit::pki::Pki;
use testkit::{Receiver, TestApp};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const TOKEN: &str = "python-client-admin-token-0123456789";

/// Long enough for the whole suite on a busy machine (it takes seconds when idle).
const SUITE_DEADLINE: Duration = Duration::from_secs(600);

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's python, or a failure saying how to make it.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("WEBHOOKS_PYTHON_CLIENT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join(".cache/python-client"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no Python client environment at {}: run scripts/ensure-python-client.sh (scripts/test.sh does)",
        venv.display()
    );
    python
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_suite_passes_against_the_service_over_mutual_tls() {
    let python = venv_python();
    let pki = Pki::new("python-client");
    let server = pki.server();
    let client = pki.client("python-client");
    let receiver = Receiver::start().await;
    let app = TestApp::builder()
        .args(&[
            "--tls-cert",
            server.cert_arg(),
            "--tls-key",
            server.key_arg(),
            "--tls-client-ca",
            pki.ca_arg(),
            "--admin-token",
            TOKEN,
        ])
        .tls(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&pki.ca_pem))
                .identity(Identity::from_pem(&client.cert_pem, &client.key_pem))
                .domain_name("localhost"),
        )
        .wait_until_serving()
        .spawn()
        .await;

    let env = BTreeMap::from([
        ("WEBHOOKS_ADDRESS", format!("127.0.0.1:{}", app.addr.port())),
        ("WEBHOOKS_TOKEN", TOKEN.to_owned()),
        ("WEBHOOKS_CA_FILE", path_arg(&pki.ca)),
        ("WEBHOOKS_CLIENT_CERT", path_arg(&client.cert)),
        ("WEBHOOKS_CLIENT_KEY", path_arg(&client.key)),
        ("WEBHOOKS_RECEIVER_URL", receiver.url("/python-client")),
    ]);
    let run = tokio::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider"])
        .current_dir(repository().join("clients/python"))
        .envs(env)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SUITE_DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("pytest did not finish within {SUITE_DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("{} does not run: {e}", python.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{report}",
        output.status
    );
    let summary = report
        .lines()
        .rev()
        .find(|line| line.contains(" passed"))
        .unwrap_or_else(|| panic!("pytest printed no summary:\n{report}"));
    assert!(
        !summary.contains("skipped") && !summary.contains("deselected"),
        "every Python test must run: {summary}"
    );

    // What the suite did reached a real endpoint: its deliveries, and a resend with the
    // webhook-id of the first attempt.
    let received = receiver.received_at("/python-client");
    assert!(!received.is_empty(), "the receiver got nothing:\n{report}");
    let mut ids = received.iter().map(|r| r.webhook_id()).collect::<Vec<_>>();
    ids.sort();
    assert!(
        ids.windows(2).any(|pair| pair[0] == pair[1]),
        "no webhook-id arrived twice, so the resend never reached the receiver: {ids:?}"
    );
    app.stop_and_drop_database().await;
}
