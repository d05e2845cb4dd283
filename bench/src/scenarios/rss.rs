//! (e) Peak RSS of the service, over every service this invocation started.

use anyhow::Context;
use serde::Serialize;

use super::Ctx;

/// Scenario (e).
#[derive(Debug, Clone, Serialize)]
pub struct RssResult {
    /// How it was measured.
    pub method: String,
    /// Largest VmHWM of any service of this invocation, MiB.
    pub peak_rss_mib: f64,
    /// The run it came from.
    pub peak_run: String,
    /// VmHWM of every service, MiB.
    pub by_run: Vec<(String, f64)>,
}

/// (e) Peak RSS over every service this invocation started.
pub fn rss(ctx: &Ctx) -> anyhow::Result<RssResult> {
    let by_run: Vec<(String, f64)> = ctx
        .memory
        .iter()
        .map(|(label, m)| (label.clone(), m.peak_rss_kib as f64 / 1024.0))
        .collect();
    let (peak_run, peak) = by_run
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .context("no service ran, so there is no RSS to report")?;
    Ok(RssResult {
        method:
            "VmHWM from /proc/<pid>/status of each service process, read just before it is stopped"
                .to_owned(),
        peak_rss_mib: peak,
        peak_run,
        by_run,
    })
}
