//! The `webhooks` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use webhooks::cli::{BinaryCli, BinaryCommand};
use webhooks::config::{Command, DatabaseConfig, LogFormat, ServeConfig};
use webhooks::startup::{Application, shutdown_signal};
use webhooks::store::Store;
use webhooks::{cli, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (ring; no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match BinaryCli::parse().command {
        BinaryCommand::Service(Command::Serve(config)) => exit_with(serve(config).await),
        BinaryCommand::Service(Command::Migrate(database)) => exit_with(migrate(database).await),
        BinaryCommand::Service(Command::Keys(keys)) => exit_with(cli::keys::run(keys).await),
        BinaryCommand::Service(Command::Reencrypt(config)) => {
            exit_with(cli::keys::reencrypt(config).await)
        }
        BinaryCommand::Hooks(args) => cli::hooks::run(args).await,
        BinaryCommand::Deliveries(args) => cli::deliveries::run(args).await,
        BinaryCommand::Events(args) => cli::events::run(args).await,
        BinaryCommand::Audit(args) => cli::audit::run(args).await,
        BinaryCommand::Listen(args) => cli::listen::run(args).await,
        BinaryCommand::Completions(args) => cli::shell::completions(&args),
        BinaryCommand::Man => cli::shell::man(),
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    telemetry::init(&config.log_level, config.log_format);
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await
}

async fn migrate(database: DatabaseConfig) -> anyhow::Result<()> {
    telemetry::init("info", LogFormat::Text);
    let store = Store::connect_with_ca(&database.database_url, database.database_ca.as_deref(), 1)?;
    webhooks::store::ensure_database_exists(store.connector()).await?;
    store.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Reports a service command's failure as `main` returning an `anyhow::Result` would.
fn exit_with(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {error:?}");
            ExitCode::FAILURE
        }
    }
}
