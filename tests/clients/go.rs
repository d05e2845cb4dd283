//! The Go client (`clients/go`): the install-and-test lines of docs/clients.md ("## Go", the
//! `sh go-install` block) run as written, against a service with TLS, a client CA, an admin and
//! an ingest token and an ingest rate limit, and a receiver the Go tests' webhooks deliver to.
//! Its `go test` creates a webhook, publishes (and repeats) a decision, watches from the log's
//! start and resumes by cursor, reads the history, resends, reads a field error, is refused
//! without the token, retries publishes over the rate limit, and keeps a watch going across a
//! cut connection; this test checks each of those passed and what the receiver got.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use testkit::pki::Pki;
use testkit::{Receiver, TestApp};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const ADMIN: &str = "go-client-admin-token-0123456789";
const INGEST: &str = "go-client-ingest-token-0123456789";

/// The first build of gRPC and protobuf from source is slow on a busy machine.
const GO_TEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The body of the ```` ```sh go-install ```` block of the "## Go" section of docs/clients.md.
fn install_block() -> String {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/clients.md"))
            .expect("docs/clients.md is readable");
    let section = page
        .split("\n## ")
        .find(|section| section.starts_with("Go\n"))
        .expect("docs/clients.md has a \"## Go\" section");
    let mut lines = section
        .lines()
        .skip_while(|line| line.trim() != "```sh go-install");
    assert!(
        lines.next().is_some(),
        "the \"## Go\" section of docs/clients.md has no ```sh go-install block"
    );
    let body: Vec<&str> = lines.take_while(|line| line.trim() != "```").collect();
    body.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_clients_go_test_passes_against_the_service() {
    let pki = Pki::new("go-client");
    let server = pki.server();
    let client = pki.client("go-client");
    let receiver = Receiver::start().await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .identity(Identity::from_pem(&client.cert_pem, &client.key_pem))
        .domain_name("localhost");
    let app = TestApp::builder()
        .args(&[
            "--tls-cert",
            server.cert_arg(),
            "--tls-key",
            server.key_arg(),
            "--tls-client-ca",
            pki.ca_arg(),
            "--admin-token",
            ADMIN,
            "--ingest-token",
            INGEST,
            "--ingest-rate-limit",
            "2",
        ])
        .tls(tls)
        .spawn()
        .await;

    let run = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &install_block()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WEBHOOKS_GO_TEST_ADDR", app.addr.to_string())
        .env("WEBHOOKS_GO_TEST_ADMIN_TOKEN", ADMIN)
        .env("WEBHOOKS_GO_TEST_INGEST_TOKEN", INGEST)
        .env("WEBHOOKS_GO_TEST_CA_FILE", pki.ca_arg())
        .env("WEBHOOKS_GO_TEST_CLIENT_CERT", client.cert_arg())
        .env("WEBHOOKS_GO_TEST_CLIENT_KEY", client.key_arg())
        .env("WEBHOOKS_GO_TEST_RECEIVER_URL", receiver.url("/go"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GO_TEST_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            panic!("the Go client's tests did not finish within {GO_TEST_TIMEOUT:?}")
        })
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        output.status.success(),
        "the Go client's tests failed ({}):\n{report}",
        output.status
    );
    println!("{report}");
    assert!(
        stdout.contains("ok  \tbackoffice.internal/webhooks/clients/go/webhooks\t"),
        "go test did not report the webhooks package as passed:\n{report}"
    );
    for test in [
        "TestCreatePublishWatchHistoryResendAndAFieldErrorAgainstTheService",
        "TestCallsWithoutTheTokenAreUnauthenticated",
        "TestPublishesOverTheIngestRateLimitAreRetriedUntilTheyPass",
        "TestAWatchWhoseConnectionIsCutReconnectsAndResumesAfterItsCursor",
        "TestTheDefaultDeadlineAppliesOnlyToCallsWithoutOne",
        "TestDocSnippetsAreTheTestedCode",
    ] {
        assert!(
            stdout.contains(&format!("--- PASS: {test} ")),
            "go test -v did not report {test} as passed:\n{report}"
        );
    }

    // What the Go tests' webhook was sent, seen from the receiver's side: the first delivery and
    // its resend, the same message twice.
    let received = receiver.received_at("/go");
    assert_eq!(
        received.len(),
        2,
        "the receiver got {} requests:\n{report}",
        received.len()
    );
    assert!(
        received
            .iter()
            .all(|r| r.event_type() == "withdrawal.approved"),
        "{:?}",
        received.iter().map(|r| r.event_type()).collect::<Vec<_>>()
    );
    assert_eq!(
        received[0].webhook_id(),
        received[1].webhook_id(),
        "a resend carries the first attempt's webhook-id"
    );
    app.stop_and_drop_database().await;
}
