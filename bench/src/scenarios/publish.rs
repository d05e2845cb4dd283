//! (a) Publish throughput: ingest only, the service's workers disabled.

use anyhow::{Context, bail};
use serde::Serialize;

use super::{Ctx, progress};
use crate::load::{self, ClosedLoop, Events, Window};
use crate::probe::Report;
use crate::receiver::Receiver;
use crate::service::Options;
use crate::stats::{Summary, summarize};

/// One publish-throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct PublishRun {
    /// `PublishEvent` or `PublishEvents`.
    pub rpc: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Events per call.
    pub batch: usize,
    /// Events acknowledged per second in the window.
    pub events_per_s: f64,
    /// Calls per second in the window.
    pub calls_per_s: f64,
    /// Call latency.
    pub call_latency: Summary,
    /// Failed calls.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Where the time went.
    pub probe: Report,
}

/// Scenario (a).
#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    /// How it was measured.
    pub method: String,
    /// Single PublishEvent calls.
    pub single: PublishRun,
    /// PublishEvents batches.
    pub batched: PublishRun,
}

/// (a) Publish throughput: ingest only (workers disabled), one matching webhook.
pub async fn publish(ctx: &mut Ctx) -> anyhow::Result<PublishResult> {
    let s = ctx.settings.clone();
    let service = ctx
        .launcher
        .start(
            "publish",
            &Options {
                disable_workers: true,
                ..Options::default()
            },
        )
        .await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
    let mut runs = Vec::new();
    for (callers, batch) in [(s.concurrency, 1), (s.batch_concurrency, s.batch_size)] {
        progress(&format!(
            "publish: {callers} callers x {batch} event(s) per call for {:?} (+{:?} warm-up)",
            s.duration, s.warmup
        ));
        let window = Window::after(s.warmup, s.duration);
        let probe_at = ctx.probe_window(&service, window);
        let spec = ClosedLoop {
            callers,
            batch,
            window,
            gate: None,
            acks: None,
            max_events: None,
        };
        let (published, probe) = tokio::join!(
            load::closed_loop(&channels, Events::new("publish", 1), spec),
            probe_at
        );
        if published.window_calls == 0 {
            bail!(
                "no publish call succeeded in the window; first error: {}",
                published.first_error.unwrap_or_default()
            );
        }
        runs.push(PublishRun {
            rpc: if batch == 1 {
                "PublishEvent"
            } else {
                "PublishEvents"
            }
            .to_owned(),
            callers,
            batch,
            events_per_s: published.window_events as f64 / window.seconds(),
            calls_per_s: published.window_calls as f64 / window.seconds(),
            call_latency: summarize(published.call_latency_us, 0),
            errors: published.errors,
            first_error: published.first_error,
            probe,
        });
    }
    ctx.stop("publish", service).await?;
    let batched = runs.pop().context("batched run missing")?;
    let single = runs.pop().context("single run missing")?;
    Ok(PublishResult {
        method: "ingest only: the service runs with --disable-workers true and one matching webhook, so \
                 every event stores one event row and one pending delivery; closed loop, calls acknowledged \
                 inside the window counted"
            .to_owned(),
        single,
        batched,
    })
}
