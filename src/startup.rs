//! Wiring: database, gRPC server (API, reflection, health), the web console's listener and
//! delivery workers. Tests build an [`Application`] on port 0 against a fresh database, exactly
//! as `webhooks serve` does.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::auth::{AuthLayer, Authenticator, ConfiguredTokens};
use crate::api::{AdminService, IngestService};
use crate::config::ServeConfig;
use crate::connections::ConnectionGuard;
use crate::console::ConsoleListener;
use crate::delivery::guard::{Lookup, SystemLookup};
use crate::delivery::{DestinationGuard, HttpSender, Worker, WorkerSettings};
use crate::domain::PageTokenKeys;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::v1::event_ingest_server::EventIngestServer;
use crate::proto::v1::webhook_admin_server::WebhookAdminServer;
use crate::shutdown::{Shutdown, ShutdownSender};
use crate::store::{
    DELIVERIES_CHANNEL, Store, Subscriptions, UPDATES_CHANNEL, Vault, ensure_database_exists,
};
use crate::stream::UpdateHub;

/// What the page-token key is derived from the encryption key with, so it is never the
/// encryption key itself (and a future derived key gets another label).
const PAGE_TOKEN_KEY_LABEL: &[u8] = b"backoffice-webhooks/page-token-key/v1";

/// Largest gRPC message accepted (a full PublishEvents batch fits comfortably).
const MAX_GRPC_MESSAGE: usize = 8 * 1024 * 1024;

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
        let tokens = configured_tokens(&config);
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
        // The console serves the same API: the same rules hold for its address.
        for addr in std::iter::once(config.grpc_addr).chain(config.console_addr) {
            refuse_exposed_unprotected(addr, auth_enabled, vault.encrypts())?;
        }
        let tls = tls_config(&config)?;
        if !auth_enabled {
            tracing::warn!(
                "no token configured: the API is open to anyone who can reach {}",
                config.grpc_addr
            );
        }
        if !vault.encrypts() {
            tracing::warn!(
                "WEBHOOKS_ENCRYPTION_KEY is not set: webhook secrets are stored in plaintext"
            );
        }
        // Derived before the vault moves into the store; without an encryption key, the key is
        // kept in the database instead (read once migrations have made its table).
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
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = Arc::new(ShutdownSender::new());
        let stop_signal = stop.clone();

        let mut background = tokio::task::JoinSet::new();
        let wakeups = self.store.wakeups().clone();
        let mut subscriptions =
            Subscriptions::new(&wakeups).with(UPDATES_CHANNEL, wakeups.updates.clone());
        background.spawn(self.hub.clone().run(stop.subscribe()));
        background.spawn(purge_old_history(
            self.store.clone(),
            self.config.retention,
            stop.subscribe(),
        ));
        background.spawn(keep_statistics_fresh(self.store.clone(), stop.subscribe()));
        let (readiness_tx, readiness) = watch::channel(crate::metrics::Readiness::Starting);
        if let Some(metrics) = self.metrics {
            let handle =
                crate::metrics::recorder().context("could not start the metrics endpoint")?;
            background.spawn(crate::metrics::serve(
                metrics,
                handle.clone(),
                readiness,
                stop.subscribe(),
            ));
            background.spawn(crate::metrics::sample(
                self.store.clone(),
                self.hub.clone(),
                handle,
                stop.subscribe(),
            ));
        }
        let mut heartbeat = None;
        if !self.config.disable_workers {
            subscriptions = subscriptions.with(DELIVERIES_CHANNEL, wakeups.deliveries.clone());
            let worker = Worker::new(
                self.store
                    .for_delivery_results(self.config.database.db_pool_size)
                    .context("could not set up the delivery worker's database pool")?,
                HttpSender::new(
                    self.config.request_timeout,
                    self.config.connect_timeout,
                    self.destinations.clone(),
                ),
                WorkerSettings {
                    concurrency: self.config.worker_concurrency,
                    lease: self.config.lease(),
                    poll_interval: self.config.poll_interval,
                    retry_schedule: self.config.retry_schedule.clone(),
                    policy: self.config.delivery_policy(),
                },
            );
            heartbeat = Some(worker.heartbeat());
            background.spawn(worker.run(stop.subscribe()));
        }
        background.spawn(crate::store::notify::listen(
            self.store.connector().clone(),
            subscriptions,
            stop.subscribe(),
        ));

        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        // NOT_SERVING until the first check has run (the reporter starts "" as SERVING).
        for service in [
            "backoffice.webhooks.v1.WebhookAdmin",
            "backoffice.webhooks.v1.EventIngest",
            "",
        ] {
            health_reporter
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
        background.spawn(report_health(
            health_reporter,
            readiness_tx,
            self.store.clone(),
            heartbeat,
            stall_limit(self.config.poll_interval),
            stop.subscribe(),
        ));

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.BadRequest, so grpcurl can show which field an error names.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // google.rpc.BadRequest, so grpcurl can show which field an error names.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let admin = WebhookAdminServer::new(AdminService::new(
            self.store.clone(),
            self.hub.clone(),
            self.destinations.clone(),
            self.page_tokens.clone(),
        ))
        .max_decoding_message_size(MAX_GRPC_MESSAGE);
        let ingest = EventIngestServer::new(IngestService::new(
            self.store.clone(),
            self.config.max_payload_bytes,
        ))
        .max_decoding_message_size(MAX_GRPC_MESSAGE);

        // Built once: the gRPC port and the console serve the same service instances.
        let routes = tonic::service::Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(admin)
            .add_service(ingest);
        // WatchDeliveries takes its path over from the generated server (a static path wins
        // over the service's wildcard): it sends each update encoded once (src/api/watch.rs).
        // Around every route, so both ports answer unreadable requests as the caller's fault
        // (src/api/request_errors.rs).
        let routes = tonic::service::Routes::from(
            routes
                .into_axum_router()
                .route_service(
                    crate::api::watch::WATCH_DELIVERIES_PATH,
                    crate::api::watch::WatchDeliveriesRoute::new(
                        self.hub.clone(),
                        self.config.max_watch_streams_per_credential,
                    ),
                )
                .layer(crate::api::request_errors::RequestErrorsLayer),
        );
        // One budget of connections for both listeners: what runs out is the process's file
        // descriptors, whichever port takes them.
        let connections = ConnectionGuard::new(self.config.connection_settings());
        let tls = self.tls.map(|tls| connections.tls(tls));
        if self.config.tls_client_ca.is_some() {
            tracing::info!("mutual TLS: both ports require a client certificate");
        }

        tracing::info!(addr = %self.local_addr, workers = !self.config.disable_workers, "webhooks service listening");
        let console = self.console.map(|console| {
            tracing::info!(addr = %console.local_addr(), "web console listening");
            let mut stopped = stop.subscribe();
            let serving = console.serve(
                routes.clone(),
                self.auth.clone(),
                tls.clone(),
                connections.clone(),
                async move {
                    // Stops with the gRPC port: stop_signal is sent when `shutdown` resolves.
                    stopped.recv().await;
                },
            );
            tokio::spawn(async move {
                let result = serving.await;
                if let Err(error) = &result {
                    tracing::error!(error = format!("{error:#}"), "the web console stopped");
                }
                result
            })
        });
        // HTTP/1.1 and gRPC-Web too, so a browser app (or a proxy in front of one) may call this
        // port directly; plain gRPC over HTTP/2 passes the translation untouched.
        let mut builder =
            connections.configure(tonic::transport::Server::builder().accept_http1(true));
        let encrypted = tls.is_some();
        if let Some(tls) = tls {
            builder = builder
                .tls_config(tls)
                .context("invalid TLS certificate or key")?;
        }
        let served = builder
            .layer(crate::api::grpc_web::layer())
            .layer(AuthLayer::new(self.auth.clone()))
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                connections.incoming(self.listener, encrypted),
                async move {
                    shutdown.await;
                    tracing::info!(
                        "shutting down: no new claims, in-flight attempts finish, streams end"
                    );
                    // Workers stop claiming and finish what they hold; watchers end their
                    // streams with UNAVAILABLE (clients resume with their cursor elsewhere), so
                    // the server's drain does not wait on them.
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
        served.context("gRPC server failed")?;
        console_served
    }
}

/// Refuses to expose the API on `addr`, unless it is loopback, without authentication or with
/// secrets stored in plaintext.
fn refuse_exposed_unprotected(
    addr: SocketAddr,
    auth_enabled: bool,
    encrypts: bool,
) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !auth_enabled {
        anyhow::bail!(
            "refusing to listen on {addr} without authentication: set WEBHOOKS_ADMIN_TOKEN (and \
             WEBHOOKS_INGEST_TOKEN / WEBHOOKS_VIEWER_TOKEN) or WEBHOOKS_REQUIRE_AUTH=true, or \
             listen on 127.0.0.1"
        );
    }
    if !encrypts {
        anyhow::bail!(
            "refusing to listen on {addr} with webhook secrets stored in plaintext: set \
             WEBHOOKS_ENCRYPTION_KEY (base64 of 32 random bytes)"
        );
    }
    Ok(())
}

/// The TLS settings of the gRPC port (and the console's), when a certificate is configured;
/// with `WEBHOOKS_TLS_CLIENT_CA`, clients must present a certificate that CA signed.
fn tls_config(config: &ServeConfig) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        // Client certificates are checked in the TLS handshake: without TLS there is none, and
        // serving plain text would silently drop the gate the operator asked for.
        if config.tls_client_ca.is_some() {
            anyhow::bail!(
                "WEBHOOKS_TLS_CLIENT_CA is set but WEBHOOKS_TLS_CERT and WEBHOOKS_TLS_KEY are                  not: client certificates are checked in the TLS handshake, so the ports must                  speak TLS"
            );
        }
        return Ok(None);
    };
    let cert = std::fs::read(cert)
        .with_context(|| format!("reading WEBHOOKS_TLS_CERT {}", cert.display()))?;
    let key = std::fs::read(key)
        .with_context(|| format!("reading WEBHOOKS_TLS_KEY {}", key.display()))?;
    let mut tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key));
    if let Some(path) = &config.tls_client_ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading WEBHOOKS_TLS_CLIENT_CA {}", path.display()))?;
        check_client_ca(&pem)
            .with_context(|| format!("WEBHOOKS_TLS_CLIENT_CA {}", path.display()))?;
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(pem));
    }
    Ok(Some(tls))
}

/// Checks that `pem` holds at least one certificate and that each can be a trust anchor. tonic
/// skips the ones it cannot parse, and with none left fails only when the server starts
/// serving, with a message about the server's own certificate: this names the client CA file.
fn check_client_ca(pem: &[u8]) -> anyhow::Result<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| anyhow::anyhow!("not a PEM file of certificates ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("certificate {} is not a usable CA ({e})", index + 1))?;
    }
    if roots.is_empty() {
        anyhow::bail!("holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)");
    }
    Ok(())
}

fn configured_tokens(config: &ServeConfig) -> ConfiguredTokens {
    let clean = |tokens: &[String]| -> Vec<String> {
        tokens
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    };
    ConfiguredTokens {
        admin: clean(&config.admin_token),
        ingest: clean(&config.ingest_token),
        viewer: clean(&config.viewer_token),
    }
}

/// Purges history older than `retention`, a batch at a time, every few minutes.
async fn purge_old_history(store: Store, retention: std::time::Duration, mut shutdown: Shutdown) {
    const BATCH: i64 = 500;
    loop {
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        let mut purged = 0u64;
        loop {
            match store.purge_history(cutoff, BATCH).await {
                Ok(0) => break,
                Ok(n) => purged += n,
                Err(e) => {
                    tracing::warn!(error = %e, "purging old history failed");
                    break;
                }
            }
            if shutdown.is_shutdown() {
                return;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged deliveries past the retention period");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(300)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Analyzes the queue tables when their planner statistics are missing or far behind (see
/// `src/store/statistics.rs`), checking every few seconds: cheap, and it matters most in the
/// first minute of a new database, before autovacuum has looked at it.
async fn keep_statistics_fresh(store: Store, mut shutdown: Shutdown) {
    loop {
        match store.refresh_stale_statistics().await {
            Ok(tables) if !tables.is_empty() => {
                tracing::debug!(?tables, "analyzed queue tables with stale statistics");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking planner statistics failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// How long the delivery loop may go without a round before health calls it stalled.
fn stall_limit(poll_interval: std::time::Duration) -> std::time::Duration {
    (poll_interval * 10).max(std::time::Duration::from_secs(30))
}

/// Keeps the standard health service and `/readyz` truthful: SERVING (ready) only while the
/// database answers and the delivery loop goes round; NOT_SERVING otherwise, and SERVING again
/// once it recovers.
async fn report_health(
    reporter: tonic_health::server::HealthReporter,
    readiness: watch::Sender<crate::metrics::Readiness>,
    store: Store,
    heartbeat: Option<Arc<crate::delivery::Heartbeat>>,
    stall_limit: std::time::Duration,
    mut shutdown: Shutdown,
) {
    use tonic_health::ServingStatus;
    let mut last: Option<bool> = None;
    loop {
        let database_ok = store.ping().await.is_ok();
        let loop_age = heartbeat.as_ref().map(|h| h.age());
        let loop_ok = loop_age.is_none_or(|age| age < stall_limit);
        let healthy = database_ok && loop_ok;
        readiness.send_replace(if !database_ok {
            crate::metrics::Readiness::NotReady("the database does not answer".into())
        } else if !loop_ok {
            crate::metrics::Readiness::NotReady(format!(
                "the delivery loop has not gone round for {}s",
                loop_age.unwrap_or_default().as_secs()
            ))
        } else {
            crate::metrics::Readiness::Ready
        });
        if last != Some(healthy) {
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if !healthy {
                tracing::warn!(
                    database_ok,
                    delivery_loop_ok = loop_ok,
                    "health: NOT_SERVING"
                );
            } else if last.is_some() {
                tracing::info!("health: SERVING again");
            }
            reporter
                .set_service_status("backoffice.webhooks.v1.WebhookAdmin", status)
                .await;
            reporter
                .set_service_status("backoffice.webhooks.v1.EventIngest", status)
                .await;
            // The overall status last: whoever sees it can rely on the services' statuses.
            reporter.set_service_status("", status).await;
            last = Some(healthy);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = shutdown.recv() => {
                readiness.send_replace(crate::metrics::Readiness::NotReady(
                    "shutting down".into(),
                ));
                reporter.set_service_status("", ServingStatus::NotServing).await;
                return;
            }
        }
    }
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
