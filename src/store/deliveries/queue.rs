//! Deliveries as a work queue: claiming due deliveries under a lease, recording finished attempts
//! in batches, and putting deliveries back in the queue (resend, recover).

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{COLUMNS, DeliveryRecord, delivery_from_row, headers_to_json, log_changed, stored};
use crate::domain::{
    AttemptErrorKind, AttemptId, AttemptTrigger, AuditAction, ClaimToken, CustomHeaders,
    DeliveryId, DeliveryPolicy, DestinationTls, Outcome, RequestContext, Secret, UpdateKind,
    WebhookId,
};
use crate::store::{LEASE_LOCK, Store, StoreError, audit};

/// A delivery a worker holds a lease on, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: DeliveryId,
    /// Webhook id.
    pub webhook_id: WebhookId,
    /// This claim's fencing token.
    pub claim_token: ClaimToken,
    /// The number this attempt gets.
    pub attempt_number: i32,
    /// Failed attempts so far on the current retry schedule.
    pub schedule_position: i32,
    /// What triggered this attempt.
    pub trigger: AttemptTrigger,
    /// Event type.
    pub event_type: String,
    /// The body to send.
    pub body: String,
    /// Where to send it (read at claim time: edits apply from the next attempt).
    pub destination_url: String,
    /// Current secret first, then the previous one during a rotation's grace period.
    pub secrets: Vec<Secret>,
    /// The webhook's custom request headers (opened; their `Debug` hides the values).
    pub headers: CustomHeaders,
    /// The webhook's client certificate and private CA, when it has either.
    pub tls: Option<DestinationTls>,
}

/// An attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// Start.
    pub started_at: OffsetDateTime,
    /// How long it took.
    pub duration: Duration,
    /// URL.
    pub request_url: String,
    /// Headers sent.
    pub request_headers: Vec<(String, String)>,
    /// Status received.
    pub response_status: Option<u16>,
    /// Headers received.
    pub response_headers: Vec<(String, String)>,
    /// Body received (capped).
    pub response_body: String,
    /// Whether the body was cut.
    pub response_body_truncated: bool,
    /// Failure kind.
    pub error_kind: Option<AttemptErrorKind>,
    /// Failure description.
    pub error_message: String,
}

/// An attempt that has happened and waits to be recorded with its outcome.
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    /// The attempt's id, chosen once, so recording it again after a lost acknowledgement is a
    /// no-op.
    pub attempt_id: AttemptId,
    /// The claim it was made under.
    pub claimed: ClaimedDelivery,
    /// What was sent and received.
    pub attempt: NewAttempt,
    /// What it leaves the delivery as.
    pub outcome: Outcome,
    /// Disable the webhook with this reason (the endpoint answered 410 Gone).
    pub disable: Option<String>,
}

/// A batch of finished attempts as one array per column, the shape `RECORD_ATTEMPTS` unnests.
struct AttemptColumns<'a> {
    attempt_id: Vec<AttemptId>,
    delivery_id: Vec<DeliveryId>,
    attempt_number: Vec<i32>,
    trigger: Vec<&'static str>,
    started_at: Vec<OffsetDateTime>,
    duration_us: Vec<i64>,
    request_url: Vec<&'a str>,
    request_headers: Vec<Value>,
    response_status: Vec<Option<i32>>,
    response_headers: Vec<Value>,
    response_body: Vec<&'a str>,
    response_body_truncated: Vec<bool>,
    error_kind: Vec<Option<&'static str>>,
    error_message: Vec<&'a str>,
    status: Vec<&'static str>,
    status_reason: Vec<&'a str>,
    schedule_position: Vec<i32>,
    delay_secs: Vec<f64>,
    claim_token: Vec<ClaimToken>,
    succeeded: Vec<bool>,
    gone_reason: Vec<Option<&'a str>>,
    webhook_id: Vec<WebhookId>,
}

impl<'a> AttemptColumns<'a> {
    fn from_batch(batch: &[&'a FinishedAttempt]) -> Self {
        let n = batch.len();
        let mut c = Self {
            attempt_id: Vec::with_capacity(n),
            delivery_id: Vec::with_capacity(n),
            attempt_number: Vec::with_capacity(n),
            trigger: Vec::with_capacity(n),
            started_at: Vec::with_capacity(n),
            duration_us: Vec::with_capacity(n),
            request_url: Vec::with_capacity(n),
            request_headers: Vec::with_capacity(n),
            response_status: Vec::with_capacity(n),
            response_headers: Vec::with_capacity(n),
            response_body: Vec::with_capacity(n),
            response_body_truncated: Vec::with_capacity(n),
            error_kind: Vec::with_capacity(n),
            error_message: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            status_reason: Vec::with_capacity(n),
            schedule_position: Vec::with_capacity(n),
            delay_secs: Vec::with_capacity(n),
            claim_token: Vec::with_capacity(n),
            succeeded: Vec::with_capacity(n),
            gone_reason: Vec::with_capacity(n),
            webhook_id: Vec::with_capacity(n),
        };
        for finished in batch {
            let claimed = &finished.claimed;
            let attempt = &finished.attempt;
            let (reason, position, delay) = match &finished.outcome {
                Outcome::Succeeded => ("", claimed.schedule_position, 0.0),
                Outcome::RetryAfter { delay, reason } => (
                    reason.as_str(),
                    claimed.schedule_position + 1,
                    delay.as_secs_f64(),
                ),
                Outcome::FailedForGood { reason } => {
                    (reason.as_str(), claimed.schedule_position + 1, 0.0)
                }
            };
            let status = finished.outcome.status().as_str();
            c.attempt_id.push(finished.attempt_id);
            c.delivery_id.push(claimed.id);
            c.attempt_number.push(claimed.attempt_number);
            c.trigger.push(claimed.trigger.as_str());
            c.started_at.push(attempt.started_at);
            c.duration_us
                .push(i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX));
            c.request_url.push(&attempt.request_url);
            c.request_headers
                .push(headers_to_json(&attempt.request_headers));
            c.response_status
                .push(attempt.response_status.map(i32::from));
            c.response_headers
                .push(headers_to_json(&attempt.response_headers));
            c.response_body.push(&attempt.response_body);
            c.response_body_truncated
                .push(attempt.response_body_truncated);
            c.error_kind
                .push(attempt.error_kind.map(AttemptErrorKind::as_str));
            c.error_message.push(&attempt.error_message);
            c.status.push(status);
            c.status_reason.push(reason);
            c.schedule_position.push(position);
            c.delay_secs.push(delay);
            c.claim_token.push(claimed.claim_token);
            c.succeeded
                .push(matches!(finished.outcome, Outcome::Succeeded));
            c.gone_reason.push(finished.disable.as_deref());
            c.webhook_id.push(claimed.webhook_id);
        }
        c
    }
}

/// Claims up to `$1` due deliveries: pending, due, webhook enabled, and no earlier pending
/// delivery to the same webhook about the same request (ordering per request).
const CLAIM: &str = "
WITH busy AS MATERIALIZED (
    -- Attempts in flight per webhook (claimed, lease running), across all instances. Counted
    -- once: left to the planner, which expects a row or two here, it re-ran the count for every
    -- webhook in a nested loop, a scan of the whole in-flight index (dead entries included) per
    -- endpoint: 18,000 buffers and 12 to 17 ms a claim over 100 webhooks (BENCHMARKS.md, backlog).
    SELECT webhook_id, count(*) AS in_flight
    FROM deliveries
    WHERE status = 'pending' AND claim_token IS NOT NULL AND next_attempt_at > now()
    GROUP BY webhook_id
),
endpoints AS (
    -- Each sendable endpoint and how many more attempts it may have in flight: the cap, or one
    -- probe while its circuit is half-open. An open circuit holds its deliveries back.
    SELECT w.id,
           (CASE WHEN w.consecutive_failures >= $5::int THEN 1 ELSE $4::bigint END) - coalesce(b.in_flight, 0) AS room
    FROM webhooks w
    LEFT JOIN busy b ON b.webhook_id = w.id
    WHERE w.enabled AND w.deleted_at IS NULL
      AND (w.circuit_open_until IS NULL OR w.circuit_open_until <= now())
),
candidates AS (
    -- The oldest due deliveries of each endpoint, up to its room, so one saturated endpoint
    -- never hides the others' work; endpoints in random order, and no more than one claim's
    -- worth in all: the scan stops there, so a claim never visits rows it cannot take, however
    -- many endpoints have work waiting (without the LIMIT it read up to the cap from every
    -- endpoint and kept $1), and each claim starts at another endpoint.
    SELECT c.id
    FROM (SELECT * FROM endpoints WHERE room > 0 ORDER BY random()) e
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at
        FROM deliveries d
        WHERE d.webhook_id = e.id AND d.status = 'pending' AND d.next_attempt_at <= now()
          -- Ordering per request: nothing overtakes an earlier pending delivery.
          AND (d.request_id = '' OR NOT EXISTS (
              SELECT 1 FROM deliveries p
              WHERE p.webhook_id = d.webhook_id AND p.request_id = d.request_id
                AND p.status = 'pending' AND p.seq < d.seq))
        ORDER BY d.next_attempt_at
        LIMIT least(e.room, $1::bigint)
    ) c
    LIMIT $1
),
due AS (
    SELECT d.id
    FROM deliveries d
    -- By primary key (an array, so the planner looks the few candidates up instead of hashing
    -- the whole backlog), re-checked on the locked row version, so a delivery another worker
    -- claimed meanwhile is never taken twice.
    WHERE d.id = ANY (ARRAY(SELECT id FROM candidates))
      AND d.status = 'pending' AND d.next_attempt_at <= now()
    -- No ORDER BY: the candidates are already each endpoint's oldest, and ordering here would
    -- make the planner walk the whole due index.
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d
SET next_attempt_at = now() + make_interval(secs => $2), claim_token = $3, updated_at = now(),
    -- Numbered at claim time, so an attempt that an admin's resend overtakes (or that a lease
    -- takeover replaces) never shares its number with the one that follows.
    attempt_count = d.attempt_count + 1
FROM due, webhooks w, events ev
WHERE d.id = due.id AND w.id = d.webhook_id AND ev.id = d.event_id
RETURNING d.id, d.webhook_id, d.attempt_count, d.schedule_position, d.next_trigger, d.event_type, ev.body,
          w.destination_url, w.secret,
          CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
          w.custom_headers, w.client_cert_pem, w.client_key, w.client_cert_subject, w.client_cert_issuer,
          w.client_cert_not_after, w.server_ca_pem, w.server_ca_subject, w.server_ca_issuer,
          w.server_ca_not_after, w.updated_at AS webhook_updated_at,
          (SELECT count(*) FROM candidates) AS candidates";

/// What one claim took, and whether it took everything it found.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The deliveries leased, each to be sent by the caller.
    pub deliveries: Vec<ClaimedDelivery>,
    /// The claim leased every candidate it found (none was claimed meanwhile by another
    /// instance): when that is fewer than it asked for, the room under the caps or the due work
    /// ran out, and claiming again at once would find nothing until something changes.
    pub took_all_found: bool,
}

/// Records a batch of finished attempts and moves their deliveries on, in one statement (one
/// round trip and one commit for the whole batch, instead of one per delivery: see
/// BENCHMARKS.md). Each input row is one attempt, `ord` its position in the batch (the order
/// the attempts finished). A delivery changes only if its claim token is still the one the
/// attempt was made under (an admin's resend or a lease takeover supersedes it); the attempt is
/// kept in history either way. Attempt ids are chosen by the caller and inserts skip ids already
/// stored, so a batch retried after a lost commit acknowledgement records nothing twice.
static RECORD_ATTEMPTS: LazyLock<String> = LazyLock::new(|| {
    let log = super::super::updates::append_updates(
        "delivery_id, webhook_id, function, kind, status, status_reason, attempt_count, next_attempt_at, \
         last_response_status, attempt_id",
        "id, webhook_id, function, \
         CASE status WHEN 'succeeded' THEN 'attempt_succeeded' WHEN 'failed' THEN 'failed' ELSE 'attempt_failed' END, \
         status, status_reason, attempt_count, next_attempt_at, last_response_status, attempt_id",
        "updated",
        "ord",
    );
    format!(
        "
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::timestamptz[], $6::bigint[],
                         $7::text[], $8::jsonb[], $9::int[], $10::jsonb[], $11::text[], $12::bool[],
                         $13::text[], $14::text[], $15::text[], $16::text[], $17::int[], $18::float8[],
                         $19::uuid[], $20::bool[], $21::text[], $22::uuid[])
        WITH ORDINALITY AS t(attempt_id, delivery_id, attempt_number, trigger, started_at, duration_us,
                             request_url, request_headers, response_status, response_headers, response_body,
                             response_body_truncated, error_kind, error_message, status, status_reason,
                             schedule_position, delay_secs, claim_token, succeeded, gone_reason, webhook_id,
                             ord)
),
attempt AS (
    INSERT INTO delivery_attempts (id, delivery_id, attempt_number, trigger, started_at, duration_us, request_url,
        request_headers, response_status, response_headers, response_body, response_body_truncated,
        error_kind, error_message)
    SELECT attempt_id, delivery_id, attempt_number, trigger, started_at, duration_us, request_url,
           request_headers, response_status, response_headers, response_body, response_body_truncated,
           error_kind, error_message
    FROM input
    ON CONFLICT (id) DO NOTHING
),
updated AS (
    UPDATE deliveries d
    SET status = i.status, status_reason = i.status_reason,
        attempt_count = GREATEST(d.attempt_count, i.attempt_number),
        schedule_position = i.schedule_position,
        next_attempt_at = CASE WHEN i.status = 'pending' THEN now() + make_interval(secs => i.delay_secs) END,
        next_trigger = 'scheduled', claim_token = NULL, last_response_status = i.response_status,
        updated_at = now()
    FROM input i
    WHERE d.id = i.delivery_id AND d.claim_token = i.claim_token
    RETURNING d.id, d.webhook_id, d.function, d.status, d.status_reason, d.attempt_count, d.next_attempt_at,
              d.last_response_status, i.attempt_id, i.ord, i.succeeded, i.gone_reason
),
outcomes AS (
    SELECT webhook_id, ord, succeeded, gone_reason,
           max(ord) FILTER (WHERE succeeded) OVER (PARTITION BY webhook_id) AS last_success
    FROM updated
),
health AS (
    -- Per endpoint: did any attempt of the batch succeed, how many failed after the last
    -- success (those continue, or start, the failure streak), and did it answer 410 Gone.
    SELECT o.webhook_id,
           bool_or(o.last_success IS NOT NULL) AS any_success,
           count(*) FILTER (WHERE NOT o.succeeded AND (o.last_success IS NULL OR o.ord > o.last_success))::int AS trailing,
           max(o.gone_reason) AS gone_reason
    FROM outcomes o
    GROUP BY o.webhook_id
),
streaks AS (
    SELECT h.webhook_id, h.trailing, h.any_success, h.gone_reason,
           w.circuit_open_until IS NOT NULL AS was_open,
           CASE WHEN h.any_success THEN h.trailing ELSE w.consecutive_failures + h.trailing END AS failures,
           CASE WHEN h.trailing = 0 THEN NULL
                WHEN h.any_success THEN now()
                ELSE coalesce(w.failing_since, now()) END AS failing_since
    FROM health h JOIN webhooks w ON w.id = h.webhook_id
),
endpoint AS (
    -- Endpoint health, touched only when it changes (successes on a healthy endpoint write
    -- nothing, so busy endpoints do not contend on their webhook row). Disables the webhook on
    -- 410 Gone or once every delivery failed for the auto-disable span ($25).
    UPDATE webhooks w
    SET consecutive_failures = x.failures,
        failing_since = x.failing_since,
        circuit_open_until = CASE
            WHEN x.failures = 0 THEN NULL
            WHEN x.trailing > 0 AND x.failures >= $23 THEN now() + make_interval(secs =>
                least($24::float8 * power(2, least(x.failures - $23, 10)), 600))
            WHEN x.any_success THEN NULL
            ELSE w.circuit_open_until END,
        enabled = w.enabled AND NOT x.disable,
        disabled_reason = CASE WHEN w.enabled AND x.disable THEN x.reason ELSE w.disabled_reason END,
        disabled_at = CASE WHEN w.enabled AND x.disable THEN now() ELSE w.disabled_at END,
        updated_at = CASE WHEN w.enabled AND x.disable THEN now() ELSE w.updated_at END
    FROM (
        SELECT s.*,
               (s.gone_reason IS NOT NULL OR (s.trailing > 0 AND $25::float8 > 0
                    AND s.failing_since < now() - make_interval(secs => $25::float8))) AS disable,
               coalesce(s.gone_reason, 'auto-disabled: every delivery has failed since '
                    || to_char(s.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) AS reason
        FROM streaks s
    ) x
    WHERE w.id = x.webhook_id
      AND (x.trailing > 0 OR w.consecutive_failures > 0 OR w.failing_since IS NOT NULL
           OR w.circuit_open_until IS NOT NULL)
    RETURNING w.id, w.enabled, w.disabled_at, w.disabled_reason, w.circuit_open_until, x.disable,
              x.gone_reason, x.was_open, x.failures
),
system_actions AS (
    -- What this batch did to endpoints on its own, for the audit trail (rare: most batches
    -- have none). A disable is this batch's if it set disabled_at to this transaction's time.
    SELECT id, CASE WHEN gone_reason IS NOT NULL THEN 'webhook.disabled_gone' ELSE 'webhook.auto_disabled' END AS action,
           jsonb_build_object('enabled', jsonb_build_object('before', true, 'after', false),
                              'reason', disabled_reason) AS diff
    FROM endpoint WHERE disable AND NOT enabled AND disabled_at = now()
    UNION ALL
    SELECT id, 'webhook.circuit_opened', jsonb_build_object('reason', failures || ' failed attempts in a row',
           'open_until', to_char(circuit_open_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
    FROM endpoint WHERE NOT was_open AND circuit_open_until IS NOT NULL
    UNION ALL
    SELECT id, 'webhook.circuit_closed', jsonb_build_object('reason', 'an attempt succeeded')
    FROM endpoint WHERE was_open AND circuit_open_until IS NULL
),
audited AS (
    -- Sorted first, so every endpoint row is updated (and locked) before the first append
    -- takes the chain's head: the head is held only until this statement commits.
    SELECT audit_append('system', 'system', a.action, 'webhook', a.id::text, '', '', '', a.diff)
    FROM (SELECT * FROM system_actions ORDER BY id, action) a
),
{log}
SELECT (SELECT count(*) FROM audited) AS audited,
       -- Whether the batch's endpoints have due work waiting (a lease running is not due): the
       -- slots and the room this batch frees let a claim take it now.
       EXISTS (SELECT 1 FROM (SELECT DISTINCT webhook_id FROM input) b
               WHERE EXISTS (SELECT 1 FROM deliveries d
                             WHERE d.webhook_id = b.webhook_id AND d.status = 'pending'
                               AND d.next_attempt_at <= now())) AS waiting"
    )
});

impl Store {
    /// Claims up to `limit` due deliveries for `lease`, telling also whether the claim took
    /// everything it found.
    pub async fn claim(
        &self,
        limit: i64,
        lease: Duration,
        policy: &DeliveryPolicy,
    ) -> Result<Claimed, StoreError> {
        let mut client = self.client().await?;
        let statement = client.prepare_cached(CLAIM).await?;
        let token = ClaimToken::from(Uuid::new_v4());
        // The cluster's turn to lease first: the claim's snapshot then sees every lease
        // committed before it (see LEASE_LOCK).
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_LOCK])
            .await?;
        let rows = tx
            .query(
                &statement,
                &[
                    &limit,
                    &lease.as_secs_f64(),
                    &token,
                    &policy.max_in_flight_per_webhook,
                    &policy.breaker_threshold,
                ],
            )
            .await?;
        tx.commit().await?;
        let found = match rows.first() {
            Some(row) => row.try_get::<_, i64>("candidates")?,
            None => 0,
        };
        let deliveries = rows
            .iter()
            .map(|row| self.claimed_from_row(row, token, row.try_get("body")?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Claimed {
            took_all_found: usize::try_from(found).is_ok_and(|found| found <= deliveries.len()),
            deliveries,
        })
    }

    /// A delivery leased under `token` from a row that names the delivery's and its webhook's
    /// columns as the claim's `RETURNING` does (the publish's direct leases too); the secrets,
    /// headers and client key are opened here.
    pub(crate) fn claimed_from_row(
        &self,
        row: &tokio_postgres::Row,
        token: ClaimToken,
        body: String,
    ) -> Result<ClaimedDelivery, StoreError> {
        let sealed: Vec<u8> = row.try_get("secret")?;
        let mut secrets = vec![self.vault().open(&sealed)?];
        if let Some(previous) = row.try_get::<_, Option<Vec<u8>>>("previous_secret")? {
            secrets.push(self.vault().open(&previous)?);
        }
        let headers = self.open_headers(
            row.try_get::<_, Option<Vec<u8>>>("custom_headers")?
                .as_deref(),
        )?;
        let tls = self.destination_tls(row)?;
        Ok(ClaimedDelivery {
            id: row.try_get("id")?,
            webhook_id: row.try_get("webhook_id")?,
            claim_token: token,
            // The count after the claim (or the publish's lease) counted this attempt.
            attempt_number: row.try_get("attempt_count")?,
            schedule_position: row.try_get("schedule_position")?,
            trigger: stored(
                AttemptTrigger::from_db,
                "attempt trigger",
                row.try_get("next_trigger")?,
            )?,
            event_type: row.try_get("event_type")?,
            body,
            destination_url: row.try_get("destination_url")?,
            secrets,
            headers,
            tls,
        })
    }

    /// Records finished attempts and their outcomes, in one statement and one transaction: all
    /// of them or none. Safe to repeat after an error (nothing is recorded twice). Returns
    /// whether the attempts' endpoints have due deliveries waiting for a claim.
    pub async fn record_attempts(
        &self,
        batch: &[&FinishedAttempt],
        policy: &DeliveryPolicy,
    ) -> Result<bool, StoreError> {
        if batch.is_empty() {
            return Ok(false);
        }
        let client = self.client().await?;
        let statement = client.prepare_cached(&RECORD_ATTEMPTS).await?;
        let columns = AttemptColumns::from_batch(batch);
        let row = client
            .query_one(
                &statement,
                &[
                    &columns.attempt_id,
                    &columns.delivery_id,
                    &columns.attempt_number,
                    &columns.trigger,
                    &columns.started_at,
                    &columns.duration_us,
                    &columns.request_url,
                    &columns.request_headers,
                    &columns.response_status,
                    &columns.response_headers,
                    &columns.response_body,
                    &columns.response_body_truncated,
                    &columns.error_kind,
                    &columns.error_message,
                    &columns.status,
                    &columns.status_reason,
                    &columns.schedule_position,
                    &columns.delay_secs,
                    &columns.claim_token,
                    &columns.succeeded,
                    &columns.gone_reason,
                    &columns.webhook_id,
                    &policy.breaker_threshold,
                    &policy.breaker_cooldown.as_secs_f64(),
                    &policy.auto_disable_after.map_or(0.0, |d| d.as_secs_f64()),
                ],
            )
            .await?;
        self.appended_updates();
        Ok(row.try_get("waiting")?)
    }

    /// Puts a delivery back in the queue, due now, with `trigger` for its next attempt and a
    /// fresh retry schedule. Any in-flight attempt's result is superseded.
    pub async fn requeue_delivery(
        &self,
        id: DeliveryId,
        trigger: AttemptTrigger,
        context: &RequestContext,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let record = self.requeue_delivery_in(&tx, id, trigger, context).await?;
        tx.commit().await?;
        if record.is_some() {
            self.appended_updates();
            self.wakeups().deliveries.wake();
        }
        Ok(record)
    }

    /// [`Store::requeue_delivery`] in the transaction `tx` (of a request id), with its audit
    /// row; whoever commits `tx` wakes this instance's worker afterwards.
    pub async fn requeue_delivery_in(
        &self,
        tx: &impl GenericClient,
        id: DeliveryId,
        trigger: AttemptTrigger,
        context: &RequestContext,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let sql = format!(
            "WITH changed AS (UPDATE deliveries SET status = 'pending', status_reason = '', next_attempt_at = now(), \
             next_trigger = $2, schedule_position = 0, claim_token = NULL, updated_at = now() \
             WHERE id = $1 RETURNING *), \
             {} \
             SELECT {COLUMNS} FROM changed d",
            log_changed(UpdateKind::Resent)
        );
        let row = tx.query_opt(&sql, &[&id, &trigger.as_str()]).await?;
        let Some(record) = row
            .as_ref()
            .map(|r| delivery_from_row(r, false))
            .transpose()?
        else {
            return Ok(None);
        };
        self.notify_deliveries(tx).await?;
        let diff = serde_json::json!({ "webhook_id": record.webhook_id.to_string() });
        audit::append(
            tx,
            &context.audit(AuditAction::DeliveryResent, "delivery", id, diff),
        )
        .await?;
        Ok(Some(record))
    }

    /// Re-queues every failed delivery of a webhook created since `since`, server-side in one
    /// statement. Returns how many.
    pub async fn recover_failed(
        &self,
        webhook_id: WebhookId,
        since: OffsetDateTime,
        context: &RequestContext,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let count = self
            .recover_failed_in(&tx, webhook_id, since, context)
            .await?;
        tx.commit().await?;
        if count > 0 {
            self.appended_updates();
            self.wakeups().deliveries.wake();
        }
        Ok(count)
    }

    /// [`Store::recover_failed`] in the transaction `tx` (of a request id), with its audit row;
    /// whoever commits `tx` wakes this instance's worker afterwards.
    pub async fn recover_failed_in(
        &self,
        tx: &impl GenericClient,
        webhook_id: WebhookId,
        since: OffsetDateTime,
        context: &RequestContext,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "WITH changed AS (UPDATE deliveries SET status = 'pending', status_reason = '', next_attempt_at = now(), \
             next_trigger = '{}', schedule_position = 0, claim_token = NULL, updated_at = now() \
             WHERE webhook_id = $1 AND status = 'failed' AND created_at >= $2 RETURNING *), {} \
             SELECT 1 FROM logged",
            AttemptTrigger::Recover,
            log_changed(UpdateKind::Resent)
        );
        let count = tx.execute(&sql, &[&webhook_id, &since]).await?;
        if count > 0 {
            self.notify_deliveries(tx).await?;
        }
        let diff = serde_json::json!({
            "since": crate::domain::timestamps::rfc3339(since),
            "recovered": count,
        });
        audit::append(
            tx,
            &context.audit(
                AuditAction::DeliveriesRecovered,
                "webhook",
                webhook_id,
                diff,
            ),
        )
        .await?;
        Ok(count)
    }
}
