//! `WatchDeliveries` on the wire, each update encoded once for all its watchers.
//!
//! Through the generated `WebhookAdmin` server, every watcher converted and protobuf-encoded its
//! own copy of every update: with 100 watchers, a profile of the service (`perf record`, see
//! BENCHMARKS.md) showed about two thirds of its CPU in allocating, converting, encoding and
//! copying those identical messages. The hub now encodes each update once
//! ([`crate::stream::SharedUpdate`], with [`update_encoder`]), and this route, registered on the
//! RPC's own path in front of the generated server, sends those bytes as they are. tonic still
//! reads the request and writes the response's head; the body is this route's own
//! (`UpdatesBody`), one frame per chunk of the updates that were ready (each update keeps its
//! own gRPC length prefix), so a watcher costs a copy per update and a frame per chunk.
//! Same path, same messages on the wire, same auth layer around it; only the copies are gone.
//!
//! The route also caps the streams each caller has open ([`StreamSlots`]): a stream costs the
//! instance little (see `src/stream/watcher.rs`), but nothing else stopped one token from
//! opening thousands.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tonic::codegen::{Body, StdError};
use tonic::{Code, Status};

use super::admin::bad;
use super::auth::Caller;
use super::convert::{self, Reason};
use crate::domain::{Cursor, ValidationError, WebhookId};
use crate::proto::v1 as pb;
use crate::store::UpdateFilter;
use crate::stream::{
    Converted, Encoded, EncodedUpdates, StreamError, UpdateEncoder, UpdateForm, UpdateHub, Updates,
};

/// The RPC's path, which this route takes over from the generated server.
pub const WATCH_DELIVERIES_PATH: &str = "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries";

/// The largest request accepted (a `WatchDeliveriesRequest` is a few filters).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Validates a request and opens the watcher's stream, its messages made by `form`.
async fn open<F: UpdateForm>(
    hub: Arc<UpdateHub>,
    request: pb::WatchDeliveriesRequest,
    form: F,
) -> Result<Updates<F::Item>, Status> {
    let filter = UpdateFilter {
        webhook_id: match request.webhook_id.as_str() {
            "" => None,
            id => Some(WebhookId::parse("webhook_id", id).map_err(bad)?),
        },
        function: super::convert::function_filter("function", request.function).map_err(bad)?,
        statuses: super::convert::statuses(&request.statuses).map_err(bad)?,
        webhook_level_only: false,
    };
    let after = match request.after_cursor.trim() {
        "" => None,
        cursor => Some(
            cursor
                .parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .map(Cursor::new)
                .ok_or_else(|| {
                    bad(ValidationError::new(
                        "after_cursor",
                        "must be a cursor from a DeliveryUpdate (a decimal number)",
                    ))
                })?,
        ),
    };
    Ok(crate::stream::watch(hub, filter, after, form).await?)
}

/// Bytes before each gRPC message: its compressed flag and its length.
const GRPC_PREFIX: usize = 5;

/// The hub's encoder: a log entry as a protobuf-encoded `DeliveryUpdate` with its gRPC prefix
/// (not compressed, then the length), once per entry. Framed messages go on the wire one after
/// the other as they are, so a stream sends the updates that were ready together in one chunk.
pub fn update_encoder() -> UpdateEncoder {
    Box::new(|record| {
        let message = super::update_message(record).encode_to_vec();
        let mut framed = BytesMut::with_capacity(GRPC_PREFIX + message.len());
        framed.put_u8(0);
        // An update is at most its attempt's 64 KiB response body and some fields.
        framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
        framed.extend_from_slice(&message);
        framed.freeze()
    })
}

impl From<StreamError> for Status {
    /// The statuses a watcher sees: a store failure as every other RPC reports it, a cursor
    /// outside the log as OUT_OF_RANGE, the instance shutting down as UNAVAILABLE (the client
    /// resumes elsewhere with its cursor).
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::Store(error) => super::store_failure(error),
            StreamError::AheadOfLog { .. } | StreamError::Pruned { .. } => convert::error(
                Code::OutOfRange,
                Reason::CursorOutOfRange,
                error.to_string(),
                &[],
            ),
            StreamError::ShuttingDown { .. } | StreamError::Cancelled => convert::error(
                Code::Unavailable,
                Reason::ShuttingDown,
                error.to_string(),
                &[],
            ),
            StreamError::Panicked => {
                convert::error(Code::Internal, Reason::Internal, error.to_string(), &[])
            }
        }
    }
}

/// A watcher's messages with the stream's failures as statuses, as tonic sends them.
fn with_statuses<T>(
    updates: Updates<T>,
) -> impl futures_util::Stream<Item = Result<T, Status>> + Send + 'static
where
    T: Send + 'static,
{
    use futures_util::StreamExt;
    updates.map(|item| item.map_err(Status::from))
}

/// The `WatchDeliveries` route: a tower service for the RPC's path.
#[derive(Clone)]
pub struct WatchDeliveriesRoute {
    hub: Arc<UpdateHub>,
    slots: Arc<StreamSlots>,
}

impl WatchDeliveriesRoute {
    /// Serves watchers from `hub`, at most `max_per_caller` streams at once per caller (0: no
    /// limit; see [`StreamSlots`]). Clones share the count, so the gRPC port and the console,
    /// which serve the same routes, share it too.
    pub fn new(hub: Arc<UpdateHub>, max_per_caller: usize) -> Self {
        Self {
            hub,
            slots: Arc::new(StreamSlots::new(max_per_caller)),
        }
    }
}

/// Whom a stream counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SlotKey {
    /// A token, by its SHA-256 (from [`Caller`]).
    Token([u8; 32]),
    /// With authentication off: the client's IP address.
    Peer(IpAddr),
    /// With authentication off and no address known (not over TCP): one bucket for all.
    Unknown,
}

/// The open WatchDeliveries streams of each caller on this instance, capped: a credential's
/// token or API key, or, with authentication off, a client IP address.
#[derive(Debug)]
pub struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<SlotKey, usize>>,
}

impl StreamSlots {
    /// At most `max` streams per caller (0: no limit).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more stream of the caller of `request`, or RESOURCE_EXHAUSTED naming the
    /// limit. The slot is given back when it is dropped, with the stream that holds it.
    fn acquire<T>(self: &Arc<Self>, request: &tonic::Request<T>) -> Result<Option<Slot>, Status> {
        if self.max == 0 {
            return Ok(None);
        }
        let key = match request.extensions().get::<Caller>() {
            Some(Caller::Token(hash)) => SlotKey::Token(*hash),
            // Authentication is off (or the route runs without the auth layer).
            Some(Caller::Anonymous) | None => match request.remote_addr() {
                Some(addr) => SlotKey::Peer(addr.ip()),
                None => SlotKey::Unknown,
            },
        };
        // A poisoned lock only means a panic elsewhere mid-update; the counts are still whole.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            let per = match key {
                SlotKey::Token(_) => "credential",
                SlotKey::Peer(_) | SlotKey::Unknown => "client address (authentication is off)",
            };
            return Err(convert::error(
                Code::ResourceExhausted,
                Reason::TooManyStreams,
                format!(
                    "at most {} WatchDeliveries streams may be open per {per} on this instance \
                     (WEBHOOKS_MAX_WATCH_STREAMS_PER_CREDENTIAL); close one, or retry later",
                    self.max
                ),
                &[("limit", self.max.to_string())],
            ));
        }
        *count += 1;
        Ok(Some(Slot {
            slots: self.clone(),
            key,
        }))
    }
}

/// One open stream's place in [`StreamSlots`].
struct Slot {
    slots: Arc<StreamSlots>,
    key: SlotKey,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Callers come and go: keep only those with streams open.
                open.remove(&self.key);
            }
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

impl<B> tower_service::Service<http::Request<B>> for WatchDeliveriesRoute
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let hub = self.hub.clone();
        let slots = self.slots.clone();
        Box::pin(async move {
            // tonic reads the request and answers with the response's head (or the status the
            // call failed with); the stream itself leaves through `opened`, and its chunks of
            // framed messages become the body (see `UpdatesBody`).
            let opened: Arc<Mutex<Option<EncodedUpdates>>> = Arc::default();
            let opening = opened.clone();
            let method =
                tower::service_fn(move |call: tonic::Request<pb::WatchDeliveriesRequest>| {
                    let hub = hub.clone();
                    let slot = slots.acquire(&call);
                    let opening = opening.clone();
                    async move {
                        let slot = slot?;
                        let stream = open(hub, call.into_inner(), Encoded).await?;
                        // The slot goes with the stream: freed when it ends or is cancelled.
                        *opening.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(stream.holding(slot));
                        // tonic's body, never polled: `UpdatesBody` replaces it.
                        Ok::<_, Status>(tonic::Response::new(futures_util::stream::empty::<
                            Result<pb::DeliveryUpdate, Status>,
                        >()))
                    }
                });
            // The generated servers' codec: a request that does not decode is INVALID_ARGUMENT.
            let mut grpc = tonic::server::Grpc::new(super::codec::ProtoCodec::<
                pb::DeliveryUpdate,
                pb::WatchDeliveriesRequest,
            >::default())
            .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
            let response = grpc.server_streaming(method, request).await;
            let updates = opened.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ok(match updates {
                Some(updates) => {
                    response.map(|_| tonic::body::Body::new(UpdatesBody::new(updates)))
                }
                // The call failed: tonic's answer carries its status.
                None => response,
            })
        })
    }
}

/// The body of an open stream: each chunk of framed `DeliveryUpdate`s as one frame, then the
/// trailers with the stream's status (OK, or why it ended). tonic's own body would frame every
/// item as one message and hand the transport each on its own; a chunk holds every update that
/// was ready, up to [`Encoded::CHUNK_BYTES`].
struct UpdatesBody {
    updates: EncodedUpdates,
    /// The trailers were sent.
    ended: bool,
}

impl UpdatesBody {
    fn new(updates: EncodedUpdates) -> Self {
        Self {
            updates,
            ended: false,
        }
    }

    fn trailers(status: &Status) -> http_body::Frame<Bytes> {
        let mut trailers = http::HeaderMap::new();
        if let Err(e) = status.add_header(&mut trailers) {
            // Our own messages always encode; keep the code regardless.
            tracing::warn!(error = %e, "encoding the trailers of a WatchDeliveries stream");
            trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
        }
        http_body::Frame::trailers(trailers)
    }
}

impl http_body::Body for UpdatesBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        use futures_util::StreamExt;
        if self.ended {
            return Poll::Ready(None);
        }
        let ending = match self.updates.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                return Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
            }
            Poll::Ready(Some(Err(error))) => Status::from(error),
            Poll::Ready(None) => Status::ok(""),
        };
        self.ended = true;
        Poll::Ready(Some(Ok(Self::trailers(&ending))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// The generated server's `WatchDeliveries`, for in-process callers of
/// `WebhookAdmin::watch_deliveries` (network calls take [`WatchDeliveriesRoute`]): the same
/// updates as messages, converted from the log's records, never encoded and decoded again.
pub(crate) async fn in_process(
    hub: Arc<UpdateHub>,
    request: pb::WatchDeliveriesRequest,
) -> Result<
    impl futures_util::Stream<Item = Result<pb::DeliveryUpdate, Status>> + Send + 'static,
    Status,
> {
    let updates = open(hub, request, Converted(super::update_message)).await?;
    Ok(with_statuses(updates))
}
