//! One WatchDeliveries stream: catch up from the table after the caller's cursor, then follow
//! the hub's ring, falling back to the table whenever it missed something.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{READ_BATCH, SharedUpdate, UpdateHub, WatcherGuard};
use crate::store::UpdateFilter;

/// Messages buffered per watcher before it stops reading (and later catches up from the table).
/// A buffered message is a reference to the hub's shared, encoded copy.
const WATCHER_BUFFER: usize = 256;

type Sink = mpsc::Sender<Result<Bytes, Status>>;

/// A watcher's stream: `DeliveryUpdate` messages, already protobuf-encoded.
pub type EncodedUpdates = ReceiverStream<Result<Bytes, Status>>;

/// Opens a stream of the updates matching `filter`, starting after `after_cursor` (or at the
/// log's end when `None`). OUT_OF_RANGE when the cursor is older than the retained log or newer
/// than the log itself.
pub async fn watch(
    hub: Arc<UpdateHub>,
    filter: UpdateFilter,
    after_cursor: Option<i64>,
) -> Result<EncodedUpdates, Status> {
    // Subscribe before reading the position, so nothing falls between the two.
    let ring = hub.ring.subscribe();
    let newest = *hub.newest.borrow();
    let start = match after_cursor {
        None => newest,
        Some(cursor) => {
            let (oldest, newest_stored) = hub
                .store
                .update_cursor_range()
                .await
                .map_err(crate::api::store_failure)?;
            if cursor > newest_stored.max(newest) {
                return Err(Status::out_of_range(format!(
                    "after_cursor {cursor} is ahead of the delivery log (newest is {})",
                    newest_stored.max(newest)
                )));
            }
            if oldest > 0 && cursor < oldest - 1 {
                return Err(Status::out_of_range(format!(
                    "after_cursor {cursor} is older than the retained delivery log (oldest is {oldest}); \
                     list deliveries instead and watch from now"
                )));
            }
            cursor
        }
    };
    let (sink, stream) = mpsc::channel(WATCHER_BUFFER);
    let guard = WatcherGuard::new(hub.clone());
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(reason) = follow(&hub, &filter, start, ring, &sink).await {
            tracing::debug!(reason, "watcher ended");
        }
    });
    Ok(ReceiverStream::new(stream))
}

/// Sends everything after `position`, forever; returns when the client goes away.
async fn follow(
    hub: &UpdateHub,
    filter: &UpdateFilter,
    mut position: i64,
    mut ring: broadcast::Receiver<Arc<SharedUpdate>>,
    sink: &Sink,
) -> Result<(), &'static str> {
    let mut stopping = hub.stopping.subscribe();
    // Catch up to what the hub has already read.
    let newest = *hub.newest.borrow();
    position = catch_up(hub, filter, position, newest, sink).await?;
    loop {
        let received = tokio::select! {
            received = ring.recv() => received,
            _ = sink.closed() => return Err("client went away"),
            _ = stopping.changed() => {
                let _ = sink
                    .send(Err(Status::unavailable(format!(
                        "the server is shutting down; resume with after_cursor {position}"
                    ))))
                    .await;
                return Err("server shutting down");
            }
        };
        match received {
            Ok(update) => {
                let cursor = update.cursor;
                if cursor <= position {
                    continue;
                }
                if cursor > position + 1 {
                    // Cursors are dense: a jump means we missed entries. Read them.
                    catch_up(hub, filter, position, cursor - 1, sink).await?;
                }
                if update.passes(filter) {
                    // The hub encoded it once; every watcher sends the same bytes.
                    send(sink, update.encoded.clone()).await?;
                }
                position = cursor;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let newest = *hub.newest.borrow();
                position = catch_up(hub, filter, position, newest, sink).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Err("hub stopped"),
        }
    }
}

/// Sends the entries in (`from`, `until`] from the table; returns the new position.
async fn catch_up(
    hub: &UpdateHub,
    filter: &UpdateFilter,
    from: i64,
    until: i64,
    sink: &Sink,
) -> Result<i64, &'static str> {
    let mut position = from;
    while position < until {
        let updates = match hub
            .store
            .read_updates(position, until, filter, READ_BATCH)
            .await
        {
            Ok(updates) => updates,
            Err(e) => {
                let _ = sink.send(Err(crate::api::store_failure(e))).await;
                return Err("database failure while catching up");
            }
        };
        let Some(last) = updates.last().map(|u| u.cursor) else {
            // Nothing (more) matches up to `until`.
            return Ok(until);
        };
        for update in &updates {
            send(sink, super::encode(update)).await?;
        }
        position = if (updates.len() as i64) < READ_BATCH {
            until
        } else {
            last
        };
    }
    Ok(position.max(until))
}

async fn send(sink: &Sink, encoded: Bytes) -> Result<(), &'static str> {
    sink.send(Ok(encoded)).await.map_err(|_| "client went away")
}
