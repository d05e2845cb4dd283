//! TLS to PostgreSQL against a real server speaking TLS: each test starts its own throwaway
//! cluster (initdb, pg_ctl) on a free port with a certificate for `localhost` signed by a
//! throwaway CA, and a pg_hba.conf of `hostssl` lines only, so a plain connection is refused.
//! The service, its LISTEN connection and the `webhooks keys` binary all connect through it; the
//! failure cases check the start-up error an operator would read.

use std::path::Path;
use std::process::Command;

use webhooks::proto::v1 as pb;
use webhooks::startup::Application;

use testkit::pg_cluster::{Cluster, Transport};
use testkit::{PATIENCE, Receiver, serve_config, spawn_app_on, wait_until, withdrawal_event};

/// The error of a service start that should fail, with its whole chain.
async fn start_error(database_url: &str, extra: &[&str]) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Application::build(serve_config(database_url, extra)).await {
        Ok(_) => panic!("the service started with {database_url}"),
        Err(error) => {
            let error = format!("{error:#}");
            eprintln!("start-up error, as expected: {error}");
            error
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The service over TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_service_delivers_and_keeps_history_over_verified_tls() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let database = Cluster::fresh_database();
    let app = spawn_app_on(&cluster.verified_url(&database), &database, &[]).await;
    let receiver = Receiver::start().await;
    let created = app
        .create_webhook(&receiver.url("/hook"), pb::Function::Withdrawal, &[1], true)
        .await;
    let published = app
        .publish(withdrawal_event(
            "tls-1",
            "WD-TLS-1",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    assert_eq!(published.delivery_ids.len(), 1);
    let received = receiver.wait_for(1, PATIENCE).await;
    assert_eq!(received.len(), 1, "the event reached the receiver");
    assert!(
        String::from_utf8_lossy(&received[0].body).contains("WD-TLS-1"),
        "the body carries the request"
    );
    let delivery = app
        .wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(delivery.webhook_id, created.webhook.expect("created").id);
    assert_eq!(delivery.attempts.len(), 1, "the attempt is in the history");

    // Every connection of the service is encrypted (the server allows no other), the LISTEN
    // connection included.
    let db = cluster.client(&database).await;
    let listeners: i64 = wait_until("the LISTEN connection over TLS", PATIENCE, || async {
        let row = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = $1 AND a.query LIKE 'LISTEN%' AND s.ssl",
                &[&database],
            )
            .await
            .expect("pg_stat_activity is readable");
        let count: i64 = row.get(0);
        (count > 0).then_some(count)
    })
    .await;
    assert_eq!(listeners, 1);
    let plain: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = $1 AND NOT s.ssl",
            &[&database],
        )
        .await
        .expect("pg_stat_ssl is readable")
        .get(0);
    assert_eq!(plain, 0, "no plain connection");
    app.stop().await;
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let database = Cluster::fresh_database();
    // By address: the certificate names only localhost, and no CA is given; require encrypts
    // all the same.
    let url = cluster.url("127.0.0.1", &database, "sslmode=require");
    let app = spawn_app_on(&url, &database, &[]).await;
    app.create_webhook(
        "http://127.0.0.1:9/hook",
        pb::Function::Withdrawal,
        &[1],
        true,
    )
    .await;
    app.stop().await;
    // prefer, the default, takes the TLS the server offers, unchecked likewise.
    let url = format!("postgres://postgres@127.0.0.1:{}/{database}", cluster.port);
    let app = spawn_app_on(&url, &database, &[]).await;
    app.stop().await;
}

#[tokio::test]
async fn a_given_ca_is_checked_but_not_the_name_below_verify_full() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let database = Cluster::fresh_database();
    // verify-ca by address: the chain verifies; the name (localhost only) is not checked.
    let url = cluster.url(
        "127.0.0.1",
        &database,
        &format!("sslmode=verify-ca&sslrootcert={}", cluster.ca.display()),
    );
    spawn_app_on(&url, &database, &[]).await.stop().await;
    // require with WEBHOOKS_DATABASE_CA behaves as verify-ca, as libpq with a root certificate.
    let url = cluster.url("127.0.0.1", &database, "sslmode=require");
    let ca = cluster.ca.display().to_string();
    spawn_app_on(&url, &database, &["--database-ca", &ca])
        .await
        .stop()
        .await;
    let other = cluster.other_ca.display().to_string();
    let error = start_error(&url, &["--database-ca", &other]).await;
    assert!(
        error.contains(&format!(
            "TLS to PostgreSQL at 127.0.0.1:{} failed: unknown issuer",
            cluster.port
        )),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// Start-up errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn verify_full_against_the_wrong_ca_is_a_clear_startup_error() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let url = cluster.url(
        "localhost",
        &Cluster::fresh_database(),
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            cluster.other_ca.display()
        ),
    );
    let error = start_error(&url, &[]).await;
    assert!(
        error.contains(&format!(
            "TLS to PostgreSQL at localhost:{} failed: unknown issuer",
            cluster.port
        )),
        "{error}"
    );
    // The same through WEBHOOKS_DATABASE_CA, and with the Mozilla roots (no CA given).
    let url = cluster.url(
        "localhost",
        &Cluster::fresh_database(),
        "sslmode=verify-full",
    );
    let other = cluster.other_ca.display().to_string();
    for extra in [&["--database-ca", other.as_str()][..], &[]] {
        let error = start_error(&url, extra).await;
        assert!(error.contains("failed: unknown issuer"), "{error}");
    }
}

#[tokio::test]
async fn verify_full_by_a_name_the_certificate_lacks_is_a_clear_startup_error() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let url = cluster.url(
        "127.0.0.1",
        &Cluster::fresh_database(),
        &format!("sslmode=verify-full&sslrootcert={}", cluster.ca.display()),
    );
    let error = start_error(&url, &[]).await;
    assert!(
        error.contains(&format!(
            "TLS to PostgreSQL at 127.0.0.1:{} failed: certificate not valid for name \"127.0.0.1\"",
            cluster.port
        )),
        "{error}"
    );
    assert!(
        error.contains("localhost"),
        "says which name it has: {error}"
    );
}

#[tokio::test]
async fn disable_is_refused_by_a_server_that_accepts_only_tls() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let database = Cluster::fresh_database();
    let url = cluster.url("localhost", &database, "sslmode=disable");
    let error = start_error(&url, &[]).await;
    assert!(
        error.contains("no pg_hba.conf entry") && error.contains("no encryption"),
        "{error}"
    );
    // The refusal is the server's, for want of TLS: the same server takes `require`.
    let url = cluster.url("localhost", &database, "sslmode=require");
    spawn_app_on(&url, &database, &[]).await.stop().await;
}

#[tokio::test]
async fn prefer_falls_back_to_plain_and_require_refuses_a_server_without_tls() {
    let cluster = Cluster::start(Transport::Plain);
    let database = Cluster::fresh_database();
    let url = cluster.url("127.0.0.1", &database, "sslmode=prefer");
    spawn_app_on(&url, &database, &[]).await.stop().await;
    let url = cluster.url("127.0.0.1", &database, "sslmode=verify-full");
    let error = start_error(&url, &[]).await;
    assert!(error.contains("server does not support TLS"), "{error}");
}

#[tokio::test]
async fn a_database_url_that_does_not_parse_is_a_configuration_error() {
    for url in [
        "postgres://postgres@127.0.0.1:notaport/webhooks",
        "postgres://postgres@127.0.0.1/webhooks?sslmode=sometimes",
    ] {
        let error = start_error(url, &[]).await;
        assert!(error.contains("DATABASE_URL is not valid"), "{error}");
        assert!(!error.contains("unavailable"), "{error}");
    }
    // The binary says so and exits non-zero.
    let output = Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .args(["migrate", "--database-url", "postgres://h:notaport/db"])
        .env_remove("WEBHOOKS_DATABASE_CA")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("DATABASE_URL is not valid"), "{stderr}");
    assert!(!stderr.contains("unavailable"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

/// Runs `webhooks keys ...` against `database_url` with `WEBHOOKS_DATABASE_CA=ca`.
fn keys(database_url: &str, ca: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_webhooks"))
        .arg("keys")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("WEBHOOKS_DATABASE_CA", ca)
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn the_keys_command_works_over_verified_tls() {
    let cluster = Cluster::start(Transport::TlsOnly);
    let database = Cluster::fresh_database();
    let url = cluster.url("localhost", &database, "sslmode=verify-full");
    let created = keys(
        &url,
        &cluster.ca,
        &["create", "--name", "ops", "--role", "admin"],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = keys(&url, &cluster.ca, &["list"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && stdout.contains("ops"),
        "{stdout}"
    );
    let db = cluster.client(&database).await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM api_keys", &[])
        .await
        .expect("api_keys is readable")
        .get(0);
    assert_eq!(count, 1);

    let refused = keys(&url, &cluster.other_ca, &["list"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "TLS to PostgreSQL at localhost:{} failed: unknown issuer",
            cluster.port
        )),
        "{stderr}"
    );
}
