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
    /// Delivered/s without them: the mean of the run before (scenario (b), fan-out 1, same
    /// invocation) and a run right after, so that a drift in the machine's speed over the
    /// minutes between them counts half, not whole, in the cost.
    pub baseline_delivered_per_s: f64,
    /// The two runs without watchers, before and after: delivered/s.
    pub baseline_runs_delivered_per_s: [f64; 2],
    /// Throughput lost, % of the baseline.
    pub cost_pct: f64,
    /// CPU of the watchers' client process (a process of its own), % of one core.
    pub clients_cpu_pct: Option<f64>,
    /// The service's CPU per delivery with the watchers, ms: the fan-out's cost to the service
    /// alone, whatever the clients take.
    pub service_cpu_ms_per_delivery: f64,
    /// The same without them (the mean of the two runs without).
    pub baseline_service_cpu_ms_per_delivery: f64,
    /// The run with watchers.
    pub run: E2eRun,
}

/// (g) The fan-out-1 run of (b) with `watchers` WatchDeliveries streams attached, compared with
/// `baseline` (the run without, before it) and one more run without, after it.
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
    let after = e2e_run(ctx, 1, 0).await?;
    let cpu_ms_per_delivery =
        |run: &E2eRun| ratio(run.probe.service_cpu_pct * 10.0, run.delivered_per_s);
    let without = (baseline.delivered_per_s + after.delivered_per_s) / 2.0;
    Ok(WatchersResult {
        watchers: n,
        clients_cpu_pct: run.probe.watcher_clients_cpu_pct,
        service_cpu_ms_per_delivery: cpu_ms_per_delivery(&run),
        baseline_service_cpu_ms_per_delivery: (cpu_ms_per_delivery(baseline)
            + cpu_ms_per_delivery(&after))
            / 2.0,
        delivered_per_s: run.delivered_per_s,
        baseline_delivered_per_s: without,
        baseline_runs_delivered_per_s: [baseline.delivered_per_s, after.delivered_per_s],
        cost_pct: ratio(without - run.delivered_per_s, without) * 100.0,
        run,
    })
}
