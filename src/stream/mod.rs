//! The live delivery log behind `WatchDeliveries`.
//!
//! Every change of a delivery is appended to the log in the same statement as the change, as
//! one batch per statement. The sequencer (one at a time across instances, by advisory lock)
//! gives committed batches dense, increasing cursor ranges and NOTIFYs. Each instance's [`UpdateHub`] reads new log
//! entries once and broadcasts them to its watchers through a bounded ring; a watcher that
//! falls behind (or notices a cursor gap) catches up from the table, so memory stays bounded and
//! a slow client never slows deliveries or other watchers.

pub mod alerts;
mod watcher;

pub use watcher::{EncodedUpdates, Updates, watch};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, watch as tokio_watch};

use bytes::{Bytes, BytesMut};

use crate::domain::Cursor;
use crate::shutdown::{Shutdown, ShutdownSender};
use crate::store::{SequencerRound, Store, StoreError, UpdateFilter, UpdateRecord, Wakeup};

/// Why a watcher's stream could not open, or ended. The API turns each into its status; the
/// messages are written for the client, who resumes or lists instead.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading the log failed (the database, most often unreachable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client's cursor is newer than anything in the log.
    #[error("after_cursor {cursor} is ahead of the delivery log (newest is {newest})")]
    AheadOfLog {
        /// The client's cursor.
        cursor: Cursor,
        /// The log's newest cursor.
        newest: Cursor,
    },
    /// The client's cursor was pruned: resuming would silently skip entries.
    #[error(
        "after_cursor {cursor} is older than the retained delivery log (oldest is {oldest}); \
         list deliveries instead and watch from now"
    )]
    Pruned {
        /// The client's cursor.
        cursor: Cursor,
        /// The log's oldest retained cursor.
        oldest: Cursor,
    },
    /// The instance shuts down; the client resumes after `resume` on another one.
    #[error("the server is shutting down; resume with after_cursor {resume}")]
    ShuttingDown {
        /// The cursor to resume after.
        resume: Cursor,
    },
    /// A read was cancelled because the runtime shuts down.
    #[error("the server is shutting down; resume with your last cursor")]
    Cancelled,
    /// A read panicked (a bug; logged where it happened).
    #[error("internal error; see the service logs")]
    Panicked,
}

/// Turns a log entry into the message watchers are sent, encoded: the API's wire format, which
/// this module does not know. Called once per entry, whatever the number of watchers. A watcher
/// sends several encoded messages as one chunk, one after the other, so the encoding must
/// delimit each message itself (gRPC's length prefix does).
pub type UpdateEncoder = Box<dyn Fn(&UpdateRecord) -> Bytes + Send + Sync>;

/// A log entry as the hub broadcasts it: what watchers filter on, and its message, encoded once
/// (by the hub's [`UpdateEncoder`]) for every watcher that gets it. The record itself is not
/// kept: the encoded message is all a watcher sends, and an entry's size is then about its
/// attempt's response body (at most 64 KiB) once, not twice.
#[derive(Debug)]
pub struct SharedUpdate {
    /// Position in the log.
    pub cursor: Cursor,
    /// The delivery's webhook.
    pub webhook_id: crate::domain::WebhookId,
    /// The delivery's function.
    pub function: Option<crate::domain::Function>,
    /// The delivery's status after the change (`None`: a webhook-level entry).
    pub status: Option<crate::domain::DeliveryStatus>,
    /// The message, as the encoder made it.
    pub encoded: Bytes,
}

impl SharedUpdate {
    fn new(record: &UpdateRecord, encoder: &UpdateEncoder) -> Self {
        Self {
            cursor: record.cursor,
            webhook_id: record.webhook_id,
            function: record.function,
            status: record.delivery_status(),
            encoded: encoder(record),
        }
    }

    /// Whether `filter` lets this entry through.
    pub fn passes(&self, filter: &UpdateFilter) -> bool {
        filter.admits(self.webhook_id, self.function, self.status)
    }
}

/// What a watcher's stream yields, made from log entries: chunks of the hub's encoded messages
/// ([`Encoded`], for the network) or one value per entry built from its record
/// ([`Converted`]). A stream item gathers messages until it is full or nothing more is ready.
pub trait UpdateForm: Send + Sync + 'static {
    /// One item of the stream.
    type Item: Send + 'static;
    /// The messages gathered for the next item.
    type Gathering: Default + Send;
    /// Adds the message of an entry read from the table.
    fn add_record(&self, hub: &UpdateHub, record: &UpdateRecord, into: &mut Self::Gathering);
    /// Adds the message of an entry from the hub's ring; `false` (nothing added) has the
    /// watcher read the entry from the table and use [`UpdateForm::add_record`].
    fn add_shared(&self, update: &SharedUpdate, into: &mut Self::Gathering) -> bool;
    /// Whether the item holds as much as one should: nothing more is added to it.
    fn is_full(&self, gathering: &Self::Gathering) -> bool;
    /// The item, `None` when nothing was added.
    fn finish(&self, gathering: Self::Gathering) -> Option<Self::Item>;
}

/// The hub's encoded messages, as they go on the wire, in chunks of up to about
/// [`Encoded::CHUNK_BYTES`]: every watcher copies the same bytes, and hands the transport one
/// chunk for all the messages that were ready, not one at a time (which cost the service
/// about 0.7 µs per message and watcher: with 100 watchers, more than half of its CPU).
#[derive(Debug, Clone, Copy, Default)]
pub struct Encoded;

impl Encoded {
    /// A chunk is handed over once it holds this much: the size at which tonic's own encoder
    /// yields, and at most one message (64 KiB and a little) beyond it.
    pub const CHUNK_BYTES: usize = 32 * 1024;
}

/// The messages of the chunk being gathered: the shared bytes themselves, copied once into a
/// buffer of the right size when the chunk is done (growing one buffer as messages came copied
/// most of them several times).
#[derive(Debug, Default)]
pub struct EncodedChunk {
    messages: Vec<Bytes>,
    len: usize,
}

impl EncodedChunk {
    fn push(&mut self, message: Bytes) {
        self.len += message.len();
        self.messages.push(message);
    }
}

impl UpdateForm for Encoded {
    type Item = Bytes;
    type Gathering = EncodedChunk;

    fn add_record(&self, hub: &UpdateHub, record: &UpdateRecord, into: &mut EncodedChunk) {
        into.push((hub.encoder)(record));
    }

    fn add_shared(&self, update: &SharedUpdate, into: &mut EncodedChunk) -> bool {
        into.push(update.encoded.clone());
        true
    }

    fn is_full(&self, gathering: &EncodedChunk) -> bool {
        gathering.len >= Self::CHUNK_BYTES
    }

    fn finish(&self, gathering: EncodedChunk) -> Option<Bytes> {
        match gathering.messages.len() {
            0 => None,
            // Already one buffer: no copy.
            1 => gathering.messages.into_iter().next(),
            _ => {
                let mut chunk = BytesMut::with_capacity(gathering.len);
                for message in &gathering.messages {
                    chunk.extend_from_slice(message);
                }
                Some(chunk.freeze())
            }
        }
    }
}

/// Messages built by a function from each record, one per item, for in-process callers that
/// want values, not bytes. The ring keeps no records, so such a stream reads every entry it
/// sends from the table: fine for a few in-process watchers, which is all there are (network
/// watchers take [`Encoded`]); nothing is encoded only to be decoded again.
#[derive(Debug, Clone, Copy)]
pub struct Converted<F>(pub F);

impl<F, T> UpdateForm for Converted<F>
where
    F: Fn(&UpdateRecord) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = T;
    type Gathering = Option<T>;

    fn add_record(&self, _hub: &UpdateHub, record: &UpdateRecord, into: &mut Option<T>) {
        *into = Some((self.0)(record));
    }

    fn add_shared(&self, _update: &SharedUpdate, _into: &mut Option<T>) -> bool {
        false
    }

    fn is_full(&self, gathering: &Option<T>) -> bool {
        gathering.is_some()
    }

    fn finish(&self, gathering: Option<T>) -> Option<T> {
        gathering
    }
}

/// The shortest time between two sequencer rounds of this instance: under load, updates are
/// moved in batches at most this often rather than one round per write. Watchers see an update
/// within about this delay.
const SEQUENCE_SPACING: Duration = Duration::from_millis(20);
/// How often the sequencer runs when this instance appended nothing: batches appended by other
/// instances are numbered by their own sequencers, so this is only the safety net.
const SEQUENCE_FALLBACK_INTERVAL: Duration = Duration::from_secs(1);
/// Batches of log entries numbered per sequencer statement.
const SEQUENCE_BATCH: i64 = 5000;
/// How often the sequencer also moves what the previous release's instances wrote to their
/// inbox (only during a rolling upgrade is there any).
const LEGACY_INBOX_INTERVAL: Duration = Duration::from_secs(1);
/// How often the hub reads the log when no notification arrives.
const READ_FALLBACK_INTERVAL: Duration = Duration::from_millis(500);
/// Log entries read per query.
const READ_BATCH: i64 = 1000;
/// Updates kept in the broadcast ring; a watcher further behind catches up from the table, on
/// its own, which costs the database a read per watcher. About 0.4 s of updates at 5,000
/// deliveries/s; an entry is its encoded message (typically under 1 KiB, at most about its
/// attempt's 64 KiB response body), shared by all watchers.
const RING_CAPACITY: usize = 4096;
/// How often old log entries are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// One instance's fan-out of the delivery log to its watchers.
pub struct UpdateHub {
    store: Store,
    ring: broadcast::Sender<Arc<SharedUpdate>>,
    /// The newest cursor read from the log (set before broadcasting it).
    newest: tokio_watch::Sender<Cursor>,
    /// Bumped once the entries of a read are all in the ring: watchers wait for this rather
    /// than for each entry, so that each takes the whole read in one chunk.
    published: tokio_watch::Sender<()>,
    /// Woken when the log grew: by this instance's sequencer, or (through the listener) by
    /// another instance's.
    wake: Wakeup,
    open_watchers: AtomicUsize,
    retention: Duration,
    /// Flips when the instance shuts down; watchers then end their streams.
    stopping: ShutdownSender,
    /// Encodes each entry once for every watcher (see [`SharedUpdate`]).
    encoder: UpdateEncoder,
}

impl UpdateHub {
    /// A hub over `store`, pruning log entries older than `retention`, encoding entries with
    /// `encoder` (the API's wire format, which this module does not know).
    pub fn new(store: Store, retention: Duration, encoder: UpdateEncoder) -> Arc<Self> {
        let (ring, _) = broadcast::channel(RING_CAPACITY);
        let (newest, _) = tokio_watch::channel(Cursor::START);
        let (published, _) = tokio_watch::channel(());
        Arc::new(Self {
            wake: store.wakeups().updates.clone(),
            store,
            ring,
            newest,
            published,
            open_watchers: AtomicUsize::new(0),
            retention,
            stopping: ShutdownSender::new(),
            encoder,
        })
    }

    /// How many WatchDeliveries streams are open on this instance.
    pub fn open_watchers(&self) -> usize {
        self.open_watchers.load(Ordering::Relaxed)
    }

    /// Runs the sequencer, the reader and the pruner until `shutdown` flips.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut stop = shutdown.clone();
        let hub = self.clone();
        let announce = async move {
            stop.recv().await;
            hub.stopping.send();
        };
        tokio::join!(
            announce,
            self.clone().sequence(shutdown.clone()),
            self.clone().read(shutdown.clone()),
            self.prune(shutdown),
        );
    }

    /// Runs a sequencer round whenever this instance appended to the log (at most every
    /// [`SEQUENCE_SPACING`]), and every [`SEQUENCE_FALLBACK_INTERVAL`] anyway. Polling every
    /// few milliseconds instead cost an idle instance about 150 statements a second.
    async fn sequence(self: Arc<Self>, mut shutdown: Shutdown) {
        let written = self.store.wakeups().appended.clone();
        let mut legacy_checked: Option<tokio::time::Instant> = None;
        loop {
            let legacy = legacy_checked.is_none_or(|at| at.elapsed() >= LEGACY_INBOX_INTERVAL);
            let round = self.store.sequence_updates(SEQUENCE_BATCH, legacy).await;
            if legacy && matches!(round, Ok(SequencerRound::Moved { .. })) {
                legacy_checked = Some(tokio::time::Instant::now());
            }
            let again_soon = match round {
                // A full round: there may be more right away.
                Ok(SequencerRound::Moved { batches, .. }) if batches as i64 >= SEQUENCE_BATCH => {
                    continue;
                }
                Ok(SequencerRound::Moved { .. }) => false,
                // Another instance is mid-round and may have missed our rows: try again soon.
                Ok(SequencerRound::Busy) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "sequencing delivery updates failed; retrying");
                    true
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(SEQUENCE_SPACING) => {}
                _ = shutdown.recv() => return,
            }
            if !again_soon {
                // A write during the round or the spacing left a permit (`notify_one`), so this
                // returns at once and nothing waits for the fallback.
                tokio::select! {
                    _ = written.wait() => {}
                    _ = tokio::time::sleep(SEQUENCE_FALLBACK_INTERVAL) => {}
                    _ = shutdown.recv() => return,
                }
            }
        }
    }

    async fn read(self: Arc<Self>, mut shutdown: Shutdown) {
        // Start at the log's end: a watcher without a cursor starts at "now".
        loop {
            match self.store.update_cursor_range().await {
                Ok((_, newest)) => {
                    self.newest.send_replace(newest);
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "reading the delivery log failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(READ_FALLBACK_INTERVAL) => {}
                _ = shutdown.recv() => return,
            }
        }
        loop {
            loop {
                let after = *self.newest.borrow();
                match self
                    .store
                    .read_updates(
                        after,
                        Cursor::new(i64::MAX),
                        &UpdateFilter::default(),
                        READ_BATCH,
                    )
                    .await
                {
                    Ok(updates) => {
                        let full = updates.len() as i64 == READ_BATCH;
                        let any = !updates.is_empty();
                        for update in updates {
                            // Publish the position first: a watcher subscribing now either gets
                            // this entry from the ring or reads it from the table.
                            self.newest.send_replace(update.cursor);
                            let _ = self
                                .ring
                                .send(Arc::new(SharedUpdate::new(&update, &self.encoder)));
                        }
                        if any {
                            self.published.send_replace(());
                        }
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the delivery log failed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.wait() => {}
                _ = tokio::time::sleep(READ_FALLBACK_INTERVAL) => {}
                _ = shutdown.recv() => return,
            }
        }
    }

    async fn prune(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            match self.store.prune_updates(self.retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "pruned the delivery update log"),
                Err(e) => tracing::warn!(error = %e, "pruning the delivery update log failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
                _ = shutdown.recv() => return,
            }
        }
    }
}

/// Counts an open watcher for as long as it lives.
struct WatcherGuard(Arc<UpdateHub>);

impl WatcherGuard {
    fn new(hub: Arc<UpdateHub>) -> Self {
        hub.open_watchers.fetch_add(1, Ordering::Relaxed);
        Self(hub)
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.open_watchers.fetch_sub(1, Ordering::Relaxed);
    }
}
