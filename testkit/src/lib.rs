//! The one test harness of every suite under `tests/`: a fresh database per test
//! ([`TestDatabase`]), the service in-process on a random port ([`TestApp`]), the real `webhooks`
//! binary as a guarded child process ([`Service`]), one scriptable HTTP receiver on 127.0.0.1
//! ([`Receiver`]), the event fixtures, signature helpers, throwaway CAs ([`pki`]) and PostgreSQL
//! clusters ([`pg_cluster`]).
//!
//! It is a crate rather than a `#[path]`-shared file so that each suite compiles only what it
//! needs without `dead_code` allowances, and so that one fix reaches every suite.
//!
//! ```text
//! let app = TestApp::builder().args(&["--require-auth", "true"]).spawn().await;
//! let receiver = Receiver::start().await;
//! receiver.script([Reply::status(503), Reply::status(200).after(Duration::from_secs(1))]);
//! let service = Service::start(testkit::webhooks_bin!(), &TestDatabase::fresh(), &[]).await;
//! ```
//!
//! Suites keep only what is theirs (the CLI suite's command runners, the documentation suite's
//! token-per-role service) in their own `support.rs`.

mod app;
mod db;
mod fixtures;
mod grpc;
pub mod os;
pub mod pg_cluster;
pub mod pki;
mod receiver;
mod service;
mod signature;

use std::time::Duration;

pub use app::{TEST_FLAGS, TestApp, TestAppBuilder, fresh_database_url, serve_config};
pub use app::{spawn_app, spawn_app_on, spawn_app_on_resolving, spawn_app_with};
pub use db::{TestDatabase, connect, server_url};
pub use fixtures::{
    all_deliveries, event_for, event_prefix, webhook_spec, withdrawal_approved, withdrawal_event,
    withdrawal_webhook,
};
pub use grpc::{
    BearerToken, assert_status, wait_for_delivery_status_of, wait_until_serving, with_token,
};
pub use receiver::{Received, Receiver, Reply};
pub use service::{Service, free_port, note_if_slow, run_webhooks, webhooks_command};
pub use signature::{expected_signature, new_secret, unix_now, verify_with_standardwebhooks};

/// How long a test waits for something the service should do "soon". Generous: the machine is
/// shared and noisy, and a wait that ends early only makes a test slower, never weaker.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The `webhooks` binary built for the calling test crate. `CARGO_BIN_EXE_webhooks` exists only
/// while cargo compiles the root package's integration tests, so this expands there, not here.
#[macro_export]
macro_rules! webhooks_bin {
    () => {
        env!("CARGO_BIN_EXE_webhooks")
    };
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
