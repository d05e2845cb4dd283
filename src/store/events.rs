//! Publishing: an event and its deliveries are committed in one transaction before the caller
//! gets an answer, so nothing acknowledged can be lost.

use deadpool_postgres::{GenericClient, Transaction};

use super::{DELIVERIES_CHANNEL, Store, StoreError};
use crate::domain::{Decision, DeliveryId, EventId, PublishedEvent, WebhookId};

/// The answer to one published event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Stored now (or stored earlier with the same key and content: `duplicate`).
    Stored {
        /// The event's id (the original one for a duplicate).
        event_id: EventId,
        /// Event type.
        event_type: String,
        /// Deliveries created for it, skipped ones included, in creation order.
        delivery_ids: Vec<DeliveryId>,
        /// True when this repeats an earlier publish.
        duplicate: bool,
    },
    /// The idempotency key was used before for different content. Nothing was stored.
    KeyReused {
        /// The reused key.
        idempotency_key: String,
    },
}

/// Stores events, routes them and creates their deliveries in ONE statement, so a publish (of
/// one event or a batch) is one round trip and atomic by itself: every enabled webhook of an
/// event's function whose selection matches gets a delivery; a once-per-request webhook that
/// already had a delivery for the request gets a skipped one (the `once_per_request` primary key
/// decides "first" race-free across instances). Nothing is routed for an idempotency key that
/// already exists. Other instances' workers are woken with NOTIFY (delivered on commit, carrying this
/// instance's origin `$11`) when `$10`.
///
/// The events come as arrays (`ord` is an event's position in the batch). Events,
/// once-per-request choices and deliveries are inserted in batch order, so a batch behaves
/// exactly like its events published one after the other: the first event of a request wins a
/// once-per-request webhook, deliveries are numbered in publish order, and a key repeated within
/// the batch is stored once (the repeat is answered afterwards, like any other repeat). Returns
/// one row per created delivery, each carrying the ids of the events stored. One statement per
/// batch instead of one per event: about three times the events per second (see BENCHMARKS.md).
fn publish_statement() -> String {
    format!(
        "
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::bytea[],
                         $8::text[], $9::timestamptz[])
        WITH ORDINALITY AS t(id, function, node, request_id, event_type, idempotency_key, content_hash, body,
                             occurred_at, ord)
),
event AS (
    INSERT INTO events (id, idempotency_key, content_hash, event_type, function, request_id, body, occurred_at)
    SELECT id, idempotency_key, content_hash, event_type, function, request_id, body, occurred_at
    FROM input ORDER BY ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
),
matched AS (
    SELECT i.ord, i.id AS event_id, i.function, i.request_id, i.event_type,
           w.id AS webhook_id, w.deliver_once_per_request AS once, gen_random_uuid() AS delivery_id
    FROM input i
    JOIN event e ON e.id = i.id
    JOIN webhooks w ON w.function = i.function AND w.enabled AND w.deleted_at IS NULL
      AND ((i.node IS NOT NULL AND i.node = ANY (w.approval_nodes)) OR (i.node IS NULL AND w.on_rejection))
),
firsts AS (
    INSERT INTO once_per_request (webhook_id, request_id, delivery_id)
    SELECT webhook_id, request_id, delivery_id FROM matched WHERE once ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING delivery_id
),
planned AS (
    SELECT m.*, (m.once AND NOT EXISTS (SELECT 1 FROM firsts f WHERE f.delivery_id = m.delivery_id)) AS skip
    FROM matched m
),
inserted AS (
    INSERT INTO deliveries (id, webhook_id, event_id, event_type, function, request_id, status, status_reason, next_attempt_at)
    SELECT delivery_id, webhook_id, event_id, event_type, function, request_id,
           CASE WHEN skip THEN 'skipped' ELSE 'pending' END,
           CASE WHEN skip THEN 'deliver_once_per_request: this request was already delivered by an earlier event' ELSE '' END,
           CASE WHEN skip THEN NULL ELSE now() END
    FROM planned
    ORDER BY ord, webhook_id
    RETURNING *
),
logged AS (
    INSERT INTO delivery_update_inbox (delivery_id, webhook_id, function, kind, status, status_reason, next_attempt_at)
    SELECT id, webhook_id, function, CASE status WHEN 'skipped' THEN 'skipped' ELSE 'created' END,
           status, status_reason, next_attempt_at
    FROM inserted
    ORDER BY seq
),
wake AS (
    SELECT pg_notify('{DELIVERIES_CHANNEL}', $11::text)
    FROM (SELECT 1 FROM inserted WHERE status = 'pending' AND $10::bool LIMIT 1) pending
)
SELECT (SELECT coalesce(array_agg(id), '{{}}') FROM event) AS stored, (SELECT count(*) FROM wake) AS woke,
       i.event_id, i.id, i.seq
FROM (SELECT 1) one
LEFT JOIN inserted i ON true"
    )
}

/// Other instances are woken with NOTIFY at most this often by one instance's publishes: every
/// NOTIFY takes a database-wide lock at commit, which would serialise concurrent publishes. The
/// publishing instance wakes its own workers in-process on every publish (its own NOTIFY does not
/// wake them again: see `notify.rs`), and every instance
/// polls, so a skipped announcement costs at most a poll interval on another instance.
const ANNOUNCE_EVERY_MS: u64 = 20;

impl Store {
    /// Whether this publish should NOTIFY the other instances (see [`ANNOUNCE_EVERY_MS`]).
    fn should_announce(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.last_announce.load(Ordering::Relaxed);
        now.saturating_sub(last) >= ANNOUNCE_EVERY_MS
            && self
                .last_announce
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Stores events and their deliveries in one transaction and wakes the workers. Either every
    /// event is stored (or recognised as a repeat) or, when a key was reused for other content,
    /// nothing is.
    pub async fn publish(
        &self,
        events: &[PublishedEvent],
    ) -> Result<Vec<PublishOutcome>, StoreError> {
        let mut client = self.client().await?;
        let announce = self.should_announce();
        if events.len() == 1 {
            // One statement is atomic by itself: no BEGIN/COMMIT round trips. (A repeat is
            // answered by reads that need no transaction.)
            let outcomes =
                publish_events(&client, events, announce, self.wakeups().origin()).await?;
            self.wrote_inbox();
            self.wakeups().deliveries.wake();
            return Ok(outcomes);
        }
        let tx = client.transaction().await?;
        let outcomes = publish_events(&tx, events, announce, self.wakeups().origin()).await?;
        if let Some(reused) = outcomes
            .iter()
            .find(|o| matches!(o, PublishOutcome::KeyReused { .. }))
        {
            // Dropping the transaction rolls back the whole batch.
            return Ok(vec![reused.clone()]);
        }
        tx.commit().await?;
        self.wrote_inbox();
        self.wakeups().deliveries.wake();
        Ok(outcomes)
    }

    /// Creates a `webhook.test` event and its one pending delivery to `webhook_id`.
    pub async fn enqueue_test_event(
        &self,
        webhook_id: WebhookId,
        event: &PublishedEvent,
        context: &crate::domain::RequestContext,
    ) -> Result<DeliveryId, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let delivery_id = self
            .enqueue_test_event_in(&tx, webhook_id, event, context)
            .await?;
        tx.commit().await?;
        self.wrote_inbox();
        self.wakeups().deliveries.wake();
        Ok(delivery_id)
    }

    /// [`Store::enqueue_test_event`] in `tx` (a transaction of a request id), with its audit
    /// row; whoever commits `tx` wakes this instance's worker afterwards.
    pub async fn enqueue_test_event_in(
        &self,
        tx: &Transaction<'_>,
        webhook_id: WebhookId,
        event: &PublishedEvent,
        context: &crate::domain::RequestContext,
    ) -> Result<DeliveryId, StoreError> {
        insert_event(tx, event).await?;
        let delivery_id = insert_single_delivery(tx, webhook_id, event).await?;
        self.notify_deliveries(tx).await?;
        let diff = serde_json::json!({
            "delivery_id": delivery_id.to_string(),
            "event_id": event.id.to_string(),
        });
        super::audit::append(
            tx,
            &context.audit(
                crate::domain::AuditAction::TestEventSent,
                "webhook",
                webhook_id,
                diff,
            ),
        )
        .await?;
        Ok(delivery_id)
    }
}

/// One pending delivery of `event` (already stored) to `webhook_id`, logged as created: a test
/// ping, or an operational webhook.
pub(super) async fn insert_single_delivery(
    tx: &Transaction<'_>,
    webhook_id: WebhookId,
    event: &PublishedEvent,
) -> Result<DeliveryId, StoreError> {
    let delivery_id = DeliveryId::now_v7();
    let sql = format!(
        "WITH changed AS (INSERT INTO deliveries (id, webhook_id, event_id, event_type, function, request_id, status, \
         next_attempt_at) VALUES ($1, $2, $3, $4, $5, '', 'pending', now()) RETURNING *) {}",
        super::deliveries::log_changed(crate::domain::UpdateKind::Created)
    );
    tx.execute(
        &sql,
        &[
            &delivery_id,
            &webhook_id,
            &event.id,
            &event.event_type,
            &event.function.as_str(),
        ],
    )
    .await?;
    Ok(delivery_id)
}

/// Stores `event` unless its idempotency key is taken; true when stored.
pub(super) async fn insert_event(
    tx: &Transaction<'_>,
    event: &PublishedEvent,
) -> Result<bool, StoreError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO events (id, idempotency_key, content_hash, event_type, function, request_id, body, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &statement,
            &[
                &event.id,
                &event.idempotency_key,
                &event.content_hash,
                &event.event_type,
                &event.function.as_str(),
                &event.request_id,
                &event.body,
                &event.occurred_at,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Publishes events with [`publish_statement`], then answers the events it did not store
/// (keys seen before, in an earlier publish or earlier in this batch) as repeats. A `KeyReused`
/// answer means the caller must roll back.
async fn publish_events(
    tx: &impl GenericClient,
    events: &[PublishedEvent],
    announce: bool,
    origin: &str,
) -> Result<Vec<PublishOutcome>, StoreError> {
    let n = events.len();
    let mut ids = Vec::with_capacity(n);
    let mut functions = Vec::with_capacity(n);
    let mut nodes: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut request_ids = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut occurred = Vec::with_capacity(n);
    for event in events {
        ids.push(event.id);
        functions.push(event.function.as_str());
        nodes.push(match event.decision {
            Decision::Approved { node } => Some(node as i32),
            Decision::Rejected => None,
        });
        request_ids.push(event.request_id.as_str());
        event_types.push(event.event_type.as_str());
        keys.push(event.idempotency_key.as_str());
        hashes.push(event.content_hash.as_slice());
        bodies.push(event.body.as_str());
        occurred.push(event.occurred_at);
    }
    let statement = tx.prepare_cached(&publish_statement()).await?;
    let rows = tx
        .query(
            &statement,
            &[
                &ids,
                &functions,
                &nodes,
                &request_ids,
                &event_types,
                &keys,
                &hashes,
                &bodies,
                &occurred,
                &announce,
                &origin,
            ],
        )
        .await?;
    let stored: std::collections::HashSet<EventId> = match rows.first() {
        Some(row) => row
            .try_get::<_, Vec<EventId>>("stored")?
            .into_iter()
            .collect(),
        None => Default::default(),
    };
    let mut created: std::collections::HashMap<EventId, Vec<(i64, DeliveryId)>> =
        Default::default();
    for row in &rows {
        if let (Some(event_id), Some(id), Some(seq)) = (
            row.try_get::<_, Option<EventId>>("event_id")?,
            row.try_get::<_, Option<DeliveryId>>("id")?,
            row.try_get::<_, Option<i64>>("seq")?,
        ) {
            created.entry(event_id).or_default().push((seq, id));
        }
    }
    let mut outcomes = Vec::with_capacity(n);
    for event in events {
        if !stored.contains(&event.id) {
            let outcome = repeated(tx, event).await?;
            let reused = matches!(outcome, PublishOutcome::KeyReused { .. });
            outcomes.push(outcome);
            if reused {
                break;
            }
            continue;
        }
        let mut deliveries = created.remove(&event.id).unwrap_or_default();
        deliveries.sort_by_key(|(seq, _)| *seq);
        outcomes.push(PublishOutcome::Stored {
            event_id: event.id,
            event_type: event.event_type.clone(),
            delivery_ids: deliveries.into_iter().map(|(_, id)| id).collect(),
            duplicate: false,
        });
    }
    Ok(outcomes)
}

/// The answer to a key seen before: the original answer when the content is the same.
async fn repeated(
    client: &impl GenericClient,
    event: &PublishedEvent,
) -> Result<PublishOutcome, StoreError> {
    let row = client
        .query_one(
            "SELECT id, content_hash, event_type FROM events WHERE idempotency_key = $1",
            &[&event.idempotency_key],
        )
        .await?;
    let hash: Vec<u8> = row.try_get("content_hash")?;
    if hash != event.content_hash {
        return Ok(PublishOutcome::KeyReused {
            idempotency_key: event.idempotency_key.clone(),
        });
    }
    let event_id: EventId = row.try_get("id")?;
    let rows = client
        .query(
            "SELECT id FROM deliveries WHERE event_id = $1 ORDER BY seq",
            &[&event_id],
        )
        .await?;
    let delivery_ids = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    Ok(PublishOutcome::Stored {
        event_id,
        event_type: row.try_get("event_type")?,
        delivery_ids,
        duplicate: true,
    })
}
