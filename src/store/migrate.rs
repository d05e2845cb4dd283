//! Schema migrations (plain SQL in `migrations/`, embedded at build time) and database creation.

use super::PgConnector;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies every migration not yet applied. Safe to run from several instances at once: refinery
/// records applied versions, and a concurrent runner fails on the version table rather than
/// applying twice; the caller retries.
pub async fn run_migrations(client: &mut tokio_postgres::Client) -> Result<(), anyhow::Error> {
    // Serialise concurrent starters on one database with an advisory lock.
    client
        .execute("SELECT pg_advisory_lock(7262022)", &[])
        .await?;
    let result = embedded::migrations::runner().run_async(client).await;
    client
        .execute("SELECT pg_advisory_unlock(7262022)", &[])
        .await?;
    result?;
    Ok(())
}

/// Creates the database named in `database_url` when it does not exist, connecting to the
/// server's `postgres` database (with the same TLS settings) to do so.
pub async fn ensure_database_exists(connector: &PgConnector) -> Result<(), anyhow::Error> {
    let Some(name) = connector.config().get_dbname().map(str::to_owned) else {
        return Ok(());
    };
    let admin = connector.with_config(|config| {
        config.dbname("postgres");
    });
    let (client, connection) = admin.connect().await?;
    let driver = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => tracing::info!(database = %name, "created database"),
            // Another instance created it first: 42P04 once its CREATE has committed, or a
            // unique violation on pg_database's name index while both are in flight.
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}
