//! TLS to PostgreSQL against a real server speaking TLS: each test starts its own throwaway
//! cluster (initdb, pg_ctl) on a free port with a certificate for `localhost` signed by a
//! throwaway CA, and a pg_hba.conf of `hostssl` lines only, so a plain connection is refused.
//! The service, its LISTEN connection and the `webhooks keys` binary all connect through it; the
//! failure cases check the start-up error an operator would read.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use webhooks::proto::v1 as pb;
use webhooks::startup::Application;
use webhooks::store::PgConnector;

use crate::helpers::{
    PATIENCE, Receiver, serve_config, spawn_app_on, wait_until, withdrawal_event,
};

// ---------------------------------------------------------------------------------------------
// A throwaway PostgreSQL cluster
// ---------------------------------------------------------------------------------------------

/// Whether the cluster speaks TLS (and only TLS) or plain connections only.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    /// `ssl = on`, `hostssl` lines only.
    TlsOnly,
    /// `ssl = off`, `host` lines only.
    Plain,
}

/// A PostgreSQL cluster of one test, stopped (`pg_ctl stop -m immediate`) and deleted on drop,
/// panics included.
struct Cluster {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that did not.
    other_ca: PathBuf,
}

/// The newest Debian PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`).
fn postgres_bin() -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries are installed under /usr/lib/postgresql");
    versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` run as the `postgres` user when the test runs as root (initdb and postgres refuse
/// to run as root), as the current user otherwise.
fn as_cluster_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A CA (its certificate written to `path`) to sign server certificates with.
fn make_ca(path: &Path, name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key"))
        .expect("a CA certificate");
    std::fs::write(path, ca.pem()).expect("CA written");
    ca
}

impl Cluster {
    /// Creates and starts a cluster on a free port of 127.0.0.1.
    fn start(transport: Transport) -> Self {
        let bin = postgres_bin();
        let root = std::env::temp_dir().join(format!("webhooks-pg-tls-{}", uuid::Uuid::new_v4()));
        let data = root.join("data");
        let sockets = root.join("sockets");
        for dir in [&data, &sockets] {
            std::fs::create_dir_all(dir).expect("cluster directories");
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .expect("data directory private");
        if running_as_root() {
            let mut chown = Command::new("chown");
            chown
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .arg(&sockets);
            run(chown, "chown the cluster to postgres");
        }
        let ca = root.join("ca.pem");
        let other_ca = root.join("other-ca.pem");
        let issuer = make_ca(&ca, "webhooks test CA");
        make_ca(&other_ca, "some other CA");
        let port = free_port();
        let cluster = Self {
            root,
            data,
            bin,
            port,
            ca,
            other_ca,
        };

        let mut initdb = as_cluster_owner(&cluster.bin.join("initdb"));
        initdb.arg("-D").arg(&cluster.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb, "initdb");

        // The server's certificate names `localhost` only, so 127.0.0.1 is a wrong name.
        let server_key = KeyPair::generate().expect("a server key");
        let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&server_key, &issuer)
            .expect("a server certificate");
        let owner = std::fs::metadata(&cluster.data).expect("data directory");
        for (name, contents) in [
            ("server.crt", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
        ] {
            let path = cluster.data.join(name);
            std::fs::write(&path, contents).expect("certificate written");
            std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                .expect("certificate owned by the cluster's owner");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("key private");
        }
        let (ssl, hba) = match transport {
            Transport::TlsOnly => (
                "on",
                "hostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            ),
            Transport::Plain => (
                "off",
                "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n",
            ),
        };
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n\
             ssl = {ssl}\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n",
            sockets = sockets.display(),
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("postgresql.conf written");
        std::fs::write(cluster.data.join("pg_hba.conf"), hba).expect("pg_hba.conf written");

        let mut pg_ctl = as_cluster_owner(&cluster.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(cluster.data.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(pg_ctl, "pg_ctl start");
        cluster
    }

    /// A URL of database `database` on this cluster by `host`, with `query` (e.g. `sslmode=...`).
    fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{query}",
            self.port
        )
    }

    /// A fresh database name.
    fn fresh_database() -> String {
        format!("webhooks_tls_{}", uuid::Uuid::new_v4().simple())
    }

    /// `verify-full` by `localhost` with this cluster's CA: what a careful operator configures.
    fn verified_url(&self, database: &str) -> String {
        self.url(
            "localhost",
            database,
            &format!("sslmode=verify-full&sslrootcert={}", self.ca.display()),
        )
    }

    /// A verified connection to `database`, for checks the API does not offer.
    async fn client(&self, database: &str) -> tokio_postgres::Client {
        let connector =
            PgConnector::new(&self.verified_url(database), None).expect("a valid test URL");
        let (client, connection) = connector.connect().await.expect("connects over TLS");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut pg_ctl = as_cluster_owner(&self.bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        match pg_ctl.output() {
            Ok(output) if output.status.success() => {
                let _ = std::fs::remove_dir_all(&self.root);
            }
            // Left in place for inspection (its server.log says why).
            Ok(output) => eprintln!(
                "note: could not stop the test cluster in {}: {}",
                self.data.display(),
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(e) => eprintln!("note: could not run pg_ctl stop: {e}"),
        }
    }
}

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
