//! (f) The healthy endpoint's latency while another endpoint on the same events hangs, against
//! (c)'s run at the same rate without it.

use serde::Serialize;

use super::Ctx;
use super::latency::{LatencyRun, latency_run};
use crate::pgstats::Cost;

/// Scenario (f).
#[derive(Debug, Clone, Serialize)]
pub struct HangResult {
    /// Offered rate.
    pub rate: u32,
    /// p99 of the healthy endpoint with the hanging one beside it.
    pub healthy_p99_ms: Option<f64>,
    /// p99 at the same rate without the hanging endpoint.
    pub baseline_p99_ms: Option<f64>,
    /// healthy / baseline.
    pub ratio: Option<f64>,
    /// The run with the hanging endpoint.
    pub run: LatencyRun,
    /// Postgres work per delivery of the baseline (without the hanging endpoint), to set
    /// beside `run.pg_cost`.
    pub baseline_pg_cost: Cost,
}

/// (f) The healthy endpoint's latency while a second webhook on the same events hangs 30 s.
pub async fn hang(ctx: &mut Ctx, baseline: &LatencyRun) -> anyhow::Result<HangResult> {
    let rate = ctx.settings.hang_rate;
    let run = latency_run(ctx, Some(rate), true).await?;
    let healthy = run.ack_to_receipt.p99_ms;
    let base = baseline.ack_to_receipt.p99_ms;
    Ok(HangResult {
        rate,
        healthy_p99_ms: healthy,
        baseline_p99_ms: base,
        ratio: match (healthy, base) {
            (Some(h), Some(b)) if b > 0.0 => Some(h / b),
            _ => None,
        },
        run,
        baseline_pg_cost: baseline.pg_cost.clone(),
    })
}
