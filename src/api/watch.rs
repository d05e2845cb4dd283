//! `WatchDeliveries` on the wire, each update encoded once for all its watchers.
//!
//! Through the generated `WebhookAdmin` server, every watcher converted and protobuf-encoded its
//! own copy of every update: with 100 watchers, a profile of the service (`perf record`, see
//! BENCHMARKS.md) showed about two thirds of its CPU in allocating, converting, encoding and
//! copying those identical messages. The hub now encodes each update once
//! ([`crate::stream::SharedUpdate`]), and this route, registered on the RPC's own path in front
//! of the generated server, sends those bytes with a pass-through codec. Same path, same
//! messages on the wire, same auth layer around it; only the copies are gone.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, StdError};

use super::admin::{bad, parse_statuses};
use crate::domain::{Function, ValidationError, parse_id};
use crate::proto::v1 as pb;
use crate::store::UpdateFilter;
use crate::stream::{EncodedUpdates, UpdateHub};

/// The RPC's path, which this route takes over from the generated server.
pub const WATCH_DELIVERIES_PATH: &str = "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries";

/// The largest request accepted (a `WatchDeliveriesRequest` is a few filters).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Validates a request and opens the watcher's stream of encoded updates.
pub(crate) async fn open(
    hub: Arc<UpdateHub>,
    request: pb::WatchDeliveriesRequest,
) -> Result<EncodedUpdates, Status> {
    let filter = UpdateFilter {
        webhook_id: match request.webhook_id.as_str() {
            "" => None,
            id => Some(parse_id("webhook_id", id).map_err(bad)?),
        },
        function: Function::filter_from_proto("function", request.function).map_err(bad)?,
        statuses: parse_statuses(&request.statuses).map_err(bad)?,
    };
    let after = match request.after_cursor.trim() {
        "" => None,
        cursor => Some(
            cursor
                .parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .ok_or_else(|| {
                    bad(ValidationError::new(
                        "after_cursor",
                        "must be a cursor from a DeliveryUpdate (a decimal number)",
                    ))
                })?,
        ),
    };
    crate::stream::watch(hub, filter, after).await
}

/// The `WatchDeliveries` route: a tower service for the RPC's path.
#[derive(Clone)]
pub struct WatchDeliveriesRoute {
    hub: Arc<UpdateHub>,
}

impl WatchDeliveriesRoute {
    /// Serves watchers from `hub`.
    pub fn new(hub: Arc<UpdateHub>) -> Self {
        Self { hub }
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
        Box::pin(async move {
            let method =
                tower::service_fn(move |call: tonic::Request<pb::WatchDeliveriesRequest>| {
                    let hub = hub.clone();
                    async move {
                        Ok::<_, Status>(tonic::Response::new(open(hub, call.into_inner()).await?))
                    }
                });
            let mut grpc = tonic::server::Grpc::new(EncodedUpdateCodec)
                .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), None);
            Ok(grpc.server_streaming(method, request).await)
        })
    }
}

/// Decodes `WatchDeliveriesRequest`s and sends already-encoded `DeliveryUpdate`s as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedUpdateCodec;

impl Codec for EncodedUpdateCodec {
    type Encode = Bytes;
    type Decode = pb::WatchDeliveriesRequest;
    type Encoder = PassThroughEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PassThroughEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder
    }
}

/// Writes a message that is already protobuf-encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughEncoder;

impl Encoder for PassThroughEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// Decodes a `WatchDeliveriesRequest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = pb::WatchDeliveriesRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::WatchDeliveriesRequest::decode(src)
            .map(Some)
            .map_err(|e| {
                super::codec::undecodable(std::any::type_name::<pb::WatchDeliveriesRequest>(), &e)
            })
    }
}

/// The generated server's stream type for `WatchDeliveries`: the same updates, decoded again.
/// Only in-process callers of `WebhookAdmin::watch_deliveries` see it; network calls take
/// [`WatchDeliveriesRoute`].
pub(crate) fn decoded(
    stream: EncodedUpdates,
) -> impl futures_util::Stream<Item = Result<pb::DeliveryUpdate, Status>> + Send + 'static {
    use futures_util::StreamExt;
    stream.map(|item| {
        item.and_then(|bytes| {
            pb::DeliveryUpdate::decode(bytes)
                .map_err(|e| Status::internal(format!("re-reading an encoded update: {e}")))
        })
    })
}
