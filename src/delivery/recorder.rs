//! Records finished attempts in batches.
//!
//! Attempts finish one by one, but writing each result in its own statement made the database,
//! not the endpoints, the limit: one round trip, one commit and (under the per-webhook cap) one
//! claim per delivery. Instead every finished attempt goes to this task, which writes whatever
//! has piled up while its previous write ran in one statement, then frees the batch's worker
//! slots and wakes the claimer once. Under light load a batch is a single attempt, so latency is
//! unchanged; under heavy load batches grow by themselves.
//!
//! Each attempt carries its worker slot (a semaphore permit) until it is recorded, so an
//! instance never claims more than it can record, and a database outage stops claiming instead
//! of piling results up in memory.

use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;

use crate::domain::DeliveryPolicy;
use crate::store::{FinishedAttempt, Store, StoreError, Wakeup};

/// The most attempts written by one statement.
const MAX_BATCH: usize = 256;
/// Pauses between tries of a write that failed; after the last one the attempts are left to
/// their leases (they are attempted again: at-least-once, nothing lost).
const RETRY_PAUSES_MS: [u64; 4] = [100, 500, 2000, 5000];

/// A finished attempt and the worker slot it holds until it is recorded.
pub struct Finished {
    /// What to record.
    pub attempt: FinishedAttempt,
    /// Released once recorded.
    pub slot: OwnedSemaphorePermit,
}

/// The sending side: attempts hand their result here.
pub type RecorderHandle = mpsc::UnboundedSender<Finished>;

/// Starts the recorder on `input` (the other end of the attempts' [`RecorderHandle`]s). It runs
/// until every handle is dropped and what they sent is recorded. `wake` is notified after a
/// batch whose endpoints have due work waiting: their slots and room under their caps were
/// freed, so a claim can take it now rather than at the next poll.
pub fn spawn(
    store: Store,
    policy: DeliveryPolicy,
    wake: Wakeup,
    // Unbounded on purpose: entries are bounded by the worker's slots, each holding a permit.
    mut input: mpsc::UnboundedReceiver<Finished>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while input.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let waiting = record(&store, &policy, &batch).await;
            crate::metrics::record_result_batch(batch.len());
            // Recorded (or left to their leases): free the slots, then claim again if there is
            // something to claim.
            for finished in batch.drain(..) {
                drop(finished.slot);
            }
            if waiting {
                wake.wake();
            }
        }
    })
}

/// Writes a batch, retrying through short outages, and tells whether its endpoints have due
/// work waiting (true when that is unknown). A batch the database refuses as such (an error
/// other than the connection, say a deadlock with an admin's change) is written attempt by
/// attempt, so one bad row cannot hold back the others.
async fn record(store: &Store, policy: &DeliveryPolicy, batch: &[Finished]) -> bool {
    let attempts: Vec<&FinishedAttempt> = batch.iter().map(|f| &f.attempt).collect();
    let single = attempts.len() == 1;
    match write(store, policy, &attempts, single).await {
        Ok(waiting) => waiting,
        Err(e) if !single && !e.is_unavailable() => {
            tracing::warn!(error = %e, attempts = attempts.len(), "a batch of results was refused; recording them one by one");
            for attempt in &attempts {
                // Errors are logged inside; such a delivery is retried after its lease.
                let _ = write(store, policy, &[attempt], true).await;
            }
            true
        }
        Err(_) => true,
    }
}

/// One statement for `attempts`; tried again while the database is unreachable, and after any
/// error when `persist` (a single attempt, with nothing left to split). Ok tells whether the
/// attempts' endpoints have due work waiting.
async fn write(
    store: &Store,
    policy: &DeliveryPolicy,
    attempts: &[&FinishedAttempt],
    persist: bool,
) -> Result<bool, StoreError> {
    let mut last_error = None;
    for pause in RETRY_PAUSES_MS {
        match store.record_attempts(attempts, policy).await {
            Ok(waiting) => return Ok(waiting),
            // Refused rather than unreachable: the caller splits the batch.
            Err(e) if !persist && !e.is_unavailable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, attempts = attempts.len(), "recording attempts failed; retrying");
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
    for attempt in attempts {
        tracing::error!(delivery_id = %attempt.claimed.id, "attempt not recorded; the delivery will be retried after its lease");
    }
    Err(last_error.unwrap_or_else(|| StoreError::Unavailable("no attempt made".into())))
}
