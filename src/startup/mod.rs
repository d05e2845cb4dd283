//! Wiring: database, gRPC server (API, reflection, health), the web console's listener and
//! delivery workers. Tests build an [`Application`] on port 0 against a fresh database, exactly
//! as `webhooks serve` does.
//!
//! [`Application::build`] checks the settings (`checks.rs`), opens the store and binds the
//! listeners; [`Application::run_until`] starts the background tasks (`tasks.rs`) and serves the
//! routes on both ports (`servers.rs`) until shutdown, then drains.

mod checks;
mod servers;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::auth::Authenticator;
use crate::config::ServeConfig;
use crate::connections::ConnectionGuard;
use crate::console::ConsoleListener;
use crate::delivery::DestinationGuard;
use crate::delivery::guard::{Lookup, SystemLookup};
use crate::domain::PageTokenKeys;
use crate::metrics::Readiness;
use crate::shutdown::ShutdownSender;
use crate::store::{Store, Vault, ensure_database_exists};
use crate::stream::UpdateHub;

/// What the page-token key is derived from the encryption key with, so it is never the
/// encryption key itself (and a future derived key gets another label).
const PAGE_TOKEN_KEY_LABEL: &[u8] = b"backoffice-webhooks/page-token-key/v1";

/// A built service, listening, not yet serving.
pub struct Application {
    local_addr: SocketAddr,
    listener: TcpListener,
    /// The web console's listener, when `WEBHOOKS_CONSOLE_ADDR` is set.
    console: Option<ConsoleListener>,
    /// The metrics and health probes' listener, when `WEBHOOKS_METRICS_ADDR` is set.
    metrics: Option<TcpListener>,
    store: Store,
    hub: Arc<UpdateHub>,
    auth: Arc<Authenticator>,
    /// The TLS settings of both ports, read at build so that a bad file fails the start.
    tls: Option<tonic::transport::ServerTlsConfig>,
    /// The SSRF guard, built once so the admin API and the workers resolve names alike.
    destinations: DestinationGuard,
    /// The internal webhook operational webhooks go to (WEBHOOKS_OPERATIONAL_WEBHOOK_URL).
    operational: Option<crate::domain::WebhookId>,
    /// Authenticates page tokens; the same on every instance of the deployment.
    page_tokens: Arc<PageTokenKeys>,
    config: ServeConfig,
}

impl Application {
    /// Creates and migrates the database, then binds the gRPC address.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        Self::build_resolving_with(config, Arc::new(SystemLookup)).await
    }

    /// Like [`Application::build`], resolving destination names with `lookup` instead of the
    /// system resolver, both when webhooks are configured and when deliveries connect: tests
    /// use it to make a name resolve to any address without a DNS server.
    pub async fn build_resolving_with(
        config: ServeConfig,
        lookup: Arc<dyn Lookup>,
    ) -> anyhow::Result<Self> {
        let destinations = config.destination_guard_resolving_with(lookup);
        let tokens = checks::configured_tokens(&config);
        config
            .connection_settings()
            .validate()
            .map_err(anyhow::Error::msg)?;
        let auth_enabled = config.require_auth || !tokens.is_empty();
        let vault = Vault::from_keys(
            config.encryption_key.as_deref(),
            &config.encryption_key_previous,
        )
        .map_err(anyhow::Error::msg)?;
        checks::refuse_unsafe_exposure(&config, auth_enabled, vault.encrypts())?;
        let tls = checks::tls_config(&config)?;
        checks::warn_unprotected(&config, auth_enabled, vault.encrypts());
        let operational = checks::operational_webhook(&config)?;
        let (store, page_tokens) = open_store(&config, vault).await?;
        let operational = match operational {
            Some((url, secret)) => Some(
                store
                    .ensure_operational_webhook(&url, &secret)
                    .await
                    .context("could not set up the operational webhook")?,
            ),
            None => {
                store
                    .retire_operational_webhook()
                    .await
                    .context("could not retire the operational webhook")?;
                None
            }
        };
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("could not listen on {}", config.grpc_addr))?;
        let local_addr = listener.local_addr()?;
        let console = match config.console_addr {
            Some(addr) => Some(ConsoleListener::bind(addr).await?),
            None => None,
        };
        let metrics = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("could not listen on {addr} for metrics"))?,
            ),
            None => None,
        };
        let hub = UpdateHub::new(
            store.clone(),
            config.update_log_retention,
            crate::api::watch::update_encoder(),
        );
        let auth = Arc::new(Authenticator::new(
            auth_enabled,
            &tokens,
            store.clone(),
            std::num::NonZeroU32::new(config.ingest_rate_limit),
        ));
        Ok(Self {
            local_addr,
            listener,
            console,
            metrics,
            store,
            hub,
            auth,
            tls,
            destinations,
            page_tokens,
            operational,
            config,
        })
    }

    /// The address the gRPC API listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the web console listens on (useful with port 0); `None` when
    /// `WEBHOOKS_CONSOLE_ADDR` is unset.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().map(ConsoleListener::local_addr)
    }

    /// The address of the metrics and health probes (useful with port 0); `None` when
    /// `WEBHOOKS_METRICS_ADDR` is unset.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The live delivery log of this instance (its gauge of open watchers, for example).
    pub fn update_hub(&self) -> Arc<UpdateHub> {
        self.hub.clone()
    }

    /// Serves until `shutdown` resolves, then stops taking work and lets attempts in flight be
    /// recorded.
    pub async fn run_until(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = Arc::new(ShutdownSender::new());
        let (readiness_tx, readiness) = watch::channel(Readiness::Starting);
        let mut background = tokio::task::JoinSet::new();
        let metrics = self.metrics.take();
        let worker = tasks::spawn(&mut background, &self, metrics, readiness, &stop)?;
        let health_service = tasks::start_health(
            &mut background,
            readiness_tx,
            self.store.clone(),
            worker.as_ref().map(|w| w.heartbeat.clone()),
            self.config.poll_interval,
            stop.subscribe(),
        )
        .await;
        let routes = servers::routes(&self, health_service, worker.map(|w| w.dispatcher))?;
        // One budget of connections for both listeners: what runs out is the process's file
        // descriptors, whichever port takes them.
        let connections = ConnectionGuard::new(self.config.connection_settings());
        let tls = self.tls.take().map(|tls| connections.tls(tls));
        if self.config.tls_client_ca.is_some() {
            tracing::info!("mutual TLS: both ports require a client certificate");
        }

        tracing::info!(addr = %self.local_addr, workers = !self.config.disable_workers, "webhooks service listening");
        let console = self.console.take().map(|console| {
            servers::serve_console(
                console,
                routes.clone(),
                self.auth.clone(),
                tls.clone(),
                connections.clone(),
                stop.subscribe(),
            )
        });
        let stop_signal = stop.clone();
        let served = servers::serve_grpc(
            self.listener,
            routes,
            self.auth.clone(),
            tls,
            &connections,
            async move {
                shutdown.await;
                tracing::info!(
                    "shutting down: no new claims, in-flight attempts finish, streams end"
                );
                // Workers stop claiming and finish what they hold; watchers end their streams
                // with UNAVAILABLE (clients resume with their cursor elsewhere), so the server's
                // drain does not wait on them.
                stop_signal.send();
            },
        )
        .await;

        stop.send();
        let console_served = match console {
            Some(task) => task.await.context("the web console server panicked")?,
            None => Ok(()),
        };
        while background.join_next().await.is_some() {}
        tracing::info!("webhooks service stopped");
        served?;
        console_served
    }
}

/// The store, created and migrated, with the vault and the page-token keys: derived from the
/// encryption key, or without one kept in the database (read once migrations made its table).
async fn open_store(
    config: &ServeConfig,
    vault: Vault,
) -> anyhow::Result<(Store, Arc<PageTokenKeys>)> {
    // Derived before the vault moves into the store.
    let page_token_keys = vault.derived_keys(PAGE_TOKEN_KEY_LABEL);
    let store = Store::connect_with_ca(
        &config.database.database_url,
        config.database.database_ca.as_deref(),
        config.database.db_pool_size,
    )?
    .with_vault(vault);
    ensure_database_exists(store.connector())
        .await
        .context("could not reach PostgreSQL to create the database (is DATABASE_URL right and the server up?)")?;
    store
        .migrate()
        .await
        .context("applying database migrations failed")?;
    let page_tokens = Arc::new(match page_token_keys {
        Some((current, previous)) => PageTokenKeys::new(current, previous),
        None => PageTokenKeys::new(
            store
                .page_token_key()
                .await
                .context("reading the page-token key from the database failed")?,
            [],
        ),
    });
    Ok((store, page_tokens))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
