//! One WatchDeliveries stream: catch up from the table after the caller's cursor, then follow
//! the hub's ring, falling back to the table whenever it missed something.
//!
//! Each item of the stream gathers what is ready: a page read from the table, or everything the
//! ring holds past the stream's position (up to the form's limit). A stream waits for the hub to
//! put a whole read in the ring, not for each entry, so one wake-up of a watcher sends a read's
//! updates together rather than one at a time.
//!
//! The stream is pulled, not pushed: nothing is read until the response body asks for the next
//! item, which hyper does only once HTTP/2 flow control let the previous chunk go. A client
//! that replays from cursor "0" and reads slowly (or not at all) therefore holds one small page
//! of the log at a time, whatever the log's size. An earlier design ran a task per stream that
//! read 1,000 rows at a time into a 256-message channel: each stalled replaying stream pinned
//! about a megabyte, and 100 of them a hundred megabytes. There is no task to outlive the
//! stream either: dropping it (the client went away) frees everything it held at once.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{broadcast, watch as tokio_watch};

use super::{SharedUpdate, StreamError, UpdateForm, UpdateHub, WatcherGuard};
use crate::domain::Cursor;
use crate::shutdown::Shutdown;
use crate::store::{UpdateFilter, UpdateRecord};

/// Log entries read from the table per query while catching up, and so the most a stream
/// buffers itself. About 32 KiB of typical updates, which is also the size at which the gRPC
/// server hands a chunk of messages to the transport; an update carrying an attempt's full
/// 64 KiB response body makes a page of at most 2 MiB, for as long as that page takes to send.
const CATCH_UP_PAGE: i64 = 32;

/// A watcher's stream of items (in the form its [`UpdateForm`] makes). It ends with
/// [`StreamError::ShuttingDown`] when the instance shuts down, or with the failure when catching
/// up from the table fails.
pub struct Updates<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T, StreamError>> + Send>>,
    /// Whatever must live exactly as long as the stream (see [`Updates::holding`]).
    held: Vec<Box<dyn Send>>,
}

/// A stream of chunks of the hub's encoded messages (the network's form, [`super::Encoded`]).
pub type EncodedUpdates = Updates<Bytes>;

impl<T> Updates<T> {
    /// The same stream, holding `guard` (a slot of a limit, say) until the stream is dropped:
    /// when it ends, or when the client cancels it.
    pub fn holding<G: Send + 'static>(mut self, guard: G) -> Self {
        self.held.push(Box::new(guard));
        self
    }
}

impl<T> Stream for Updates<T> {
    type Item = Result<T, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Opens a stream of the updates matching `filter`, starting after `after_cursor` (or at the
/// log's end when `None`), each item made by `form`. [`StreamError::Pruned`] or
/// [`StreamError::AheadOfLog`] when the cursor is older than the retained log or newer than the
/// log itself.
pub async fn watch<F: UpdateForm>(
    hub: Arc<UpdateHub>,
    filter: UpdateFilter,
    after_cursor: Option<Cursor>,
    form: F,
) -> Result<Updates<F::Item>, StreamError> {
    // Subscribe before reading the position, so nothing falls between the two.
    let ring = hub.ring.subscribe();
    let published = hub.published.subscribe();
    let newest = *hub.newest.borrow();
    let start = match after_cursor {
        None => newest,
        Some(cursor) => {
            let (oldest, newest_stored) = hub.store.update_cursor_range().await?;
            let newest = newest_stored.max(newest);
            if cursor > newest {
                return Err(StreamError::AheadOfLog { cursor, newest });
            }
            if oldest > Cursor::START && cursor.next() < oldest {
                return Err(StreamError::Pruned { cursor, oldest });
            }
            cursor
        }
    };
    let watcher = Watcher {
        stopping: hub.stopping.subscribe(),
        _guard: WatcherGuard::new(hub.clone()),
        hub,
        filter,
        form,
        position: start,
        // Catch up to what the hub has already read; the ring has what follows.
        catch_up_until: (start < newest).then_some(newest),
        page: VecDeque::new(),
        ring,
        published,
        ended: false,
    };
    let stream = futures_util::stream::unfold(watcher, |mut watcher| async move {
        let item = watcher.next().await?;
        Some((item, watcher))
    });
    Ok(Updates {
        inner: Box::pin(stream),
        held: Vec::new(),
    })
}

/// The state of one stream between two items.
struct Watcher<F: UpdateForm> {
    hub: Arc<UpdateHub>,
    filter: UpdateFilter,
    /// Makes each item sent.
    form: F,
    /// Every entry up to here was sent, or filtered out, or sits in `page`.
    position: Cursor,
    /// While catching up from the table: up to which cursor (inclusive).
    catch_up_until: Option<Cursor>,
    /// Entries read from the table, not sent yet (at most [`CATCH_UP_PAGE`]).
    page: VecDeque<UpdateRecord>,
    /// The hub's live entries; lags (and the stream catches up from the table) when the client
    /// is slower than the log grows.
    ring: broadcast::Receiver<Arc<SharedUpdate>>,
    /// Changes once the hub put a read's entries in the ring.
    published: tokio_watch::Receiver<()>,
    /// Flips when the instance shuts down.
    stopping: Shutdown,
    /// Set once the final item (an error) was returned.
    ended: bool,
    /// Counts the stream in the hub's gauge for as long as it lives.
    _guard: WatcherGuard,
}

/// How taking entries from the ring ended.
enum Taken {
    /// Nothing more is ready, or the item is full.
    Ready,
    /// The hub is gone: nothing more will come.
    Closed,
}

impl<F: UpdateForm> Watcher<F> {
    /// The next item, `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<F::Item, StreamError>> {
        loop {
            if self.ended {
                return None;
            }
            if self.stopping.is_shutdown() {
                self.ended = true;
                return Some(Err(StreamError::ShuttingDown {
                    resume: self.resume_cursor(),
                }));
            }
            let mut gathering = F::Gathering::default();
            // What was read from the table comes before anything in the ring.
            while !self.form.is_full(&gathering) {
                let Some(record) = self.page.pop_front() else {
                    break;
                };
                self.form.add_record(&self.hub, &record, &mut gathering);
            }
            let mut closed = false;
            if self.page.is_empty() && self.catch_up_until.is_none() {
                closed = matches!(self.take_from_ring(&mut gathering), Taken::Closed);
            }
            if let Some(item) = self.form.finish(gathering) {
                return Some(Ok(item));
            }
            if closed {
                return None;
            }
            if let Some(until) = self.catch_up_until {
                if self.position >= until {
                    self.catch_up_until = None;
                    continue;
                }
                // The item just returned is on its way to the transport: let the body hand it
                // over (the transport takes it when this stream is pending) before the next
                // page is read. Without this pause the next page would be read at once and
                // then held for as long as flow control keeps the body from being polled again.
                tokio::task::yield_now().await;
                if self.stopping.is_shutdown() {
                    continue;
                }
                match read_page(&self.hub, &self.filter, self.position, until).await {
                    Ok(updates) => {
                        self.position = match updates.last() {
                            // A full page: there may be more up to `until`.
                            Some(last) if updates.len() as i64 == CATCH_UP_PAGE => last.cursor,
                            // Nothing more matches up to `until`.
                            _ => until,
                        };
                        self.page = updates.into();
                    }
                    Err(error) => {
                        self.ended = true;
                        return Some(Err(error));
                    }
                }
                continue;
            }
            tokio::select! {
                // Something new in the ring (or the hub is gone: the ring says so).
                _ = self.published.changed() => {}
                // Checked at the top of the loop.
                _ = self.stopping.recv() => {}
            }
        }
    }

    /// Adds to `gathering` what the ring holds past `position`, until nothing more is ready,
    /// the item is full, or an entry must be read from the table (a gap in the cursors, a
    /// lagging receiver, a form that reads every entry): `catch_up_until` then says up to where.
    fn take_from_ring(&mut self, gathering: &mut F::Gathering) -> Taken {
        // Whatever the hub publishes after this wakes the wait for `published`, so nothing put
        // in the ring after the loop below found it empty waits for the next read.
        self.published.borrow_and_update();
        while !self.form.is_full(gathering) {
            match self.ring.try_recv() {
                Ok(update) => {
                    let cursor = update.cursor;
                    if cursor <= self.position {
                        continue;
                    }
                    if cursor > self.position.next() {
                        // Cursors are dense: a jump means we missed entries. Read them, and
                        // this one with them.
                        self.catch_up_until = Some(cursor);
                        return Taken::Ready;
                    }
                    if !update.passes(&self.filter) {
                        self.position = cursor;
                        continue;
                    }
                    if self.form.add_shared(&update, gathering) {
                        // The hub encoded it once; every watcher sends the same bytes.
                        self.position = cursor;
                    } else {
                        // This form reads it from the table (the ring keeps no records).
                        self.catch_up_until = Some(cursor);
                        return Taken::Ready;
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return Taken::Ready,
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.catch_up_until = Some(*self.hub.newest.borrow());
                    return Taken::Ready;
                }
                Err(broadcast::error::TryRecvError::Closed) => return Taken::Closed,
            }
        }
        Taken::Ready
    }

    /// The cursor a client resumes after: entries up to it were sent (or filtered out).
    fn resume_cursor(&self) -> Cursor {
        match self.page.front() {
            Some(record) => Cursor::new(record.cursor.get() - 1),
            None => self.position,
        }
    }
}

/// One page of log entries in (`after`, `until`] that pass `filter`, read by a task of its own.
/// The read then finishes, and gives its database connection back, even when the stream is not
/// polled meanwhile; dropping the stream aborts it.
async fn read_page(
    hub: &Arc<UpdateHub>,
    filter: &UpdateFilter,
    after: Cursor,
    until: Cursor,
) -> Result<Vec<UpdateRecord>, StreamError> {
    let store = hub.store.clone();
    let filter = filter.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        store
            .read_updates(after, until, &filter, CATCH_UP_PAGE)
            .await
    }));
    match task.await {
        Ok(result) => Ok(result?),
        Err(e) if e.is_panic() => {
            tracing::error!(error = %e, "reading the delivery log panicked");
            Err(StreamError::Panicked)
        }
        // Cancelled: only when the runtime shuts down.
        Err(_) => Err(StreamError::Cancelled),
    }
}

/// A spawned task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
