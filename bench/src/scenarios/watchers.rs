//! (g) End-to-end throughput with WatchDeliveries subscribers attached, against (b)'s run
//! without them.

use anyhow::bail;
use serde::Serialize;

use super::Ctx;
use super::e2e::{E2eRun, e2e_run};
use crate::stats::ratio;

/// Scenario (g).
#[derive(Debug, Clone, Serialize)]
pub struct WatchersResult {
    /// Subscribers.
    pub watchers: usize,
    /// Delivered/s with them.
    pub delivered_per_s: f64,
    /// Delivered/s without them (scenario (b), fan-out 1, same invocation).
    pub baseline_delivered_per_s: f64,
    /// Throughput lost, % of the baseline.
    pub cost_pct: f64,
    /// The run with watchers.
    pub run: E2eRun,
}

/// (g) The fan-out-1 run of (b) with `watchers` WatchDeliveries streams attached, compared with
/// `baseline` (the run without).
pub async fn watchers(ctx: &mut Ctx, baseline: &E2eRun) -> anyhow::Result<WatchersResult> {
    let n = ctx.settings.watchers;
    let run = e2e_run(ctx, 1, n).await?;
    if run.watcher_errors.unwrap_or(0) > 0 {
        bail!(
            "{} WatchDeliveries streams failed: {}",
            run.watcher_errors.unwrap_or(0),
            run.watcher_first_error.clone().unwrap_or_default()
        );
    }
    Ok(WatchersResult {
        watchers: n,
        delivered_per_s: run.delivered_per_s,
        baseline_delivered_per_s: baseline.delivered_per_s,
        cost_pct: ratio(
            baseline.delivered_per_s - run.delivered_per_s,
            baseline.delivered_per_s,
        ) * 100.0,
        run,
    })
}
