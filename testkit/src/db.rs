//! A fresh database per test on the server `WEBHOOKS_TEST_DATABASE_URL` names: tests never share
//! state, and a failing test leaves its database behind for inspection.

use std::collections::HashSet;
use std::time::Instant;

use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::service::note_if_slow;

/// The Postgres server the tests create their databases on (no database name).
pub fn server_url() -> String {
    std::env::var("WEBHOOKS_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A database of one test; it does not exist until something (usually the service's startup)
/// creates it.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// The database's name, for `pg_database` and `DROP DATABASE`.
    pub name: String,
    /// Its URL, for `--database-url`.
    pub url: String,
}

impl TestDatabase {
    /// A new, unique database name on the test server (not created).
    pub fn fresh() -> Self {
        let name = format!("webhooks_test_{}", Uuid::new_v4().simple());
        let url = format!("{}/{name}", server_url());
        Self { name, url }
    }

    /// A database the test chose itself (another server, a TLS URL, a shared name).
    pub fn at(url: &str, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
        }
    }

    /// Whether the database exists on the server.
    pub async fn exists(&self) -> bool {
        admin_connection()
            .await
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&self.name],
            )
            .await
            .expect("pg_database is readable")
            .is_some()
    }

    /// A direct connection to the database, for checks the API does not offer.
    pub async fn connect(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// The tables of the `public` schema.
    pub async fn tables(&self) -> HashSet<String> {
        self.connect()
            .await
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                &[],
            )
            .await
            .expect("information_schema is readable")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    }

    /// Drops the database, terminating its connections (the service's too). Called at the end
    /// of a passing test; a failure to drop is only noted.
    pub async fn drop_database(&self) {
        let quoted = format!("\"{}\"", self.name.replace('"', "\"\""));
        let began = Instant::now();
        if let Err(e) = admin_connection()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .await
        {
            eprintln!("note: could not drop test database {}: {e}", self.name);
        }
        note_if_slow(began, &format!("dropping database {}", self.name));
    }
}

/// A connection to the server's `postgres` database.
async fn admin_connection() -> tokio_postgres::Client {
    connect(&format!("{}/postgres", server_url())).await
}

/// A connection to `url`, driven in the background; panics saying how to get a server.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test PostgreSQL at {url}: {e} \
                 (run scripts/test.sh, or set WEBHOOKS_TEST_DATABASE_URL)"
            )
        });
    tokio::spawn(connection);
    client
}
