//! Deliveries as a work queue, and their history.
//!
//! Claim protocol: a worker claims due deliveries with `FOR UPDATE SKIP LOCKED`, pushes their due
//! time past a lease (longer than the request timeout) and stamps a fresh `claim_token`, then
//! commits and sends. The result is written only if the token is still the one it stamped. A
//! worker that dies leaves the delivery due again once the lease runs out, and any instance
//! takes it: at-least-once, never lost.

use std::time::Duration;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{DELIVERIES_CHANNEL, Store, StoreError};
use crate::domain::{Function, PageToken, Secret};
use crate::proto::v1 as pb;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for an attempt.
    Pending,
    /// Got a 2xx.
    Succeeded,
    /// The schedule ran out.
    Failed,
    /// Not sent by design.
    Skipped,
    /// Webhook deleted first.
    Cancelled,
}

impl DeliveryStatus {
    /// Database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    fn from_db(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown delivery status {other}"
                )));
            }
        })
    }

    /// Wire enum.
    pub fn to_proto(self) -> pb::DeliveryStatus {
        match self {
            Self::Pending => pb::DeliveryStatus::Pending,
            Self::Succeeded => pb::DeliveryStatus::Succeeded,
            Self::Failed => pb::DeliveryStatus::Failed,
            Self::Skipped => pb::DeliveryStatus::Skipped,
            Self::Cancelled => pb::DeliveryStatus::Cancelled,
        }
    }

    /// From the wire enum; UNSPECIFIED is `None`.
    pub fn from_proto(value: pb::DeliveryStatus) -> Option<Self> {
        match value {
            pb::DeliveryStatus::Unspecified => None,
            pb::DeliveryStatus::Pending => Some(Self::Pending),
            pb::DeliveryStatus::Succeeded => Some(Self::Succeeded),
            pb::DeliveryStatus::Failed => Some(Self::Failed),
            pb::DeliveryStatus::Skipped => Some(Self::Skipped),
            pb::DeliveryStatus::Cancelled => Some(Self::Cancelled),
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Id; `msg_<id>` is the webhook-id header.
    pub id: Uuid,
    /// Webhook.
    pub webhook_id: Uuid,
    /// Event.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Function.
    pub function: Option<Function>,
    /// Client request id ("" for test pings).
    pub request_id: String,
    /// Status.
    pub status: DeliveryStatus,
    /// Why it is in that status.
    pub status_reason: String,
    /// Attempts made.
    pub attempt_count: i32,
    /// Next due time while pending.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Latest response status.
    pub last_response_status: Option<i32>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Changed.
    pub updated_at: OffsetDateTime,
    /// The JSON body (GetDelivery only).
    pub payload: Option<String>,
}

/// One stored attempt.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Id.
    pub id: Uuid,
    /// 1-based number within the delivery.
    pub attempt_number: i32,
    /// 'scheduled', 'resend' or 'recover'.
    pub trigger: String,
    /// Start.
    pub started_at: OffsetDateTime,
    /// Duration in microseconds.
    pub duration_us: i64,
    /// URL.
    pub request_url: String,
    /// Headers sent.
    pub request_headers: Vec<(String, String)>,
    /// Status received.
    pub response_status: Option<i32>,
    /// Headers received.
    pub response_headers: Vec<(String, String)>,
    /// Body received (capped).
    pub response_body: String,
    /// Whether the body was cut.
    pub response_body_truncated: bool,
    /// 'timeout', 'connect', 'dns', 'tls', 'status', 'refused'.
    pub error_kind: Option<String>,
    /// Failure description.
    pub error_message: String,
}

/// A delivery a worker holds a lease on, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: Uuid,
    /// Webhook id.
    pub webhook_id: Uuid,
    /// This claim's fencing token.
    pub claim_token: Uuid,
    /// The number this attempt gets.
    pub attempt_number: i32,
    /// Failed attempts so far on the current retry schedule.
    pub schedule_position: i32,
    /// What triggered this attempt.
    pub trigger: String,
    /// Event type.
    pub event_type: String,
    /// The body to send.
    pub body: String,
    /// Where to send it (read at claim time: edits apply from the next attempt).
    pub destination_url: String,
    /// Current secret first, then the previous one during a rotation's grace period.
    pub secrets: Vec<Secret>,
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
    pub error_kind: Option<&'static str>,
    /// Failure description.
    pub error_message: String,
}

/// What an attempt leaves the delivery as.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: done.
    Succeeded,
    /// Failed; try again after this delay (the schedule position moves on).
    RetryAfter {
        /// Delay before the next attempt.
        delay: Duration,
        /// Why it failed.
        reason: String,
    },
    /// Failed and the schedule ran out.
    FailedForGood {
        /// Why the last attempt failed.
        reason: String,
    },
}

/// How deliveries to one endpoint are paced, enforced in the claim and result statements so
/// every instance agrees.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Attempts in flight to one webhook at once, across instances.
    pub max_in_flight_per_webhook: i64,
    /// Consecutive failures that open the circuit.
    pub breaker_threshold: i32,
    /// How long an open circuit holds deliveries back at first (doubling per further failure,
    /// up to 10 minutes).
    pub breaker_cooldown: Duration,
    /// Disable a webhook whose deliveries have all failed for this long (None: never).
    pub auto_disable_after: Option<Duration>,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_in_flight_per_webhook: 16,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            auto_disable_after: Some(Duration::from_secs(5 * 86400)),
        }
    }
}

/// ListDeliveries filters.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Webhook.
    pub webhook_id: Option<Uuid>,
    /// Any of these statuses (empty: all).
    pub statuses: Vec<DeliveryStatus>,
    /// Event type.
    pub event_type: Option<String>,
    /// Client request id.
    pub request_id: Option<String>,
    /// Created at or after.
    pub created_after: Option<OffsetDateTime>,
    /// Created before.
    pub created_before: Option<OffsetDateTime>,
}

const COLUMNS: &str = "d.id, d.seq, d.webhook_id, d.event_id, d.event_type, d.function, d.request_id, d.status, \
    d.status_reason, d.attempt_count, CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at, \
    d.last_response_status, d.created_at, d.updated_at";

pub(super) fn delivery_from_row(
    row: &Row,
    with_payload: bool,
) -> Result<DeliveryRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let function: String = row.try_get("function")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        webhook_id: row.try_get("webhook_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        function: Function::from_db(&function),
        request_id: row.try_get("request_id")?,
        status: DeliveryStatus::from_db(&status)?,
        status_reason: row.try_get("status_reason")?,
        attempt_count: row.try_get("attempt_count")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_response_status: row.try_get("last_response_status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        payload: if with_payload {
            Some(row.try_get("body")?)
        } else {
            None
        },
    })
}

fn headers_to_json(headers: &[(String, String)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(n, v)| Value::Array(vec![Value::String(n.clone()), Value::String(v.clone())]))
            .collect(),
    )
}

fn headers_from_json(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|pair| {
                    let name = pair.get(0)?.as_str()?;
                    let value = pair.get(1)?.as_str()?;
                    Some((name.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads an attempt from a row whose attempt id is in column `id_column`.
pub(super) fn attempt_from_row(row: &Row, id_column: &str) -> Result<AttemptRecord, StoreError> {
    let request_headers: Value = row.try_get("request_headers")?;
    let response_headers: Value = row.try_get("response_headers")?;
    Ok(AttemptRecord {
        id: row.try_get(id_column)?,
        attempt_number: row.try_get("attempt_number")?,
        trigger: row.try_get("trigger")?,
        started_at: row.try_get("started_at")?,
        duration_us: row.try_get("duration_us")?,
        request_url: row.try_get("request_url")?,
        request_headers: headers_from_json(&request_headers),
        response_status: row.try_get("response_status")?,
        response_headers: headers_from_json(&response_headers),
        response_body: row.try_get("response_body")?,
        response_body_truncated: row.try_get("response_body_truncated")?,
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
    })
}

/// Claims up to `$1` due deliveries: pending, due, webhook enabled, and no earlier pending
/// delivery to the same webhook about the same request (ordering per request).
const CLAIM: &str = "
WITH busy AS (
    -- Attempts in flight per webhook (claimed, lease running), across all instances.
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
    -- never hides the others' work.
    SELECT c.id, c.next_attempt_at
    FROM endpoints e
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
    WHERE e.room > 0
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
          CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret";

/// Records an attempt and moves the delivery on, in one statement; the delivery changes only if
/// the claim token is still ours (an admin's resend or a lease takeover supersedes it).
const RECORD_ATTEMPT: &str = "
WITH attempt AS (
    INSERT INTO delivery_attempts (id, delivery_id, attempt_number, trigger, started_at, duration_us, request_url,
        request_headers, response_status, response_headers, response_body, response_body_truncated,
        error_kind, error_message)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
),
updated AS (
    UPDATE deliveries
    SET status = $15, status_reason = $16, attempt_count = GREATEST(attempt_count, $3),
        schedule_position = $17,
        next_attempt_at = CASE WHEN $15 = 'pending' THEN now() + make_interval(secs => $18) END,
        next_trigger = 'scheduled', claim_token = NULL, last_response_status = $9, updated_at = now()
    WHERE id = $2 AND claim_token = $19
    RETURNING *
),
endpoint AS (
    -- Endpoint health, touched only when it changes (a success on a healthy endpoint writes
    -- nothing, so busy endpoints do not contend on their webhook row). Disables the webhook on
    -- 410 Gone ($23, reason $24) or once every delivery failed for the auto-disable span ($26).
    UPDATE webhooks w
    SET consecutive_failures = CASE WHEN $20 THEN 0 ELSE w.consecutive_failures + 1 END,
        failing_since = CASE WHEN $20 THEN NULL ELSE coalesce(w.failing_since, now()) END,
        circuit_open_until = CASE
            WHEN $20 THEN NULL
            WHEN w.consecutive_failures + 1 >= $21 THEN now() + make_interval(secs =>
                least($22::float8 * power(2, least(w.consecutive_failures + 1 - $21, 10)), 600))
            ELSE w.circuit_open_until END,
        enabled = w.enabled AND NOT x.disable,
        disabled_reason = CASE WHEN w.enabled AND x.disable THEN x.reason ELSE w.disabled_reason END,
        disabled_at = CASE WHEN w.enabled AND x.disable THEN now() ELSE w.disabled_at END,
        updated_at = CASE WHEN w.enabled AND x.disable THEN now() ELSE w.updated_at END
    FROM (
        SELECT id,
               coalesce($23 OR (NOT $20 AND $26::float8 > 0 AND failing_since < now() - make_interval(secs => $26::float8)), false) AS disable,
               CASE WHEN $23 THEN $24
                    ELSE 'auto-disabled: every delivery has failed since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
               END AS reason
        FROM webhooks WHERE id = $25
    ) x
    WHERE w.id = x.id AND EXISTS (SELECT 1 FROM updated)
      AND (NOT $20 OR w.consecutive_failures > 0 OR w.failing_since IS NOT NULL OR w.circuit_open_until IS NOT NULL)
)
INSERT INTO delivery_update_inbox (delivery_id, webhook_id, function, kind, status, status_reason, attempt_count,
    next_attempt_at, last_response_status, attempt_id)
SELECT id, webhook_id, function,
       CASE status WHEN 'succeeded' THEN 'attempt_succeeded' WHEN 'failed' THEN 'failed' ELSE 'attempt_failed' END,
       status, status_reason, attempt_count, next_attempt_at, last_response_status, $1
FROM updated";

/// Appends the new state of the deliveries an `UPDATE ... RETURNING *` CTE named `changed`
/// produced to the update inbox, with `kind`; see `migrations/V2__delivery_update_log.sql`.
pub(super) fn log_changed(kind: &str) -> String {
    format!(
        "INSERT INTO delivery_update_inbox (delivery_id, webhook_id, function, kind, status, status_reason, \
         attempt_count, next_attempt_at, last_response_status) \
         SELECT id, webhook_id, function, '{kind}', status, status_reason, attempt_count, next_attempt_at, \
         last_response_status FROM changed"
    )
}

/// Cancels a webhook's pending deliveries (it was deleted).
pub(super) async fn cancel_pending_for_webhook(
    client: &impl GenericClient,
    webhook_id: Uuid,
) -> Result<u64, StoreError> {
    let sql = format!(
        "WITH changed AS (UPDATE deliveries SET status = 'cancelled', status_reason = 'webhook deleted', \
         next_attempt_at = NULL, claim_token = NULL, updated_at = now() \
         WHERE webhook_id = $1 AND status = 'pending' RETURNING *) {}",
        log_changed("cancelled")
    );
    Ok(client.execute(&sql, &[&webhook_id]).await?)
}

impl Store {
    /// Claims up to `limit` due deliveries for `lease`.
    pub async fn claim_due(
        &self,
        limit: i64,
        lease: Duration,
        policy: &DeliveryPolicy,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CLAIM).await?;
        let token = Uuid::new_v4();
        let rows = client
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
        rows.iter()
            .map(|row| {
                let sealed: Vec<u8> = row.try_get("secret")?;
                let mut secrets = vec![self.vault().open(&sealed)?];
                if let Some(previous) = row.try_get::<_, Option<Vec<u8>>>("previous_secret")? {
                    secrets.push(self.vault().open(&previous)?);
                }
                Ok(ClaimedDelivery {
                    id: row.try_get("id")?,
                    webhook_id: row.try_get("webhook_id")?,
                    claim_token: token,
                    // RETURNING gives the count after the claim counted this attempt.
                    attempt_number: row.try_get("attempt_count")?,
                    schedule_position: row.try_get("schedule_position")?,
                    trigger: row.try_get("next_trigger")?,
                    event_type: row.try_get("event_type")?,
                    body: row.try_get("body")?,
                    destination_url: row.try_get("destination_url")?,
                    secrets,
                })
            })
            .collect()
    }

    /// Records an attempt and its outcome. Returns false when the claim was superseded (the
    /// attempt is still recorded in history).
    pub async fn record_attempt(
        &self,
        claimed: &ClaimedDelivery,
        attempt: &NewAttempt,
        outcome: &Outcome,
        policy: &DeliveryPolicy,
        disable: Option<&str>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(RECORD_ATTEMPT).await?;
        let (status, reason, position, delay) = match outcome {
            Outcome::Succeeded => ("succeeded", String::new(), claimed.schedule_position, 0.0),
            Outcome::RetryAfter { delay, reason } => (
                "pending",
                reason.clone(),
                claimed.schedule_position + 1,
                delay.as_secs_f64(),
            ),
            Outcome::FailedForGood { reason } => {
                ("failed", reason.clone(), claimed.schedule_position + 1, 0.0)
            }
        };
        let response_status = attempt.response_status.map(i32::from);
        let duration_us = i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX);
        let changed = client
            .execute(
                &statement,
                &[
                    &Uuid::now_v7(),
                    &claimed.id,
                    &claimed.attempt_number,
                    &claimed.trigger,
                    &attempt.started_at,
                    &duration_us,
                    &attempt.request_url,
                    &headers_to_json(&attempt.request_headers),
                    &response_status,
                    &headers_to_json(&attempt.response_headers),
                    &attempt.response_body,
                    &attempt.response_body_truncated,
                    &attempt.error_kind,
                    &attempt.error_message,
                    &status,
                    &reason,
                    &position,
                    &delay,
                    &claimed.claim_token,
                    &matches!(outcome, Outcome::Succeeded),
                    &policy.breaker_threshold,
                    &policy.breaker_cooldown.as_secs_f64(),
                    &disable.is_some(),
                    &disable.unwrap_or_default(),
                    &claimed.webhook_id,
                    &policy.auto_disable_after.map_or(0.0, |d| d.as_secs_f64()),
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    /// A page of deliveries, newest first, and the next page's token.
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        before: Option<PageToken>,
        limit: i64,
    ) -> Result<(Vec<DeliveryRecord>, Option<PageToken>), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM deliveries d \
             WHERE ($1::uuid IS NULL OR d.webhook_id = $1) \
               AND (cardinality($2::text[]) = 0 OR d.status = ANY ($2)) \
               AND ($3::text IS NULL OR d.event_type = $3) \
               AND ($4::text IS NULL OR d.request_id = $4) \
               AND ($5::timestamptz IS NULL OR d.created_at >= $5) \
               AND ($6::timestamptz IS NULL OR d.created_at < $6) \
               AND ($7::bigint IS NULL OR d.seq < $7) \
             ORDER BY d.seq DESC LIMIT $8"
        );
        let statement = client.prepare_cached(&sql).await?;
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let before_seq = before.map(|t| t.after_seq);
        let rows = client
            .query(
                &statement,
                &[
                    &filter.webhook_id,
                    &statuses,
                    &filter.event_type,
                    &filter.request_id,
                    &filter.created_after,
                    &filter.created_before,
                    &before_seq,
                    &(limit + 1),
                ],
            )
            .await?;
        let mut seqs = Vec::with_capacity(rows.len());
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            seqs.push(row.try_get::<_, i64>("seq")?);
            records.push(delivery_from_row(row, false)?);
        }
        let next = if records.len() as i64 > limit {
            records.truncate(limit as usize);
            seqs.get(limit as usize - 1)
                .map(|seq| PageToken { after_seq: *seq })
        } else {
            None
        };
        Ok((records, next))
    }

    /// One delivery with its body and every attempt, oldest first.
    pub async fn get_delivery(
        &self,
        id: Uuid,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS}, ev.body FROM deliveries d JOIN events ev ON ev.id = d.event_id WHERE d.id = $1"
        );
        let Some(row) = client.query_opt(&sql, &[&id]).await? else {
            return Ok(None);
        };
        let delivery = delivery_from_row(&row, true)?;
        let rows = client
            .query(
                "SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt_number, started_at",
                &[&id],
            )
            .await?;
        let attempts = rows
            .iter()
            .map(|row| attempt_from_row(row, "id"))
            .collect::<Result<_, _>>()?;
        Ok(Some((delivery, attempts)))
    }

    /// Puts a delivery back in the queue, due now, with `trigger` ('resend' or 'recover') and a
    /// fresh retry schedule. Any in-flight attempt's result is superseded.
    pub async fn requeue_delivery(
        &self,
        id: Uuid,
        trigger: &str,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH changed AS (UPDATE deliveries SET status = 'pending', status_reason = '', next_attempt_at = now(), \
             next_trigger = $2, schedule_position = 0, claim_token = NULL, updated_at = now() \
             WHERE id = $1 RETURNING *), \
             logged AS ({}) \
             SELECT {COLUMNS} FROM changed d",
            log_changed("resent")
        );
        let row = client.query_opt(&sql, &[&id, &trigger]).await?;
        let record = row
            .as_ref()
            .map(|r| delivery_from_row(r, false))
            .transpose()?;
        if record.is_some() {
            client
                .execute("SELECT pg_notify($1, '')", &[&DELIVERIES_CHANNEL])
                .await?;
        }
        Ok(record)
    }

    /// Re-queues every failed delivery of a webhook created since `since`, server-side in one
    /// statement. Returns how many.
    pub async fn recover_failed(
        &self,
        webhook_id: Uuid,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH changed AS (UPDATE deliveries SET status = 'pending', status_reason = '', next_attempt_at = now(), \
             next_trigger = 'recover', schedule_position = 0, claim_token = NULL, updated_at = now() \
             WHERE webhook_id = $1 AND status = 'failed' AND created_at >= $2 RETURNING *) {}",
            log_changed("resent")
        );
        let count = client.execute(&sql, &[&webhook_id, &since]).await?;
        if count > 0 {
            client
                .execute("SELECT pg_notify($1, '')", &[&DELIVERIES_CHANNEL])
                .await?;
        }
        Ok(count)
    }
}

/// Delivery statistics of one webhook since a time (GetWebhookStats).
#[derive(Debug, Clone, Default)]
pub struct WebhookStatsRecord {
    /// Attempts made.
    pub attempts: i64,
    /// Attempts that got a 2xx.
    pub succeeded_attempts: i64,
    /// Attempt duration percentiles in seconds (p50, p90, p99), when there were attempts.
    pub latency: Option<(f64, f64, f64)>,
    /// Start of the latest successful attempt.
    pub last_success_at: Option<OffsetDateTime>,
    /// Start of the latest failed attempt.
    pub last_failure_at: Option<OffsetDateTime>,
    /// Deliveries currently pending.
    pub pending_deliveries: i64,
    /// Deliveries that failed for good (created since the time).
    pub failed_deliveries: i64,
}

impl Store {
    /// Pending deliveries, and how long the oldest due one has waited (seconds), across every
    /// instance.
    pub async fn queue_stats(&self) -> Result<(i64, f64), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(next_attempt_at) \
                 FILTER (WHERE next_attempt_at <= now()))::float8, 0) \
                 FROM deliveries WHERE status = 'pending'",
                &[],
            )
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Attempts and outcomes of one webhook's deliveries since `since`.
    pub async fn webhook_stats(
        &self,
        webhook_id: Uuid,
        since: OffsetDateTime,
    ) -> Result<WebhookStatsRecord, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) AS attempts,
                        count(*) FILTER (WHERE a.error_kind IS NULL) AS succeeded,
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_us) AS p50,
                        percentile_cont(0.9) WITHIN GROUP (ORDER BY a.duration_us) AS p90,
                        percentile_cont(0.99) WITHIN GROUP (ORDER BY a.duration_us) AS p99,
                        max(a.started_at) FILTER (WHERE a.error_kind IS NULL) AS last_success,
                        max(a.started_at) FILTER (WHERE a.error_kind IS NOT NULL) AS last_failure
                 FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
                 WHERE d.webhook_id = $1 AND a.started_at >= $2",
                &[&webhook_id, &since],
            )
            .await?;
        let counts = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'pending'),
                        count(*) FILTER (WHERE status = 'failed' AND created_at >= $2)
                 FROM deliveries WHERE webhook_id = $1",
                &[&webhook_id, &since],
            )
            .await?;
        let micros = |name: &str| -> Result<Option<f64>, StoreError> {
            Ok(row
                .try_get::<_, Option<f64>>(name)?
                .map(|us| us / 1_000_000.0))
        };
        let latency = match (micros("p50")?, micros("p90")?, micros("p99")?) {
            (Some(a), Some(b), Some(c)) => Some((a, b, c)),
            _ => None,
        };
        Ok(WebhookStatsRecord {
            attempts: row.try_get("attempts")?,
            succeeded_attempts: row.try_get("succeeded")?,
            latency,
            last_success_at: row.try_get("last_success")?,
            last_failure_at: row.try_get("last_failure")?,
            pending_deliveries: counts.try_get(0)?,
            failed_deliveries: counts.try_get(1)?,
        })
    }
}
