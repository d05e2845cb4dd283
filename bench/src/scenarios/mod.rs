//! The scenarios. Each sub-run starts its own service on its own fresh database (so one run's
//! backlog or table size never colours the next), its own receiver, and stops both at the end.
//! One module per scenario; this one holds what they share.

mod backlog;
mod burst;
mod e2e;
mod hang;
mod instances;
mod latency;
mod publish;
mod rss;
mod sql;
mod watchers;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::load::Window;
use crate::pgstats;
use crate::probe::{Probe, Report};
use crate::service::{Ended, Launcher, Service};

pub use backlog::backlog;
pub use burst::burst;
pub use e2e::{E2eRun, e2e, e2e_run};
pub use hang::hang;
pub use instances::instances;
pub use latency::{LatencyRun, latency, latency_run};
pub use publish::publish;
pub use rss::rss;
pub use sql::sql;
pub use watchers::watchers;

/// Settings every scenario reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured window of each sub-run.
    pub duration: Duration,
    /// Load before the window opens.
    pub warmup: Duration,
    /// Longest wait for outstanding deliveries after a latency window.
    pub drain: Duration,
    /// Wait for Postgres statistics to be flushed (an idle backend's within 10 s).
    pub settle: Duration,
    /// Single-event publishers (publish throughput, latency at max).
    pub concurrency: usize,
    /// Batch publishers.
    pub batch_concurrency: usize,
    /// Events per PublishEvents call.
    pub batch_size: usize,
    /// Backlog cap of the saturating runs (deliveries published but not yet received).
    pub max_backlog: u64,
    /// Fixed offered rates for the latency scenario.
    pub rates: Vec<u32>,
    /// Offered rate of the hanging-endpoint scenario.
    pub hang_rate: u32,
    /// WatchDeliveries subscribers.
    pub watchers: usize,
    /// What the watchers' clients decode of each update.
    pub watcher_decode: crate::load::WatcherDecode,
    /// Events of the SQL-accounting workload (fan-out 1, batched).
    pub sql_events: u64,
    /// gRPC connections of the load generator.
    pub connections: usize,
    /// Postgres server URL without a database.
    pub server_url: String,
    /// Resolved address of the Postgres server (for the proxy).
    pub server_addr: SocketAddr,
    /// Also measure fan-out 1 and the burst into the nginx judge.
    pub nginx: bool,
}

impl Settings {
    /// The backlog cap of the saturating runs: `max_backlog`, where 0 means none.
    fn backlog_cap(&self) -> u64 {
        if self.max_backlog == 0 {
            u64::MAX
        } else {
            self.max_backlog
        }
    }
}

/// Everything a scenario needs.
pub struct Ctx {
    /// Starts services.
    pub launcher: Launcher,
    /// Settings.
    pub settings: Settings,
    /// Peak RSS of every service started, by run label.
    pub memory: Vec<(String, Ended)>,
}

impl Ctx {
    fn probe(&self, service: &Service) -> Probe {
        self.probe_with_clients(service, None)
    }

    /// [`Ctx::probe`] that also measures the watcher-client process `clients_pid`.
    fn probe_with_clients(&self, service: &Service, clients_pid: Option<u32>) -> Probe {
        Probe::start(
            service.pid,
            clients_pid,
            service.database.clone(),
            format!("{}/postgres", self.settings.server_url),
        )
    }

    /// Where the time went over `window`: probes `service` from its start to its end.
    async fn probe_window(&self, service: &Service, window: Window) -> Report {
        sleep_until(window.start).await;
        let probe = self.probe(service);
        sleep_until(window.end).await;
        probe.finish().await
    }

    async fn stop(&mut self, label: &str, service: Service) -> anyhow::Result<Ended> {
        let ended = service.stop().await?;
        self.memory.push((label.to_owned(), ended));
        Ok(ended)
    }
}

fn progress(message: &str) {
    eprintln!("[webhooks-bench] {message}");
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

/// `later - earlier` in signed microseconds.
fn signed_us(later: Instant, earlier: Instant) -> i64 {
    if later >= earlier {
        (later - earlier).as_micros().min(i64::MAX as u128) as i64
    } else {
        -((earlier - later).as_micros().min(i64::MAX as u128) as i64)
    }
}

/// Counts succeeded deliveries; returns the count and the moment it stands for (the middle of
/// the query).
async fn succeeded_at(db: &tokio_postgres::Client) -> anyhow::Result<(i64, Instant)> {
    let before = Instant::now();
    let n = pgstats::count_status(db, "succeeded").await?;
    let after = Instant::now();
    Ok((n, before + (after - before) / 2))
}
