//! Deliveries: the records and row readers every part shares. The work queue (claim, record,
//! requeue) is in `queue`, the history reads (list, get) in `history`, statistics in `stats`.
//!
//! Claim protocol: a worker claims due deliveries with `FOR UPDATE SKIP LOCKED`, pushes their due
//! time past a lease (longer than the request timeout) and stamps a fresh `claim_token`, then
//! commits and sends. The result is written only if the token is still the one it stamped. A
//! worker that dies leaves the delivery due again once the lease runs out, and any instance
//! takes it: at-least-once, never lost.

mod history;
mod queue;
mod stats;

pub use history::DeliveryFilter;
pub use queue::{Claimed, ClaimedDelivery, FinishedAttempt, NewAttempt};
pub use stats::WebhookStatsRecord;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::StoreError;
use crate::domain::{
    AttemptErrorKind, AttemptId, AttemptTrigger, DeliveryId, DeliveryStatus, EventId, Function,
    UpdateKind, WebhookId,
};

/// A delivery as stored.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Id; `msg_<id>` is the webhook-id header.
    pub id: DeliveryId,
    /// Webhook.
    pub webhook_id: WebhookId,
    /// Event.
    pub event_id: EventId,
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
    pub id: AttemptId,
    /// 1-based number within the delivery.
    pub attempt_number: i32,
    /// What made it happen.
    pub trigger: AttemptTrigger,
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
    /// Why it failed; `None` for an attempt that got a 2xx.
    pub error_kind: Option<AttemptErrorKind>,
    /// Failure description.
    pub error_message: String,
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
        status: stored(DeliveryStatus::from_db, "delivery status", &status)?,
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

/// Reads a stored name with `parse`; a name this release does not know is corrupt data.
pub(super) fn stored<T>(
    parse: fn(&str) -> Option<T>,
    what: &str,
    value: &str,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {value}")))
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
        trigger: stored(
            AttemptTrigger::from_db,
            "attempt trigger",
            row.try_get("trigger")?,
        )?,
        started_at: row.try_get("started_at")?,
        duration_us: row.try_get("duration_us")?,
        request_url: row.try_get("request_url")?,
        request_headers: headers_from_json(&request_headers),
        response_status: row.try_get("response_status")?,
        response_headers: headers_from_json(&response_headers),
        response_body: row.try_get("response_body")?,
        response_body_truncated: row.try_get("response_body_truncated")?,
        error_kind: row
            .try_get::<_, Option<&str>>("error_kind")?
            .map(|kind| stored(AttemptErrorKind::from_db, "attempt error kind", kind))
            .transpose()?,
        error_message: row.try_get("error_message")?,
    })
}

/// CTEs that append the new state of the deliveries an `UPDATE ... RETURNING *` CTE named
/// `changed` produced to the delivery-update log, with `kind`, as one batch (see
/// [`super::updates::append_updates`]). `logged` returns a row per entry.
pub(super) fn log_changed(kind: UpdateKind) -> String {
    super::updates::append_updates(
        "delivery_id, webhook_id, function, kind, status, status_reason, attempt_count, next_attempt_at, \
         last_response_status",
        &format!(
            "id, webhook_id, function, '{kind}', status, status_reason, attempt_count, next_attempt_at, \
             last_response_status"
        ),
        "changed",
        "seq",
    )
}

/// Cancels a webhook's pending deliveries (it was deleted).
pub(super) async fn cancel_pending_for_webhook(
    client: &impl GenericClient,
    webhook_id: WebhookId,
) -> Result<u64, StoreError> {
    let sql = format!(
        "WITH changed AS (UPDATE deliveries SET status = 'cancelled', status_reason = 'webhook deleted', \
         next_attempt_at = NULL, claim_token = NULL, updated_at = now() \
         WHERE webhook_id = $1 AND status = 'pending' RETURNING *), {} SELECT 1 FROM logged",
        log_changed(UpdateKind::Cancelled)
    );
    Ok(client.execute(&sql, &[&webhook_id]).await?)
}
