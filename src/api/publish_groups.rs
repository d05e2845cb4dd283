//! Single `PublishEvent` calls that arrive together are stored together.
//!
//! Each call used to be its own publish statement: its own plan, its own commit and its own
//! wait for the WAL flush. At a thousand calls a second those statements were most of
//! PostgreSQL's CPU, and the tail latency of every delivery came from that contention (see
//! BENCHMARKS.md). Here calls queue for a runner task, which takes every call waiting and
//! stores them with one statement, then answers each caller. Under light load a group is one
//! call, so nothing waits; under heavy load groups grow by themselves.
//!
//! Grouping changes no answer. The statement is atomic (all of the group stored, or none, and
//! every caller then gets the error), and each event is answered on its own: a reused
//! idempotency key refuses that call only, a repeat is answered as a repeat. Calls are stored
//! in the order they queued. A group the database refuses as such (an error other than
//! unavailability) is stored call by call, so one caller's problem cannot fail the others.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::delivery::Dispatcher;
use crate::domain::PublishedEvent;
use crate::store::{PublishOutcome, Store, StoreError};

/// Runners: groups being stored at once. One: groups grow with the load by themselves, calls
/// are stored strictly in the order they queued, and the runner never competes with itself for
/// the instance's turn to lease (see `Dispatcher::reserve`), so its deliveries go out at once.
const RUNNERS: usize = 1;
/// The most calls stored by one statement.
const MAX_GROUP: usize = 256;
/// Calls that may wait for a runner; beyond that, callers wait to queue (backpressure).
const QUEUE: usize = 4096;

/// A call waiting for its group, and where its answer goes.
struct Waiting {
    event: PublishedEvent,
    answer: oneshot::Sender<Result<PublishOutcome, StoreError>>,
}

/// The queue single publishes go through. Cheap to clone; the runners stop once every clone is
/// gone.
#[derive(Clone)]
pub struct PublishGroups {
    queue: mpsc::Sender<Waiting>,
}

impl PublishGroups {
    /// Starts the runners, storing with `store` and sending first attempts through
    /// `dispatcher` (when this instance has workers).
    pub fn start(store: Store, dispatcher: Option<Dispatcher>) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..RUNNERS {
            tokio::spawn(run(waiting.clone(), store.clone(), dispatcher.clone()));
        }
        Self { queue }
    }

    /// Stores `event` with whatever other calls are waiting, and answers for it alone.
    pub async fn publish(&self, event: PublishedEvent) -> Result<PublishOutcome, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { event, answer })
            .await
            .map_err(|_| StoreError::Unavailable("the service is shutting down".into()))?;
        answered.await.map_err(|_| {
            StoreError::Unavailable("the publish was interrupted; it may be retried".into())
        })?
    }
}

/// One runner: takes every waiting call (up to a group's size) and stores them together.
async fn run(
    waiting: Arc<Mutex<mpsc::Receiver<Waiting>>>,
    store: Store,
    dispatcher: Option<Dispatcher>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        // The lock is held only while waiting for calls; the next runner takes over as soon as
        // this one has its group.
        let taken = waiting.lock().await.recv_many(&mut group, MAX_GROUP).await;
        if taken == 0 {
            return;
        }
        let (events, answers): (Vec<_>, Vec<_>) =
            group.drain(..).map(|w| (w.event, w.answer)).unzip();
        match store_group(&store, dispatcher.as_ref(), &events).await {
            Ok(outcomes) => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    // A caller that gave up is not waiting: its event is stored all the same.
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) if events.len() > 1 && !e.is_unavailable() => {
                tracing::warn!(error = %e, calls = events.len(), "a group of publishes was refused; storing them one by one");
                for (event, answer) in events.iter().zip(answers) {
                    let outcome =
                        store_group(&store, dispatcher.as_ref(), std::slice::from_ref(event))
                            .await
                            .and_then(|mut o| {
                                o.pop().ok_or_else(|| {
                                    StoreError::Corrupt("no answer for a published event".into())
                                })
                            });
                    let _ = answer.send(outcome);
                }
            }
            Err(e) if answers.len() == 1 => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(e));
                }
            }
            Err(e) => {
                // Unavailable: every caller retries (nothing of the group was stored).
                let reason = e.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
        }
    }
}

/// Stores `events` in one statement, each answered on its own, and sends what it leased.
async fn store_group(
    store: &Store,
    dispatcher: Option<&Dispatcher>,
    events: &[PublishedEvent],
) -> Result<Vec<PublishOutcome>, StoreError> {
    let reservation = match dispatcher {
        Some(d) => d.reserve_waiting(events.len()).await,
        None => None,
    };
    let published = store
        .publish_each(events, reservation.as_ref().map(|r| r.lease()))
        .await?;
    if let (Some(dispatcher), Some(reservation)) = (dispatcher, reservation) {
        dispatcher.observe_fanout(published.max_fanout);
        dispatcher.dispatch(reservation, published.leased);
    }
    Ok(published.outcomes)
}
