//! The `webhooks` binary: parses the command line and hands over to the library.

use clap::Parser;
use webhooks::config::{Cli, Command, LogFormat};
use webhooks::startup::{Application, shutdown_signal};
use webhooks::store::Store;
use webhooks::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // One TLS crypto provider for the whole process (ring; no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Serve(config) => {
            telemetry::init(&config.log_level, config.log_format);
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate(database) => {
            telemetry::init("info", LogFormat::Text);
            let store = Store::connect(&database.database_url, 1)?;
            webhooks::store::ensure_database_exists(store.pg_config()).await?;
            store.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
