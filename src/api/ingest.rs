//! `EventIngest`: internal services publish decisions. An answer means the event and its
//! deliveries are committed.

use tonic::{Code, Request, Response, Status};

use super::convert::{self, Reason};
use super::invalid_argument;
use super::publish_groups::PublishGroups;
use crate::delivery::Dispatcher;
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
    /// This instance's worker, which sends the first attempts of what it publishes (none when
    /// the workers are off: everything then waits for a claim).
    dispatcher: Option<Dispatcher>,
    /// Single `PublishEvent` calls, stored in groups.
    singles: PublishGroups,
}

impl IngestService {
    /// An ingest API over `store` (whose publish wakes this instance's delivery workers when
    /// it leaves them work), sending first attempts through `dispatcher` when there is one.
    pub fn new(store: Store, max_payload_bytes: usize, dispatcher: Option<Dispatcher>) -> Self {
        Self {
            singles: PublishGroups::start(store.clone(), dispatcher.clone()),
            store,
            max_payload_bytes,
            dispatcher,
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

    /// Publishes a `PublishEvents` batch: one transaction, all or nothing.
    async fn publish_batch(
        &self,
        events: Vec<PublishedEvent>,
    ) -> Result<Vec<pb::PublishEventResponse>, Status> {
        let reservation = self
            .dispatcher
            .as_ref()
            .and_then(|d| d.reserve(events.len()));
        let published = self
            .store
            .publish_leasing(&events, reservation.as_ref().map(|r| r.lease()))
            .await?;
        // Committed: the leased deliveries go out now, beside the answer. (On an error the
        // reservation is dropped and its slots freed; nothing was leased.)
        if let (Some(dispatcher), Some(reservation)) = (&self.dispatcher, reservation) {
            dispatcher.observe_fanout(published.max_fanout);
            dispatcher.dispatch(reservation, published.leased);
        }
        answers(published.outcomes)
    }
}

/// The answers to stored events (or the error of the one refused).
fn answers(outcomes: Vec<PublishOutcome>) -> Result<Vec<pb::PublishEventResponse>, Status> {
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

#[tonic::async_trait]
impl EventIngest for IngestService {
    async fn publish_event(
        &self,
        request: Request<pb::PublishEventRequest>,
    ) -> Result<Response<pb::PublishEventResponse>, Status> {
        let event = self.parse(request.get_ref(), "")?;
        let outcome = self.singles.publish(event).await?;
        let mut answers = answers(vec![outcome])?;
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
        let results = self.publish_batch(events).await?;
        Ok(Response::new(pb::PublishEventsResponse { results }))
    }
}
