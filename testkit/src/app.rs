//! The service in-process on a random port, built from `webhooks serve` flags exactly as the
//! binary parses them, with gRPC clients connected to it and request helpers for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::oneshot;
use tonic::transport::{Channel, ClientTlsConfig};
use webhooks::config::{Cli, Command, ServeConfig};
use webhooks::delivery::guard::Lookup;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;
use webhooks::startup::Application;

use crate::db::TestDatabase;
use crate::{PATIENCE, grpc};

/// Default flags for tests, in flag/value pairs: fast polling and retries, loopback destinations
/// allowed. A flag a test gives replaces its default.
pub const TEST_FLAGS: &[&str] = &[
    "--allow-private-destinations",
    "true",
    "--poll-interval",
    "100ms",
    "--retry-schedule",
    "300ms,300ms,300ms",
    "--request-timeout",
    "3s",
    "--connect-timeout",
    "1s",
    "--log-level",
    "warn",
];

/// A fresh database of one test as `(url, name)`.
pub fn fresh_database_url() -> (String, String) {
    let database = TestDatabase::fresh();
    (database.url, database.name)
}

/// The `serve` configuration for a database, with `extra` flags overriding [`TEST_FLAGS`].
pub fn serve_config(database_url: &str, extra: &[&str]) -> ServeConfig {
    TestApp::builder()
        .database(TestDatabase::at(database_url, ""))
        .args(extra)
        .config()
}

/// Spawns the service on a fresh database with the test defaults.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// Spawns the service on a fresh database with extra flags.
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    TestApp::builder().args(extra).spawn().await
}

/// Spawns the service on a given database (which may already exist).
pub async fn spawn_app_on(database_url: &str, database_name: &str, extra: &[&str]) -> TestApp {
    TestApp::builder()
        .database(TestDatabase::at(database_url, database_name))
        .args(extra)
        .spawn()
        .await
}

/// [`spawn_app_on`], resolving destination names with `lookup` instead of the system resolver
/// (at create, edit and connect time).
pub async fn spawn_app_on_resolving(
    database_url: &str,
    database_name: &str,
    extra: &[&str],
    lookup: Arc<dyn Lookup>,
) -> TestApp {
    TestApp::builder()
        .database(TestDatabase::at(database_url, database_name))
        .args(extra)
        .resolving(lookup)
        .spawn()
        .await
}

/// How to start a [`TestApp`]: which database, which flags, which resolver, how to connect.
pub struct TestAppBuilder {
    database: Option<TestDatabase>,
    /// Default flag/value pairs; a flag in `args` drops its pair.
    defaults: Vec<(String, String)>,
    args: Vec<String>,
    lookup: Option<Arc<dyn Lookup>>,
    tls: Option<ClientTlsConfig>,
    wait_until_serving: bool,
}

impl TestAppBuilder {
    /// Runs on `database` instead of a fresh one.
    pub fn database(mut self, database: TestDatabase) -> Self {
        self.database = Some(database);
        self
    }

    /// Sets the default of `flag` to `value` (a suite's own defaults; tests still override).
    pub fn default_flag(mut self, flag: &str, value: &str) -> Self {
        match self.defaults.iter_mut().find(|(name, _)| name == flag) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.defaults.push((flag.to_owned(), value.to_owned())),
        }
        self
    }

    /// Drops the default of `flag` (for suites that configure the same thing another way).
    pub fn without_default(mut self, flag: &str) -> Self {
        self.defaults.retain(|(name, _)| name != flag);
        self
    }

    /// Adds `webhooks serve` flags; each replaces its default.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Resolves destination names with `lookup` instead of the system resolver.
    pub fn resolving(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// Connects the test's clients with `tls` (for a service given `--tls-cert`).
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Returns from [`TestAppBuilder::spawn`] only once the health service reports SERVING for
    /// the server and both API services.
    pub fn wait_until_serving(mut self) -> Self {
        self.wait_until_serving = true;
        self
    }

    fn database_or_fresh(&mut self) -> TestDatabase {
        self.database
            .get_or_insert_with(TestDatabase::fresh)
            .clone()
    }

    /// The configuration `webhooks serve` would parse from these flags.
    pub fn config(mut self) -> ServeConfig {
        let database = self.database_or_fresh();
        let mut args = vec![
            "webhooks".to_owned(),
            "serve".to_owned(),
            "--database-url".to_owned(),
            database.url,
            "--grpc-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        for (flag, value) in &self.defaults {
            if !self.args.contains(flag) {
                args.extend([flag.clone(), value.clone()]);
            }
        }
        args.extend(self.args.iter().cloned());
        match Cli::parse_from(args).command {
            Command::Serve(config) => config,
            _ => unreachable!("serve was parsed"),
        }
    }

    /// Builds and starts the service, and connects clients to it.
    pub async fn spawn(mut self) -> TestApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        webhooks::telemetry::init("warn", webhooks::config::LogFormat::Text);
        let database = self.database_or_fresh();
        let lookup = self.lookup.take();
        let tls = self.tls.take();
        let wait = self.wait_until_serving;
        let config = self.config();
        let app = match lookup {
            Some(lookup) => Application::build_resolving_with(config, lookup).await,
            None => Application::build(config).await,
        }
        .expect("the service starts");
        TestApp::serve(app, database, tls, wait).await
    }
}

/// A running service and clients to it. Dropping it stops the service.
pub struct TestApp {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:port` (`https://` when connected with TLS), for `--server`.
    pub server: String,
    /// The web console's address, when `--console-addr` was given.
    pub console_addr: Option<SocketAddr>,
    /// The metrics and health probes' address, when `--metrics-addr` was given.
    pub metrics_addr: Option<SocketAddr>,
    /// The database it runs on.
    pub database: TestDatabase,
    /// An admin client on the test's connection.
    pub admin: WebhookAdminClient<Channel>,
    /// An ingest client on the same connection.
    pub ingest: EventIngestClient<Channel>,
    /// The test's connection, for clients of its own.
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A builder with [`TEST_FLAGS`] as the defaults and a fresh database.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            database: None,
            defaults: TEST_FLAGS
                .chunks(2)
                .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                .collect(),
            args: Vec::new(),
            lookup: None,
            tls: None,
            wait_until_serving: false,
        }
    }

    /// Runs a built service until the [`TestApp`] is stopped, with clients connected to it.
    async fn serve(
        app: Application,
        database: TestDatabase,
        tls: Option<ClientTlsConfig>,
        wait: bool,
    ) -> TestApp {
        let addr = app.local_addr();
        let console_addr = app.console_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = format!("{scheme}://{addr}");
        let mut endpoint = Channel::from_shared(server.clone()).expect("valid endpoint");
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).expect("a TLS client");
        }
        let channel = endpoint.connect().await.expect("connects");
        if wait {
            grpc::wait_until_serving(channel.clone()).await;
        }
        TestApp {
            addr,
            server,
            console_addr,
            metrics_addr,
            database,
            admin: WebhookAdminClient::new(channel.clone()),
            ingest: EventIngestClient::new(channel.clone()),
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the service gracefully and waits for it (at most [`PATIENCE`]).
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the service gracefully, then drops its database.
    pub async fn stop_and_drop_database(mut self) {
        self.shut_down().await;
        self.database.drop_database().await;
    }

    async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(PATIENCE, task).await;
        }
    }

    /// A direct connection to the test database, for checks the API does not offer.
    pub async fn db(&self) -> tokio_postgres::Client {
        self.database.connect().await
    }

    /// Creates a webhook named "Test hook" with `destination_url`, the given function and
    /// events, and a generated secret.
    pub async fn create_webhook(
        &self,
        destination_url: &str,
        function: pb::Function,
        nodes: &[u32],
        rejection: bool,
    ) -> pb::CreateWebhookResponse {
        let mut webhook = crate::webhook_spec(destination_url, function, nodes, rejection);
        webhook.name = "Test hook".into();
        self.create_webhook_from(webhook, "").await
    }

    /// Creates a withdrawal webhook (approval at node 1, rejection) named `name` to `url`, with
    /// `secret` ("" generates one); returns the stored webhook.
    pub async fn create_withdrawal_webhook(
        &self,
        name: &str,
        url: &str,
        secret: &str,
    ) -> pb::Webhook {
        let mut webhook = crate::webhook_spec(url, pb::Function::Withdrawal, &[1], true);
        webhook.name = name.into();
        self.create_webhook_from(webhook, secret)
            .await
            .webhook
            .expect("the webhook is returned")
    }

    /// Creates `webhook` with `secret` ("" generates one).
    pub async fn create_webhook_from(
        &self,
        webhook: pb::Webhook,
        secret: &str,
    ) -> pb::CreateWebhookResponse {
        self.admin
            .clone()
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(webhook),
                secret: secret.into(),
                ..Default::default()
            })
            .await
            .expect("webhook created")
            .into_inner()
    }

    /// Publishes one event and expects it accepted.
    pub async fn publish(&self, event: pb::PublishEventRequest) -> pb::PublishEventResponse {
        self.ingest
            .clone()
            .publish_event(event)
            .await
            .expect("event published")
            .into_inner()
    }

    /// Publishes a minimal withdrawal approval at node 1 for `request_id` (client C-1, 10.00
    /// USD); returns its one delivery id.
    pub async fn publish_withdrawal(&self, key: &str, request_id: &str) -> String {
        let response = self
            .publish(pb::PublishEventRequest {
                idempotency_key: key.into(),
                decision: pb::Decision::Approved as i32,
                approval_node: Some(1),
                occurred_at: None,
                request: Some(pb::publish_event_request::Request::Withdrawal(
                    pb::WithdrawalRequest {
                        id: request_id.into(),
                        client_id: "C-1".into(),
                        amount: "10.00".into(),
                        currency: "USD".into(),
                        ..Default::default()
                    },
                )),
            })
            .await;
        assert_eq!(response.delivery_ids.len(), 1, "{response:?}");
        response.delivery_ids[0].clone()
    }

    /// GetDelivery, expected to succeed.
    pub async fn get_delivery(&self, id: &str) -> pb::Delivery {
        self.admin
            .clone()
            .get_delivery(pb::GetDeliveryRequest { id: id.into() })
            .await
            .expect("delivery readable")
            .into_inner()
    }

    /// GetWebhook, expected to succeed.
    pub async fn get_webhook(&self, id: &str) -> pb::Webhook {
        self.try_get_webhook(id).await.expect("webhook readable")
    }

    /// GetWebhook, for tests that expect it to fail.
    pub async fn try_get_webhook(&self, id: &str) -> Result<pb::Webhook, tonic::Status> {
        self.admin
            .clone()
            .get_webhook(pb::GetWebhookRequest { id: id.into() })
            .await
            .map(tonic::Response::into_inner)
    }

    /// SetWebhookEnabled, expected to succeed.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> pb::Webhook {
        self.admin
            .clone()
            .set_webhook_enabled(pb::SetWebhookEnabledRequest {
                id: id.into(),
                enabled,
                ..Default::default()
            })
            .await
            .expect("enabled state set")
            .into_inner()
    }

    /// ListDeliveries, expected to succeed.
    pub async fn list_deliveries(
        &self,
        request: pb::ListDeliveriesRequest,
    ) -> pb::ListDeliveriesResponse {
        self.admin
            .clone()
            .list_deliveries(request)
            .await
            .expect("deliveries listed")
            .into_inner()
    }

    /// Every delivery matching `filter` (page_token ignored), newest first, following pages.
    pub async fn all_deliveries(&self, filter: pb::ListDeliveriesRequest) -> Vec<pb::Delivery> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .list_deliveries(pb::ListDeliveriesRequest {
                    page_token: token.clone(),
                    page_size: 1000,
                    ..filter.clone()
                })
                .await;
            all.extend(page.deliveries);
            if page.next_page_token.is_empty() {
                return all;
            }
            token = page.next_page_token;
        }
    }

    /// Every delivery to one webhook, newest first.
    pub async fn deliveries_of(&self, webhook_id: &str) -> Vec<pb::Delivery> {
        self.all_deliveries(pb::ListDeliveriesRequest {
            webhook_id: webhook_id.into(),
            ..Default::default()
        })
        .await
    }

    /// Waits until the delivery satisfies `check` (within [`PATIENCE`]) and returns it with its
    /// attempts.
    pub async fn wait_for_delivery(
        &self,
        delivery_id: &str,
        what: &str,
        check: impl Fn(&pb::Delivery) -> bool,
    ) -> pb::Delivery {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let delivery = self.get_delivery(delivery_id).await;
            if check(&delivery) {
                return delivery;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("delivery {delivery_id} never got {what}; last seen: {delivery:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the delivery reaches `status`, and returns it with its attempts.
    pub async fn wait_for_delivery_status(
        &self,
        delivery_id: &str,
        status: pb::DeliveryStatus,
    ) -> pb::Delivery {
        grpc::wait_for_delivery_status_of(&self.admin, delivery_id, status).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
