//! Mutual TLS (`WEBHOOKS_TLS_CLIENT_CA`): with real certificates from throwaway CAs, both the
//! gRPC port and the web console refuse, in the TLS handshake, clients without a certificate or
//! with one from another CA; a client with a good certificate still needs its bearer token.

use std::net::SocketAddr;

use clap::Parser;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use webhooks::config::Cli;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use testkit::pki::{CertFiles, Pki};
use testkit::{fresh_database_url, serve_config, with_token};

const ADMIN: &str = "mtls-admin-token-0123456789";

/// The service on a fresh database with `extra` flags, over TLS; returns the gRPC and console
/// addresses and the sender that stops it.
async fn start(extra: &[&str]) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (database_url, _) = fresh_database_url();
    let mut flags = vec!["--console-addr", "127.0.0.1:0", "--admin-token", ADMIN];
    flags.extend_from_slice(extra);
    let app = webhooks::startup::Application::build(serve_config(&database_url, &flags))
        .await
        .expect("the service starts");
    let grpc = app.local_addr();
    let console = app.console_addr().expect("the console listens");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (grpc, console, stop)
}

/// An error and its sources, so a TLS alert buried under tonic's and hyper's errors shows.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// ListWebhooks over TLS to `addr`, trusting `server_ca`, presenting `client` (if any) and
/// `token` (if any). The error, as text, when the connection or the call fails.
async fn list(
    addr: SocketAddr,
    server_ca: &Pki,
    client: Option<&CertFiles>,
    token: Option<&str>,
) -> Result<(), (Option<Code>, String)> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&server_ca.ca_pem))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert_pem, &client.key_pem));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("a valid endpoint")
        .tls_config(tls)
        .expect("a TLS client")
        .connect()
        .await
        .map_err(|e| (None, chain(&e)))?;
    WebhookAdminClient::new(channel)
        .list_webhooks(with_token(pb::ListWebhooksRequest::default(), token))
        .await
        .map(drop)
        .map_err(|status| (Some(status.code()), chain(&status)))
}

#[tokio::test]
async fn with_a_client_ca_both_ports_require_a_certificate_it_signed_and_still_a_token() {
    let pki = Pki::new("mtls");
    let stranger = Pki::new("stranger");
    let server = pki.server();
    let client = pki.client("back-office");
    let foreign = stranger.client("back-office");
    let (grpc, console, stop) = start(&[
        "--tls-cert",
        server.cert_arg(),
        "--tls-key",
        server.key_arg(),
        "--tls-client-ca",
        pki.ca_arg(),
    ])
    .await;

    for (port, addr) in [("gRPC port", grpc), ("console", console)] {
        // rustls' client finishes its side of a TLS 1.3 handshake before the server has looked
        // at its certificate, so the refusal (the server's alert) may surface on the call.
        let (_, error) = list(addr, &pki, None, Some(ADMIN))
            .await
            .expect_err("no client certificate is refused");
        assert!(
            error.contains("CertificateRequired"),
            "{port}: a client without a certificate is refused in the handshake: {error}"
        );
        let (_, error) = list(addr, &pki, Some(&foreign), Some(ADMIN))
            .await
            .expect_err("a certificate from another CA is refused");
        assert!(
            error.contains("UnknownCA") || error.contains("BadCertificate"),
            "{port}: a certificate from another CA is refused in the handshake: {error}"
        );

        list(addr, &pki, Some(&client), Some(ADMIN))
            .await
            .unwrap_or_else(|e| panic!("{port}: a good certificate and token are served: {e:?}"));
        // The certificate is a gate, not a role: without a token the call is still refused.
        let (code, error) = list(addr, &pki, Some(&client), None)
            .await
            .expect_err("a good certificate without a token is refused");
        assert_eq!(code, Some(Code::Unauthenticated), "{port}: {error}");
    }
    let _ = stop.send(());
}

#[tokio::test]
async fn without_a_client_ca_tls_clients_need_no_certificate() {
    // The control for the test above: the same client, without a certificate, is served when
    // WEBHOOKS_TLS_CLIENT_CA is unset.
    let pki = Pki::new("plain-tls");
    let server = pki.server();
    let (grpc, console, stop) = start(&[
        "--tls-cert",
        server.cert_arg(),
        "--tls-key",
        server.key_arg(),
    ])
    .await;
    for addr in [grpc, console] {
        list(addr, &pki, None, Some(ADMIN))
            .await
            .expect("served without a client certificate");
    }
    let _ = stop.send(());
}

#[tokio::test]
async fn a_client_ca_without_a_server_certificate_is_a_start_up_error() {
    let pki = Pki::new("no-server-cert");
    let (database_url, _) = fresh_database_url();
    // On the command line (or in the environment), clap refuses it…
    let parsed = Cli::try_parse_from([
        "webhooks",
        "serve",
        "--database-url",
        database_url.as_str(),
        "--tls-client-ca",
        pki.ca_arg(),
    ]);
    let error = parsed
        .expect_err("--tls-client-ca needs --tls-cert")
        .to_string();
    assert!(error.contains("--tls-cert"), "{error}");

    // …and a configuration built otherwise is refused by the service itself.
    let mut config = serve_config(&database_url, &[]);
    config.tls_client_ca = Some(pki.ca.clone());
    let error = match webhooks::startup::Application::build(config).await {
        Ok(_) => panic!("a client CA without TLS must not start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("WEBHOOKS_TLS_CLIENT_CA") && error.contains("WEBHOOKS_TLS_CERT"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_ca_file_without_a_certificate_is_a_start_up_error() {
    let pki = Pki::new("bad-client-ca");
    let server = pki.server();
    // A key where the CA should be: PEM, but no certificate in it.
    let (database_url, _) = fresh_database_url();
    let config = serve_config(
        &database_url,
        &[
            "--tls-cert",
            server.cert_arg(),
            "--tls-key",
            server.key_arg(),
            "--tls-client-ca",
            server.key_arg(),
        ],
    );
    let error = match webhooks::startup::Application::build(config).await {
        Ok(_) => panic!("a client CA file without a certificate must not start"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("WEBHOOKS_TLS_CLIENT_CA") && error.contains("no certificate"),
        "{error}"
    );
    assert!(
        !error.contains("PRIVATE KEY"),
        "the file's content stays out of the error: {error}"
    );
}
