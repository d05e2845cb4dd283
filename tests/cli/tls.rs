//! The CLI over TLS and with a token file: the real binary against the real service started
//! with certificates from throwaway CAs (rcgen) for 127.0.0.1 and localhost.

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::support::{TestApp, spawn_app, spawn_tls_app};
use testkit::new_secret;
use testkit::pki::{CertFiles, Pki};

const ADMIN: &str = "cli-tls-admin-token-0123456789";

/// The test's own client settings for a service whose certificate `pki` signed.
fn trusting(pki: &Pki) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost")
}

/// A service with TLS (its certificate signed by `pki`) and `extra` flags.
async fn tls_app(server: &CertFiles, extra: &[&str], tls: ClientTlsConfig) -> TestApp {
    let mut flags = vec![
        "--tls-cert",
        server.cert_arg(),
        "--tls-key",
        server.key_arg(),
    ];
    flags.extend_from_slice(extra);
    let app = spawn_tls_app(&flags, tls).await;
    assert!(
        app.server.starts_with("https://127.0.0.1:"),
        "{}",
        app.server
    );
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_list_works_over_tls_with_the_private_ca_and_fails_clearly_without_it() {
    let pki = Pki::new("cli-server");
    let server = pki.server();
    let app = tls_app(&server, &[], trusting(&pki)).await;
    let hook = app
        .create_withdrawal_webhook("Over TLS", "http://127.0.0.1:9/hooks", &new_secret())
        .await;

    app.cli(&["hooks", "list", "--ca-cert", pki.ca_arg()])
        .await
        .ok()
        .stdout_has("Over TLS");
    // The same from the environment.
    app.cli_with_env(
        &["hooks", "list", "--output", "json"],
        &[("WEBHOOKS_CA_CERT", pki.ca_arg())],
    )
    .await
    .ok()
    .stdout_has(&hook.id);

    // Without --ca-cert only the public web roots are trusted: the private CA is unknown.
    app.cli(&["hooks", "list"])
        .await
        .exits(1)
        .stderr_has("UnknownIssuer")
        .stderr_has("--ca-cert");
    // Another CA is no better than none.
    let stranger = Pki::new("cli-stranger");
    app.cli(&["hooks", "list", "--ca-cert", stranger.ca_arg()])
        .await
        .exits(1)
        .stderr_has("UnknownIssuer");
    // A file that is not a CA certificate is named, and its content (a key) is not printed.
    app.cli(&["hooks", "list", "--ca-cert", server.key_arg()])
        .await
        .exits(2)
        .stderr_has(&format!("--ca-cert {}", server.key_arg()))
        .stderr_has("no certificate");
    app.cli(&["hooks", "list", "--ca-cert", "/nonexistent/ca.pem"])
        .await
        .exits(2)
        .stderr_has("--ca-cert /nonexistent/ca.pem: cannot read it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_to_a_service_that_requires_them() {
    let pki = Pki::new("cli-mtls");
    let server = pki.server();
    let client = pki.client("operator");
    let stranger = Pki::new("cli-mtls-stranger");
    let foreign = stranger.client("operator");
    let app = tls_app(
        &server,
        &["--tls-client-ca", pki.ca_arg(), "--admin-token", ADMIN],
        trusting(&pki).identity(Identity::from_pem(&client.cert_pem, &client.key_pem)),
    )
    .await;
    let with_cert = |cert: &CertFiles| {
        vec![
            "--client-cert".to_owned(),
            cert.cert_arg().to_owned(),
            "--client-key".to_owned(),
            cert.key_arg().to_owned(),
        ]
    };
    let args = |extra: &[String]| {
        let mut all: Vec<String> = ["hooks", "list", "--ca-cert", pki.ca_arg(), "--token", ADMIN]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        all.extend_from_slice(extra);
        all
    };
    let run = |args: Vec<String>| {
        let app = &app;
        async move {
            let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
            app.cli(&borrowed).await
        }
    };

    run(args(&with_cert(&client))).await.ok();
    app.cli_with_env(
        &["hooks", "list", "--token", ADMIN],
        &[
            ("WEBHOOKS_CA_CERT", pki.ca_arg()),
            ("WEBHOOKS_CLIENT_CERT", client.cert_arg()),
            ("WEBHOOKS_CLIENT_KEY", client.key_arg()),
        ],
    )
    .await
    .ok();

    // Without a certificate, or with one from another CA: refused, as not allowed (4).
    run(args(&[]))
        .await
        .exits(4)
        .stderr_has("requires a client certificate")
        .stderr_has("--client-cert");
    run(args(&with_cert(&foreign)))
        .await
        .exits(4)
        .stderr_has("refused the client certificate");
    // A good certificate is not a role: the token is still needed.
    let mut no_token: Vec<String> = ["hooks", "list", "--ca-cert", pki.ca_arg()]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    no_token.extend(with_cert(&client));
    run(no_token).await.exits(4).stderr_has("[UNAUTHENTICATED]");
    // A certificate without its key is a usage error.
    let mut half = args(&[]);
    half.extend(["--client-cert".to_owned(), client.cert_arg().to_owned()]);
    run(half).await.exits(2).stderr_has("--client-key");
    // A certificate given as the key: named, and not printed.
    let mut swapped = args(&[]);
    swapped.extend([
        "--client-cert".to_owned(),
        client.cert_arg().to_owned(),
        "--client-key".to_owned(),
        client.cert_arg().to_owned(),
    ]);
    let refused = run(swapped).await;
    refused
        .exits(2)
        .stderr_has(&format!("--client-key {}", client.cert_arg()));
    assert!(!refused.stderr.contains("MII"), "{refused:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_flags_with_a_plain_http_server_are_refused() {
    let pki = Pki::new("cli-plain");
    let app = spawn_app(&[]).await;
    assert!(app.server.starts_with("http://"), "{}", app.server);
    app.cli(&["hooks", "list", "--ca-cert", pki.ca_arg()])
        .await
        .exits(2)
        .stderr_has("--ca-cert given")
        .stderr_has("plain http://")
        .stderr_has("https://");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_come_from_a_file() {
    let app = spawn_app(&["--admin-token", ADMIN]).await;
    let dir = std::env::temp_dir().join(format!("webhooks-token-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = |name: &str| dir.join(name).to_str().expect("a UTF-8 path").to_owned();
    let good = path("admin.token");
    std::fs::write(&good, format!("{ADMIN}\n")).expect("token written");
    let wrong_token = "wrong-token-from-a-file-0123456789";
    let wrong = path("wrong.token");
    std::fs::write(&wrong, wrong_token).expect("token written");
    let empty = path("empty.token");
    std::fs::write(&empty, "\n").expect("file written");
    let binary = path("binary.token");
    std::fs::write(&binary, [0xff_u8, 0xfe, 0x00, 0x41]).expect("file written");

    // The trailing newline is not part of the token.
    app.cli(&["hooks", "list", "--token-file", &good])
        .await
        .ok();
    app.cli_with_env(
        &["hooks", "list"],
        &[("WEBHOOKS_TOKEN_FILE", good.as_str())],
    )
    .await
    .ok();

    let refused = app.cli(&["hooks", "list", "--token-file", &wrong]).await;
    refused.exits(4).stderr_has("[UNAUTHENTICATED]");
    assert!(!refused.stderr.contains(wrong_token), "{refused:#?}");

    for (file, why) in [
        (empty.clone(), "empty"),
        (binary.clone(), "not text"),
        (path("missing.token"), "cannot read it"),
    ] {
        app.cli(&["hooks", "list", "--token-file", &file])
            .await
            .exits(2)
            .stderr_has(&format!("--token-file {file}: "))
            .stderr_has(why);
    }

    // One way only: the flags together, or a flag with the other's variable.
    let both = app
        .cli(&["hooks", "list", "--token", ADMIN, "--token-file", &good])
        .await;
    both.exits(2).stderr_has("--token and --token-file");
    assert!(!both.stderr.contains(ADMIN), "{both:#?}");
    app.cli_with_env(
        &["hooks", "list", "--token-file", &good],
        &[("WEBHOOKS_TOKEN", ADMIN)],
    )
    .await
    .exits(2)
    .stderr_has("WEBHOOKS_TOKEN");
    let _ = std::fs::remove_dir_all(dir);
}
