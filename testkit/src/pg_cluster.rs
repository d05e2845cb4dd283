//! A throwaway PostgreSQL cluster for one test (initdb, pg_ctl from Debian's
//! `/usr/lib/postgresql/*/bin`) on a free port of 127.0.0.1, with a certificate for `localhost`
//! signed by a throwaway CA: `hostssl` lines only (so plain connections are refused), or plain
//! only. Used by the API tests (tests/api/database_tls.rs) and the documentation tests, which run
//! operations.md's TLS examples against it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use webhooks::store::PgConnector;

/// Whether the cluster speaks TLS (and only TLS) or plain connections only.
#[derive(Clone, Copy, PartialEq)]
pub enum Transport {
    /// `ssl = on`, `hostssl` lines only.
    TlsOnly,
    /// `ssl = off`, `host` lines only.
    Plain,
}

/// A PostgreSQL cluster of one test, stopped (`pg_ctl stop -m immediate`) and deleted on drop,
/// panics included.
pub struct Cluster {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA that did not.
    pub other_ca: PathBuf,
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

/// `program` run as the `postgres` user when the test runs as root (initdb and postgres refuse
/// to run as root), as the current user otherwise.
fn as_cluster_owner(program: &Path) -> Command {
    if crate::os::running_as_root() {
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
    pub fn start(transport: Transport) -> Self {
        let bin = postgres_bin();
        let root = std::env::temp_dir().join(format!("webhooks-pg-tls-{}", uuid::Uuid::new_v4()));
        let data = root.join("data");
        let sockets = root.join("sockets");
        for dir in [&data, &sockets] {
            std::fs::create_dir_all(dir).expect("cluster directories");
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .expect("data directory private");
        if crate::os::running_as_root() {
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
        let port = crate::free_port();
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
    pub fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{}/{database}?{query}",
            self.port
        )
    }

    /// A fresh database name.
    pub fn fresh_database() -> String {
        format!("webhooks_tls_{}", uuid::Uuid::new_v4().simple())
    }

    /// `verify-full` by `localhost` with this cluster's CA: what a careful operator configures.
    pub fn verified_url(&self, database: &str) -> String {
        self.url(
            "localhost",
            database,
            &format!("sslmode=verify-full&sslrootcert={}", self.ca.display()),
        )
    }

    /// A verified connection to `database`, for checks the API does not offer.
    pub async fn client(&self, database: &str) -> tokio_postgres::Client {
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
