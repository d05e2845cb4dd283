//! Publishing: an event and its deliveries are committed in one transaction before the caller
//! gets an answer, so nothing acknowledged can be lost.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Transaction};

use super::{ClaimedDelivery, DELIVERIES_CHANNEL, LEASE_LOCK, Store, StoreError};
use crate::domain::{
    ClaimToken, Decision, DeliveryId, DeliveryPolicy, EventId, PublishedEvent, WebhookId,
};

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

/// Direct dispatch: how many of a publish's new deliveries this instance can send at once (its
/// free worker slots), and the lease they are inserted under, so their first attempt needs no
/// claim. Only endpoints with a closed circuit and room under the cluster-wide cap get one.
#[derive(Debug, Clone)]
pub struct DirectLease {
    /// The most deliveries to lease (free worker slots).
    pub limit: usize,
    /// The claim token they are inserted with.
    pub token: ClaimToken,
    /// How long the lease runs; as a claim's, it must exceed the request timeout.
    pub lease: Duration,
    /// The cap per endpoint and the breaker threshold, as the claim applies them.
    pub policy: DeliveryPolicy,
    /// Wait for the cluster's turn to lease (the lease lock, `LEASE_LOCK` in `store`) rather
    /// than lease nothing when another transaction holds it.
    pub wait_for_turn: bool,
}

/// What a publish stored, and the deliveries it leased to this instance.
#[derive(Debug, Default)]
pub struct Published {
    /// The most deliveries one newly stored event of this publish made (skipped ones included).
    pub max_fanout: usize,
    /// One answer per event (or the one `KeyReused` answer of a refused batch).
    pub outcomes: Vec<PublishOutcome>,
    /// Deliveries inserted under [`DirectLease::token`], to be sent now by this instance.
    pub leased: Vec<ClaimedDelivery>,
    /// Whether some new delivery was left for a claim (this instance's worker is woken then).
    pub queued: bool,
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
/// [`publish_statement`], built once: every publish prepares (or finds cached) the same text.
static PUBLISH: std::sync::LazyLock<String> = std::sync::LazyLock::new(publish_statement);

fn publish_statement() -> String {
    let log = super::updates::append_updates(
        "delivery_id, webhook_id, function, kind, status, status_reason, next_attempt_at",
        "id, webhook_id, function, CASE status WHEN 'skipped' THEN 'skipped' ELSE 'created' END, \
         status, status_reason, CASE WHEN claim_token IS NULL THEN next_attempt_at ELSE created_at END",
        "inserted",
        "seq",
    );
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
           w.id AS webhook_id, w.deliver_once_per_request AS once, gen_random_uuid() AS delivery_id,
           -- Closed circuit: attempts may go out at once. Open: deliveries wait; half-open
           -- (open until a time now past): one probe at a time, by the claim.
           (w.circuit_open_until IS NULL AND w.consecutive_failures < $16::int) AS healthy,
           (w.circuit_open_until IS NULL OR w.circuit_open_until <= now()) AS sendable,
           CASE WHEN w.consecutive_failures >= $16::int THEN 1 ELSE $15::bigint END AS cap
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
busy AS (
    -- Each endpoint this publish routes to, and how many more attempts it may have in flight:
    -- its cap less the running leases of every instance (the cap is cluster-wide).
    SELECT e.webhook_id, e.healthy, e.sendable,
           e.cap - (SELECT count(*) FROM deliveries d
                    WHERE d.webhook_id = e.webhook_id AND d.status = 'pending'
                      AND d.claim_token IS NOT NULL AND d.next_attempt_at > now()) AS room
    FROM (SELECT DISTINCT webhook_id, healthy, sendable, cap FROM planned WHERE NOT skip) e
),
candidates AS (
    -- Direct dispatch ($12 > 0: this instance has that many free worker slots): new pending
    -- deliveries to healthy endpoints with room, none of them behind an earlier pending delivery
    -- of the same request (ordering per request, as the claim keeps it).
    SELECT p.delivery_id, p.webhook_id, p.ord,
           row_number() OVER (PARTITION BY p.webhook_id ORDER BY p.ord) AS nth,
           row_number() OVER (PARTITION BY p.webhook_id, p.request_id ORDER BY p.ord) AS nth_of_request
    FROM planned p JOIN busy b ON b.webhook_id = p.webhook_id
    WHERE $12::bigint > 0 AND NOT p.skip AND b.healthy AND b.room > 0
      AND (p.request_id = '' OR NOT EXISTS (
          SELECT 1 FROM deliveries q
          WHERE q.webhook_id = p.webhook_id AND q.request_id = p.request_id AND q.status = 'pending'))
),
leased AS (
    -- Inserted already leased to this instance ($13, for $14 seconds, attempt 1 counted as a
    -- claim counts it): the first attempt needs no claim statement.
    SELECT c.delivery_id
    FROM candidates c JOIN busy b ON b.webhook_id = c.webhook_id
    WHERE c.nth_of_request = 1 AND c.nth <= b.room
    ORDER BY c.ord
    LIMIT $12
),
inserted AS (
    INSERT INTO deliveries (id, webhook_id, event_id, event_type, function, request_id, status, status_reason,
                            next_attempt_at, claim_token, attempt_count)
    SELECT p.delivery_id, p.webhook_id, p.event_id, p.event_type, p.function, p.request_id,
           CASE WHEN p.skip THEN 'skipped' ELSE 'pending' END,
           CASE WHEN p.skip THEN 'deliver_once_per_request: this request was already delivered by an earlier event' ELSE '' END,
           CASE WHEN p.skip THEN NULL WHEN l.delivery_id IS NOT NULL THEN now() + make_interval(secs => $14::float8)
                ELSE now() END,
           CASE WHEN l.delivery_id IS NOT NULL THEN $13::uuid END,
           CASE WHEN l.delivery_id IS NOT NULL THEN 1 ELSE 0 END
    FROM planned p LEFT JOIN leased l ON l.delivery_id = p.delivery_id
    ORDER BY p.ord, p.webhook_id
    RETURNING *
),
-- A leased delivery is logged as due now, like any new one: its lease is not a schedule.
{log},
leased_here AS (
    SELECT webhook_id, count(*) AS leases FROM inserted WHERE claim_token IS NOT NULL GROUP BY webhook_id
),
queued AS (
    -- Whether a claim could take any of what was not sent at once. An endpoint at its cap (this
    -- statement's leases included) needs none now: recording one of its attempts looks for its
    -- waiting work (RECORD_ATTEMPTS).
    SELECT 1 FROM inserted i JOIN busy b ON b.webhook_id = i.webhook_id
    LEFT JOIN leased_here l ON l.webhook_id = i.webhook_id
    WHERE i.status = 'pending' AND i.claim_token IS NULL AND b.sendable
      AND b.room > coalesce(l.leases, 0)
    LIMIT 1
),
wake AS (
    SELECT pg_notify('{DELIVERIES_CHANNEL}', $11::text) FROM queued WHERE $10::bool
)
SELECT (SELECT coalesce(array_agg(id), '{{}}') FROM event) AS stored, (SELECT count(*) FROM wake) AS woke,
       (SELECT count(*) FROM queued) AS queued,
       i.event_id, i.id, i.seq, i.webhook_id, i.claim_token, i.event_type, i.attempt_count,
       i.schedule_position, i.next_trigger,
       w.destination_url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
       w.custom_headers, w.client_cert_pem, w.client_key, w.client_cert_subject, w.client_cert_issuer,
       w.client_cert_not_after, w.server_ca_pem, w.server_ca_subject, w.server_ca_issuer,
       w.server_ca_not_after, w.updated_at AS webhook_updated_at
FROM (SELECT 1) one
LEFT JOIN inserted i ON true
LEFT JOIN webhooks w ON w.id = i.webhook_id AND i.claim_token IS NOT NULL"
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
        Ok(self.publish_leasing(events, None).await?.outcomes)
    }

    /// [`Store::publish`], inserting up to `direct.limit` of the new deliveries already leased
    /// to this instance (see [`DirectLease`]). The leased ones come back only once committed;
    /// the caller must send them (or leave them to their lease). This instance's worker is woken
    /// only when something was left for a claim.
    pub async fn publish_leasing(
        &self,
        events: &[PublishedEvent],
        direct: Option<&DirectLease>,
    ) -> Result<Published, StoreError> {
        self.publish_with(events, direct, true).await
    }

    /// Stores independent events with one statement, as if each were published alone: every
    /// event is answered on its own (a reused key refuses that event only, nothing is rolled
    /// back for it), and up to `direct.limit` new deliveries are leased as in
    /// [`Store::publish_leasing`]. The statement is atomic: on an error nothing was stored. It
    /// runs in a transaction of its own only when it leases (the lease lock is held until
    /// commit); otherwise outside any, as a single publish does.
    pub async fn publish_each(
        &self,
        events: &[PublishedEvent],
        direct: Option<&DirectLease>,
    ) -> Result<Published, StoreError> {
        self.publish_with(events, direct, false).await
    }

    /// What [`Store::publish_leasing`] (`all_or_nothing`: a batch, rolled back when a key was
    /// reused) and [`Store::publish_each`] (independent events) share.
    async fn publish_with(
        &self,
        events: &[PublishedEvent],
        direct: Option<&DirectLease>,
        all_or_nothing: bool,
    ) -> Result<Published, StoreError> {
        let mut client = self.client().await?;
        let announce = self.should_announce();
        if direct.is_none() && (events.len() == 1 || !all_or_nothing) {
            // One statement is atomic by itself: no BEGIN/COMMIT round trips. (A repeat is
            // answered by reads that need no transaction.) Leasing needs the lease lock, held
            // until commit, and a batch may have to roll back: those take a transaction.
            let published = self
                .publish_events(&client, events, announce, None, all_or_nothing)
                .await?;
            self.published(&published);
            return Ok(published);
        }
        let tx = client.transaction().await?;
        let direct = lease_turn(&tx, direct).await?;
        let published = self
            .publish_events(&tx, events, announce, direct, all_or_nothing)
            .await?;
        if all_or_nothing
            && let Some(reused) = published
                .outcomes
                .iter()
                .find(|o| matches!(o, PublishOutcome::KeyReused { .. }))
        {
            // Dropping the transaction rolls back the whole batch, leases included.
            return Ok(Published {
                outcomes: vec![reused.clone()],
                ..Published::default()
            });
        }
        tx.commit().await?;
        self.published(&published);
        Ok(published)
    }

    /// After a publish committed: the sequencer has a batch to number, the worker maybe work to claim.
    fn published(&self, published: &Published) {
        self.appended_updates();
        if published.queued {
            self.wakeups().deliveries.wake();
        }
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
        self.appended_updates();
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

/// `direct` once this transaction holds the cluster's turn to lease (see [`LEASE_LOCK`]),
/// until it ends. Without [`DirectLease::wait_for_turn`], `None` when another transaction is
/// leasing: this publish then leases nothing rather than wait.
async fn lease_turn<'a>(
    tx: &Transaction<'_>,
    direct: Option<&'a DirectLease>,
) -> Result<Option<&'a DirectLease>, StoreError> {
    let Some(direct) = direct else {
        return Ok(None);
    };
    if direct.wait_for_turn {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_LOCK])
            .await?;
        return Ok(Some(direct));
    }
    let row = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&LEASE_LOCK])
        .await?;
    Ok(row.try_get::<_, bool>(0)?.then_some(direct))
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
         next_attempt_at) VALUES ($1, $2, $3, $4, $5, '', 'pending', now()) RETURNING *), {} \
         SELECT 1 FROM logged",
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

impl Store {
    /// Publishes events with [`PUBLISH`], then answers the events it did not store
    /// (keys seen before, in an earlier publish or earlier in this batch) as repeats. With
    /// `stop_at_reused` (a batch, which is all or nothing), the answers stop at the first
    /// `KeyReused` and the caller must roll back; without it every event gets its answer.
    async fn publish_events(
        &self,
        tx: &impl GenericClient,
        events: &[PublishedEvent],
        announce: bool,
        direct: Option<&DirectLease>,
        stop_at_reused: bool,
    ) -> Result<Published, StoreError> {
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
        let policy = direct.map(|d| d.policy.clone()).unwrap_or_default();
        let limit = direct.map_or(0, |d| i64::try_from(d.limit).unwrap_or(i64::MAX));
        let token = direct.map(|d| d.token);
        let lease_secs = direct.map_or(0.0, |d| d.lease.as_secs_f64());
        let statement = tx.prepare_cached(&PUBLISH).await?;
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
                    &self.wakeups().origin(),
                    &limit,
                    &token,
                    &lease_secs,
                    &policy.max_in_flight_per_webhook,
                    &policy.breaker_threshold,
                ],
            )
            .await?;
        let queued = match rows.first() {
            Some(row) => row.try_get::<_, i64>("queued")? > 0,
            None => false,
        };
        let stored: std::collections::HashSet<EventId> = match rows.first() {
            Some(row) => row
                .try_get::<_, Vec<EventId>>("stored")?
                .into_iter()
                .collect(),
            None => Default::default(),
        };
        let mut created: std::collections::HashMap<EventId, Vec<(i64, DeliveryId)>> =
            Default::default();
        let mut leased = Vec::new();
        let body_of: std::collections::HashMap<EventId, &str> =
            events.iter().map(|e| (e.id, e.body.as_str())).collect();
        for row in &rows {
            if let (Some(event_id), Some(id), Some(seq)) = (
                row.try_get::<_, Option<EventId>>("event_id")?,
                row.try_get::<_, Option<DeliveryId>>("id")?,
                row.try_get::<_, Option<i64>>("seq")?,
            ) {
                created.entry(event_id).or_default().push((seq, id));
                if let Some(token) = row.try_get::<_, Option<ClaimToken>>("claim_token")? {
                    let body = body_of.get(&event_id).copied().unwrap_or_default();
                    leased.push((seq, self.claimed_from_row(row, token, body.to_owned())?));
                }
            }
        }
        let max_fanout = created.values().map(Vec::len).max().unwrap_or(0);
        // In publish order, as a claim would take them.
        leased.sort_by_key(|(seq, _)| *seq);
        let leased = leased.into_iter().map(|(_, d)| d).collect();
        let mut outcomes = Vec::with_capacity(n);
        for event in events {
            if !stored.contains(&event.id) {
                let outcome = repeated(tx, event).await?;
                let reused = matches!(outcome, PublishOutcome::KeyReused { .. });
                outcomes.push(outcome);
                if reused && stop_at_reused {
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
        Ok(Published {
            max_fanout,
            outcomes,
            leased,
            queued,
        })
    }
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
