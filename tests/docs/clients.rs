//! `docs/clients.md`: the Rust blocks are the files under `tests/docs/rust_client/`, byte for
//! byte, which this suite compiles and runs against a real service with mutual TLS and a token;
//! the install block resolves to the `webhooks-client` crate of this repository.

#[path = "rust_client/connect.rs"]
mod connect;
#[path = "rust_client/field_error.rs"]
mod field_error;
#[path = "rust_client/publish.rs"]
mod publish;
#[path = "rust_client/watch.rs"]
mod watch;

use std::time::Duration;

use testkit::pki::Pki;
use testkit::{PATIENCE, Receiver};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use webhooks_client::v1;

use crate::markdown::{self, Block, Doc};
use crate::support;

/// The page.
pub const PAGE: &str = "clients.md";

/// The kinds of block the page may hold (language, marker), each run or checked by some test:
/// the Rust section's by this file; the TypeScript one by clients/typescript/test/docs.test.mjs
/// (the build and install lines, then the examples, in order, as one module of a service); the
/// Python one by clients/python/tests/test_docs.py, with what each example prints in the
/// `text python-output` block after it; the Go one by tests/clients/go.rs (the install lines,
/// word for word) and clients/go/webhooks/example_test.go (each ```go block equals one of its
/// marked regions, which the go test runs). All of them run under tests/clients.
pub const BLOCK_KINDS: &[(&str, &str)] = &[
    ("toml", "rust-install"),
    ("rust", "rust-client"),
    ("sh", "typescript-build"),
    ("sh", "typescript-install"),
    ("js", "typescript-example"),
    ("sh", "python-install"),
    ("python", "example"),
    ("text", "python-output"),
    ("sh", "go-install"),
    ("go", ""),
];

/// The Rust snippets: `file=` of their block, and the file this suite compiles.
const RUST_SNIPPETS: [(&str, &str); 4] = [
    ("connect.rs", include_str!("rust_client/connect.rs")),
    ("publish.rs", include_str!("rust_client/publish.rs")),
    ("field_error.rs", include_str!("rust_client/field_error.rs")),
    ("watch.rs", include_str!("rust_client/watch.rs")),
];

fn blocks<'a>(doc: &'a Doc, lang: &str, marker: &str) -> Vec<&'a Block> {
    doc.blocks
        .iter()
        .filter(|b| b.lang == lang && b.marker() == marker)
        .collect()
}

#[test]
fn the_rust_snippets_are_the_compiled_files() {
    let doc = markdown::load(PAGE);
    let snippets = blocks(&doc, "rust", "rust-client");
    let files: Vec<_> = snippets.iter().filter_map(|b| b.attr("file")).collect();
    let expected: Vec<_> = RUST_SNIPPETS.iter().map(|(file, _)| *file).collect();
    assert_eq!(
        files, expected,
        "the page's ```rust rust-client file=... blocks"
    );
    for (block, (file, source)) in snippets.iter().zip(RUST_SNIPPETS) {
        assert!(
            block.code == source,
            "{}: the block must be exactly tests/docs/rust_client/{file} (which the tests \
             compile and run); copy the file into the page",
            block.at(&doc)
        );
    }
}

/// The install block, in a project next to this repository (as `../webhooks`), resolves to
/// the crate under `clients/rust`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_install_block_resolves_to_the_client_crate() {
    let doc = markdown::load(PAGE);
    let [install] = blocks(&doc, "toml", "rust-install")[..] else {
        panic!("docs/{PAGE} has one ```toml rust-install block")
    };
    let root = markdown::root();
    let project = support::scratch_dir("rust-client-install");
    let dependencies = install
        .code
        .replace("../webhooks", root.to_str().unwrap_or_default());
    support::write(
        &project,
        "Cargo.toml",
        &format!(
            "[package]\nname = \"back-office\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [workspace]\n\n{dependencies}"
        ),
    );
    std::fs::create_dir_all(project.join("src")).unwrap_or_else(|e| panic!("src/: {e}"));
    support::write(&project.join("src"), "lib.rs", "");
    // Resolving needs only the registry index (cached by the build); `pkgid` then names the
    // package the lock file found, with its source.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = project.join("Cargo.toml");
    let mut source = String::new();
    for args in [
        &["generate-lockfile"][..],
        &["pkgid", "webhooks-client"][..],
    ] {
        let output = tokio::process::Command::new(&cargo)
            .args(args)
            .args(["--offline", "--manifest-path"])
            .arg(&manifest)
            .output()
            .await
            .unwrap_or_else(|e| panic!("cargo {args:?} runs: {e}"));
        assert!(
            output.status.success(),
            "cargo {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        source = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    // e.g. path+file:///.../clients/rust#webhooks-client@0.1.0
    let expected = format!("path+file://{}#", root.join("clients/rust").display());
    assert!(
        source.starts_with(&expected),
        "{source} is not {expected}..."
    );
}

const ADMIN: &str = "docs-clients-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_snippets_run_against_a_service_with_mutual_tls() {
    let pki = Pki::new("docs-clients");
    let server = pki.server();
    let back_office = pki.client("back-office");
    let app = testkit::TestApp::builder()
        .args(&[
            "--tls-cert",
            server.cert_arg(),
            "--tls-key",
            server.key_arg(),
            "--tls-client-ca",
            pki.ca_arg(),
            "--admin-token",
            ADMIN,
        ])
        .tls(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&pki.ca_pem))
                .identity(Identity::from_pem(
                    &back_office.cert_pem,
                    &back_office.key_pem,
                ))
                .domain_name("localhost"),
        )
        .spawn()
        .await;
    let receiver = Receiver::start().await;

    // Connect: without the client certificate the service refuses the calls.
    let ca = std::path::Path::new(pki.ca_arg());
    let anonymous = connect::connect(&app.server, ADMIN, ca, None).await;
    let refused = match anonymous {
        Err(error) => Err(error),
        Ok(client) => field_error::create_webhook(&client, "x", "http://127.0.0.1:9/x")
            .await
            .map(|_| ()),
    };
    assert!(
        refused.is_err(),
        "a client without a certificate got through"
    );
    let client = connect::connect(
        &app.server,
        ADMIN,
        ca,
        Some((&back_office.cert, &back_office.key)),
    )
    .await
    .unwrap_or_else(|e| panic!("connects with the client certificate: {e}"));

    // A field error, decoded.
    let refused = field_error::create_webhook(&client, "Payments", "ftp://example.com/hooks")
        .await
        .unwrap_or_else(|e| panic!("CreateWebhook answers: {e}"));
    let field_error::Created::Refused(violations) = refused else {
        panic!("an ftp:// destination was accepted")
    };
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "webhook.destination_url");
    assert!(violations[0].description.contains("http"), "{violations:?}");

    let created = field_error::create_webhook(&client, "Payments", &receiver.url("/payments"))
        .await
        .unwrap_or_else(|e| panic!("CreateWebhook answers: {e}"));
    let field_error::Created::Webhook(webhook_id) = created else {
        panic!("a valid webhook was refused")
    };

    // Watch from now, publish, and read until the delivery succeeded.
    let watcher = {
        let client = client.clone();
        let webhook_id = webhook_id.clone();
        tokio::spawn(async move {
            let mut updates = Vec::new();
            let last = watch::follow(&client, &webhook_id, String::new(), |update| {
                updates.push(update.clone());
                !succeeded(update)
            })
            .await;
            (last, updates)
        })
    };
    // The watch is set up before anything is published (its start is "now").
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivery_ids = publish::approve_withdrawal(&client, "wd-42", 1)
        .await
        .unwrap_or_else(|e| panic!("PublishEvent: {e}"));
    assert_eq!(delivery_ids.len(), 1, "{delivery_ids:?}");
    let (last, updates) = tokio::time::timeout(PATIENCE, watcher)
        .await
        .unwrap_or_else(|_| panic!("the delivery did not succeed in time"))
        .unwrap_or_else(|e| panic!("the watcher panicked: {e}"));
    let last = last.unwrap_or_else(|e| panic!("WatchDeliveries: {e}"));
    assert_eq!(
        last,
        updates.last().map(|u| u.cursor.clone()).unwrap_or_default()
    );
    assert!(updates.len() >= 2, "queued, then succeeded: {updates:?}");
    assert_eq!(receiver.received().len(), 1);

    // Resuming after the first update replays the later ones.
    let mut replayed = Vec::new();
    watch::follow(&client, &webhook_id, updates[0].cursor.clone(), |update| {
        replayed.push(update.cursor.clone());
        !succeeded(update)
    })
    .await
    .unwrap_or_else(|e| panic!("WatchDeliveries resumed: {e}"));
    let later: Vec<_> = updates[1..].iter().map(|u| u.cursor.clone()).collect();
    assert_eq!(replayed, later);
}

fn succeeded(update: &v1::DeliveryUpdate) -> bool {
    update
        .delivery
        .as_ref()
        .is_some_and(|d| d.status == v1::DeliveryStatus::Succeeded as i32)
}
