//! `clients/typescript` (the npm package `@backoffice/webhooks-client`): its `node --test` tests
//! and the TypeScript snippets of `docs/clients.md`, against the service over mutual TLS with a
//! bearer token, delivering to a real receiver.
//!
//! Needs the package built (`scripts/build-console.sh` builds it before the console, and
//! `scripts/test.sh` runs that) and node 20 or newer on PATH; nothing is skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::pki::{CertFiles, Pki};
use testkit::{Receiver, TestApp};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const ADMIN_TOKEN: &str = "typescript-client-admin-token-0123456789";
/// npm installs, a TypeScript build and the flows, on a machine shared with other suites.
const NODE_DEADLINE: Duration = Duration::from_secs(600);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/typescript")
}

/// The service with TLS that requires a client certificate from `pki`, and an admin token.
struct Setup {
    app: TestApp,
    receiver: Receiver,
    pki: Pki,
    client: CertFiles,
}

async fn start() -> Setup {
    assert!(
        package_dir().join("dist/index.js").is_file(),
        "clients/typescript is not built: run scripts/build-console.sh (scripts/test.sh does)"
    );
    let pki = Pki::new("typescript-client");
    let server = pki.server();
    let client = pki.client("typescript-client");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
        .identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    let app = TestApp::builder()
        .args(&[
            "--tls-cert",
            server.cert_arg(),
            "--tls-key",
            server.key_arg(),
            "--tls-client-ca",
            pki.ca_arg(),
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .tls(tls)
        .wait_until_serving()
        .spawn()
        .await;
    Setup {
        app,
        receiver: Receiver::start().await,
        pki,
        client,
    }
}

/// Runs `node --test` on `files` in the package, with the service's address and credentials in
/// the environment; panics with its output unless every test passed.
async fn node_test(setup: &Setup, files: &[&str]) -> String {
    let mut command = tokio::process::Command::new("node");
    command
        .arg("--test")
        .args(files)
        .current_dir(package_dir())
        .env("WEBHOOKS_SERVER", &setup.app.server)
        .env("WEBHOOKS_TOKEN", ADMIN_TOKEN)
        .env("WEBHOOKS_CA_CERT", setup.pki.ca_arg())
        .env("WEBHOOKS_CLIENT_CERT", setup.client.cert_arg())
        .env("WEBHOOKS_CLIENT_KEY", setup.client.key_arg())
        .env("WEBHOOKS_RECEIVER_URL", setup.receiver.url(""))
        .kill_on_drop(true);
    let output = tokio::time::timeout(NODE_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("node --test {files:?} did not finish within {NODE_DEADLINE:?}"))
        .expect("node runs (scripts/ensure-node.sh provides it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "node --test {files:?} failed ({}):\n{report}",
        output.status
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_package_passes_its_tests_against_the_service() {
    let setup = start().await;
    let report = node_test(&setup, &["test/retry.test.mjs", "test/service.test.mjs"]).await;
    // Both files ran, and none of their tests was skipped.
    assert!(report.contains("# fail 0"), "{report}");
    assert!(report.contains("# skipped 0"), "{report}");

    // What the package published reached the receiver, through the service.
    let delivered = setup.receiver.received_at("/delivered");
    assert!(
        delivered
            .iter()
            .any(|r| r.request_id() == "WD-TS-DELIVERED"),
        "the receiver got no delivery of WD-TS-DELIVERED at /delivered: {:?}",
        delivered.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_snippets_of_docs_clients_md_run_against_the_service() {
    let setup = start().await;
    node_test(&setup, &["test/docs.test.mjs"]).await;
    let paths: Vec<String> = setup
        .receiver
        .received()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths.iter().any(|p| p == "/crm/withdrawals"),
        "the docs' webhook received nothing: {paths:?}"
    );
}
