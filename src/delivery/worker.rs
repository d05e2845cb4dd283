//! The delivery loop: claim due deliveries (as many as there are free slots), send each in its
//! own task, hand the attempt to the recorder (which writes results in batches), repeat.
//! Concurrency is bounded by a semaphore whose permits are taken *before* claiming and released
//! only once the attempt is recorded, so an instance never holds more leases than it can work
//! on and record. The same slots serve first attempts sent straight from a publish (see
//! [`Dispatcher`](super::dispatch::Dispatcher)): the claim is left retries, resends, work that
//! found no room at publish time and other instances' expired leases.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::dispatch::Dispatcher;
use super::recorder::{self, Finished, RecorderHandle};
use super::retry::decide;
use super::sender::{AttemptResult, HttpSender};
use super::signature::sign;
use crate::domain::{AttemptErrorKind, AttemptId, DeliveryPolicy, Outcome, RetrySchedule};
use crate::shutdown::Shutdown;
use crate::store::{ClaimedDelivery, FinishedAttempt, NewAttempt, Store, Wakeup};

/// The user agent sent with every delivery.
const USER_AGENT: &str = concat!("backoffice-webhooks/", env!("CARGO_PKG_VERSION"));
/// What the attempt history records instead of a custom header's value.
pub const REDACTED: &str = "[redacted]";
/// The most deliveries claimed by one statement.
const MAX_CLAIM: usize = 100;

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// How long a claim holds a delivery; must exceed the request timeout.
    pub lease: Duration,
    /// Poll interval when no notification arrives.
    pub poll_interval: Duration,
    /// Delays between attempts.
    pub retry_schedule: RetrySchedule,
    /// Per-endpoint pacing: in-flight cap, circuit breaker, auto-disable.
    pub policy: DeliveryPolicy,
}

/// When the delivery loop last made progress, so health can tell a stalled loop from an idle
/// one (a worker that silently stops while ingest keeps answering is a known failure elsewhere).
#[derive(Debug)]
pub struct Heartbeat {
    started: Instant,
    last_beat_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_beat_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    fn beat(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_beat_ms.store(now, Ordering::Relaxed);
    }

    /// Time since the loop last went round.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_beat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// A delivery worker of one instance.
pub struct Worker {
    store: Store,
    attempter: Arc<Attempter>,
    settings: WorkerSettings,
    /// Woken when there is work: new or re-queued deliveries (by this instance's writes or,
    /// through the listener, another's) and slots freed by recorded attempts.
    wake: Wakeup,
    heartbeat: Arc<Heartbeat>,
    /// The worker slots, shared with the dispatcher.
    slots: Arc<Semaphore>,
    /// Where attempts hand their results; the receiving end goes to the recorder in `run`.
    results: RecorderHandle,
    recorder_input: mpsc::UnboundedReceiver<Finished>,
    /// Sends the first attempts of what this instance publishes.
    dispatcher: Dispatcher,
}

impl Worker {
    /// A worker that claims from `store` and sends with `sender`, woken by `store`'s
    /// [`Wakeups::deliveries`](crate::store::Wakeups::deliveries).
    pub fn new(store: Store, sender: HttpSender, settings: WorkerSettings) -> Self {
        let wake = store.wakeups().deliveries.clone();
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let (results, recorder_input) = mpsc::unbounded_channel();
        let attempter = Arc::new(Attempter {
            sender,
            retry_schedule: settings.retry_schedule.clone(),
        });
        let dispatcher = Dispatcher::new(
            attempter.clone(),
            slots.clone(),
            &results,
            settings.lease,
            settings.policy.clone(),
        );
        Self {
            store,
            attempter,
            settings,
            wake,
            heartbeat: Arc::new(Heartbeat::default()),
            slots,
            results,
            recorder_input,
            dispatcher,
        }
    }

    /// The loop's heartbeat, for health checks.
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        self.heartbeat.clone()
    }

    /// Sends publishes' first attempts on this worker's slots, for the ingest API.
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }

    /// Runs until `shutdown` flips, then waits for the attempts in flight (claimed or
    /// dispatched) to be recorded.
    pub async fn run(self, mut shutdown: Shutdown) {
        let Self {
            store,
            attempter,
            settings,
            wake,
            heartbeat,
            slots,
            results,
            recorder_input,
            dispatcher,
        } = self;
        let mut in_flight = JoinSet::new();
        let recorder = recorder::spawn(
            store.clone(),
            settings.policy.clone(),
            wake.clone(),
            recorder_input,
        );
        let mut error_backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_shutdown() {
                break;
            }
            heartbeat.beat();
            // Reap finished tasks so the set does not grow.
            while in_flight.try_join_next().is_some() {}
            // Wait for one free slot (beating while every slot is busy: that is not a stall),
            // then take every other free one, up to a claim's size.
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = shutdown.recv() => break,
            };
            let mut permits = vec![first];
            while permits.len() < MAX_CLAIM {
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            // A claim counts the committed leases, so no publish of this instance may lease
            // meanwhile (see `Dispatcher::lease_turn`).
            let turn = dispatcher.lease_turn().await;
            let asked = permits.len();
            let claim = store
                .claim(asked as i64, settings.lease, &settings.policy)
                .await;
            drop(turn);
            let (claimed, took_all_found) = match claim {
                Ok(claim) => {
                    error_backoff = Duration::from_millis(100);
                    (claim.deliveries, claim.took_all_found)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(error_backoff) => {}
                        _ = shutdown.recv() => break,
                    }
                    error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let got = claimed.len();
            crate::metrics::record_attempts_started("claimed", got);
            for (delivery, permit) in claimed.into_iter().zip(permits.drain(..)) {
                let attempter = attempter.clone();
                let results = results.clone();
                // The recorder frees the slot once the attempt is recorded, and wakes this loop
                // when the endpoint has due work waiting (room under its cap was freed).
                in_flight.spawn(async move { attempter.attempt(delivery, permit, &results).await });
            }
            drop(permits);
            // Claim again at once only if this claim may have left something claimable: it
            // filled every slot, or another instance took some of what it found. Otherwise the
            // room under the caps or the due work ran out, and a claim now would find nothing
            // (and hold the turn to lease from the publishes meanwhile); whatever changes that
            // wakes this loop: a publish that queued work, a recorded attempt that freed room
            // where work waits, another instance's NOTIFY, or the poll.
            if got == 0 || (got < asked && took_all_found) {
                tokio::select! {
                    _ = wake.wait() => {}
                    _ = tokio::time::sleep(settings.poll_interval) => {}
                    _ = shutdown.recv() => break,
                }
            }
        }
        // Graceful stop: no more direct sends; let the attempts in flight finish (every slot
        // back means every attempt, claimed or dispatched, was recorded), then let the recorder
        // write what they handed it (it stops once every handle is gone).
        dispatcher.stop();
        while in_flight.join_next().await.is_some() {}
        let all = u32::try_from(settings.concurrency.max(1)).unwrap_or(u32::MAX);
        drop(slots.acquire_many(all).await);
        drop(results);
        drop(dispatcher);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the result recorder failed");
        }
    }
}

/// Signs and sends attempts: what the claim loop and the dispatcher share.
pub(super) struct Attempter {
    sender: HttpSender,
    retry_schedule: RetrySchedule,
}

impl Attempter {
    /// Signs and sends one attempt, then hands it (with its slot) to the recorder.
    pub(super) async fn attempt(
        &self,
        delivery: ClaimedDelivery,
        slot: OwnedSemaphorePermit,
        results: &RecorderHandle,
    ) {
        let message_id = format!("msg_{}", delivery.id.as_uuid().simple());
        let started_at = OffsetDateTime::now_utc();
        let timestamp = started_at.unix_timestamp();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
            ("webhook-id".to_owned(), message_id.clone()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            (
                "webhook-signature".to_owned(),
                sign(
                    &message_id,
                    timestamp,
                    delivery.body.as_bytes(),
                    &delivery.secrets,
                ),
            ),
        ];
        // The history gets the service's headers as sent and the custom ones as names only:
        // their values are the destination's credentials.
        let mut recorded = headers.clone();
        let mut headers = headers;
        for header in delivery.headers.iter() {
            headers.push((header.name().to_owned(), header.value().to_owned()));
            // Lower-case like every header name in the history (`HttpHeader.name`).
            recorded.push((header.name().to_ascii_lowercase(), REDACTED.to_owned()));
        }
        let result = self
            .sender
            .post_with_tls(
                delivery.tls.as_ref().map(|tls| (delivery.webhook_id, tls)),
                &delivery.destination_url,
                &headers,
                &delivery.body,
            )
            .await;
        drop(headers);
        let outcome = decide(&result, delivery.schedule_position, &self.retry_schedule);
        tracing::info!(
            delivery_id = %delivery.id,
            webhook_id = %delivery.webhook_id,
            attempt = delivery.attempt_number,
            status = result.status,
            error = result.error_kind.map(AttemptErrorKind::as_str),
            duration_ms = result.duration.as_millis() as u64,
            outcome = outcome_name(&outcome),
            "delivery attempt"
        );
        crate::metrics::record_attempt(outcome_name(&outcome), result.duration);
        // 410 Gone: the endpoint asks us to stop; the webhook is disabled with the attempt.
        let gone = result.is_gone().then(|| {
            format!(
                "endpoint answered 410 Gone at {}",
                crate::domain::timestamps::rfc3339(started_at)
            )
        });
        let attempt = new_attempt(&delivery, started_at, recorded, result);
        let finished = FinishedAttempt {
            attempt_id: AttemptId::now_v7(),
            claimed: delivery,
            attempt,
            outcome,
            disable: gone,
        };
        // The recorder outlives every attempt task (run() drops its own handle only after
        // joining them), so this cannot fail; if it ever did, the lease brings the delivery back.
        if results
            .send(Finished {
                attempt: finished,
                slot,
            })
            .is_err()
        {
            tracing::error!(
                "the result recorder is gone; the delivery will be retried after its lease"
            );
        }
    }
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::RetryAfter { .. } => "retry",
        Outcome::FailedForGood { .. } => "failed",
    }
}

fn new_attempt(
    delivery: &ClaimedDelivery,
    started_at: OffsetDateTime,
    request_headers: Vec<(String, String)>,
    result: AttemptResult,
) -> NewAttempt {
    NewAttempt {
        started_at,
        duration: result.duration,
        request_url: delivery.destination_url.clone(),
        request_headers,
        response_status: result.status,
        response_headers: result.response_headers,
        response_body: result.response_body,
        response_body_truncated: result.truncated,
        error_kind: result.error_kind,
        error_message: result.error_message,
    }
}
