//! `EventIngest`: internal services publish decisions. An answer means the event and its
//! deliveries are committed.

use tonic::{Code, Request, Response, Status};

use super::convert::{self, Reason};
use super::invalid_argument;
use crate::domain::{PublishedEvent, ValidationError};
use crate::proto::v1 as pb;
use crate::proto::v1::event_ingest_server::EventIngest;
use crate::store::{PublishOutcome, Store};

/// The most events one PublishEvents call may carry.
pub const MAX_BATCH: usize = 1000;

/// The ingest API.
#[derive(Clone)]
pub struct IngestService {
    store: Store,
    max_payload_bytes: usize,
}

impl IngestService {
    /// An ingest API over `store` (whose publish wakes this instance's delivery workers).
    pub fn new(store: Store, max_payload_bytes: usize) -> Self {
        Self {
            store,
            max_payload_bytes,
        }
    }

    /// Parses one event and checks the size of the body it would send.
    fn parse(
        &self,
        request: &pb::PublishEventRequest,
        prefix: &str,
    ) -> Result<PublishedEvent, ValidationError> {
        let event = super::convert::published_event(request, prefix)?;
        if event.body.len() > self.max_payload_bytes {
            return Err(ValidationError::new(
                format!("{prefix}request"),
                format!(
                    "the webhook body would be {} bytes; the limit is {} (WEBHOOKS_MAX_PAYLOAD_BYTES)",
                    event.body.len(),
                    self.max_payload_bytes
                ),
            ));
        }
        Ok(event)
    }

    async fn publish(
        &self,
        events: Vec<PublishedEvent>,
    ) -> Result<Vec<pb::PublishEventResponse>, Status> {
        let outcomes = self.store.publish(&events).await?;
        crate::metrics::record_published(
            outcomes
                .iter()
                .filter(|o| {
                    matches!(
                        o,
                        PublishOutcome::Stored {
                            duplicate: false,
                            ..
                        }
                    )
                })
                .count(),
        );
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                PublishOutcome::Stored {
                    event_id,
                    event_type,
                    delivery_ids,
                    duplicate,
                } => {
                    tracing::debug!(%event_id, %event_type, deliveries = delivery_ids.len(), duplicate, "event published");
                    Ok(pb::PublishEventResponse {
                        event_id: event_id.to_string(),
                        delivery_ids: delivery_ids.iter().map(ToString::to_string).collect(),
                        duplicate,
                        event_type,
                    })
                }
                PublishOutcome::KeyReused { idempotency_key } => Err(convert::error(
                    Code::AlreadyExists,
                    Reason::IdempotencyKeyReused,
                    format!(
                        "idempotency_key `{idempotency_key}` was already used for an event with different content"
                    ),
                    &[("idempotency_key", idempotency_key)],
                )),
            })
            .collect()
    }
}

#[tonic::async_trait]
impl EventIngest for IngestService {
    async fn publish_event(
        &self,
        request: Request<pb::PublishEventRequest>,
    ) -> Result<Response<pb::PublishEventResponse>, Status> {
        let event = self.parse(request.get_ref(), "")?;
        let mut answers = self.publish(vec![event]).await?;
        answers.pop().map(Response::new).ok_or_else(|| {
            tracing::error!("no answer for the published event");
            convert::internal()
        })
    }

    async fn publish_events(
        &self,
        request: Request<pb::PublishEventsRequest>,
    ) -> Result<Response<pb::PublishEventsResponse>, Status> {
        let request = request.into_inner();
        if request.events.is_empty() || request.events.len() > MAX_BATCH {
            return Err(invalid_argument(ValidationError::new(
                "events",
                format!(
                    "must hold 1 to {MAX_BATCH} events, this batch has {}",
                    request.events.len()
                ),
            )));
        }
        let events = request
            .events
            .iter()
            .enumerate()
            .map(|(i, event)| self.parse(event, &format!("events[{i}].")))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.publish(events).await?;
        Ok(Response::new(pb::PublishEventsResponse { results }))
    }
}
