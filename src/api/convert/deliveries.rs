//! Delivery records, attempts, updates and statistics to messages; delivery statuses both ways.

use super::to_proto;
use crate::domain::{
    AttemptErrorKind, AttemptTrigger, DeliveryId, DeliveryStatus, UpdateKind, WebhookId,
};
use crate::proto::v1 as pb;
use crate::store::{AttemptRecord, DeliveryRecord, UpdateRecord, WebhookStatsRecord};

impl From<AttemptErrorKind> for pb::AttemptErrorKind {
    fn from(kind: AttemptErrorKind) -> Self {
        match kind {
            AttemptErrorKind::Timeout => Self::Timeout,
            AttemptErrorKind::Connect => Self::Connect,
            AttemptErrorKind::Dns => Self::Dns,
            AttemptErrorKind::Tls => Self::Tls,
            AttemptErrorKind::Status => Self::Status,
            AttemptErrorKind::Refused => Self::Refused,
            AttemptErrorKind::Protocol => Self::Protocol,
        }
    }
}

impl From<AttemptTrigger> for pb::AttemptTrigger {
    fn from(trigger: AttemptTrigger) -> Self {
        match trigger {
            AttemptTrigger::Scheduled => Self::Scheduled,
            AttemptTrigger::Resend => Self::Resend,
            AttemptTrigger::Recover => Self::Recover,
        }
    }
}

impl From<UpdateKind> for pb::UpdateKind {
    fn from(kind: UpdateKind) -> Self {
        match kind {
            UpdateKind::Created => Self::Created,
            UpdateKind::AttemptSucceeded => Self::AttemptSucceeded,
            UpdateKind::AttemptFailed => Self::AttemptFailed,
            UpdateKind::Failed => Self::Failed,
            UpdateKind::Skipped => Self::Skipped,
            UpdateKind::Cancelled => Self::Cancelled,
            UpdateKind::Resent => Self::Resent,
            UpdateKind::WebhookDisabled => Self::WebhookDisabled,
            UpdateKind::WebhookEnabled => Self::WebhookEnabled,
            UpdateKind::CircuitOpened => Self::CircuitOpened,
            UpdateKind::CircuitClosed => Self::CircuitClosed,
            UpdateKind::DeliveryExhausted => Self::DeliveryExhausted,
        }
    }
}

impl From<DeliveryStatus> for pb::DeliveryStatus {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Failed => Self::Failed,
            DeliveryStatus::Skipped => Self::Skipped,
            DeliveryStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// A delivery status from the wire; UNSPECIFIED is `None`.
fn status_from_proto(value: pb::DeliveryStatus) -> Option<DeliveryStatus> {
    match value {
        pb::DeliveryStatus::Unspecified => None,
        pb::DeliveryStatus::Pending => Some(DeliveryStatus::Pending),
        pb::DeliveryStatus::Succeeded => Some(DeliveryStatus::Succeeded),
        pb::DeliveryStatus::Failed => Some(DeliveryStatus::Failed),
        pb::DeliveryStatus::Skipped => Some(DeliveryStatus::Skipped),
        pb::DeliveryStatus::Cancelled => Some(DeliveryStatus::Cancelled),
    }
}

/// Reads the `statuses` filter of ListDeliveries; unknown numbers and UNSPECIFIED are refused.
pub(crate) fn statuses(
    values: &[i32],
) -> Result<Vec<DeliveryStatus>, crate::domain::ValidationError> {
    values
        .iter()
        .map(|value| {
            pb::DeliveryStatus::try_from(*value)
                .ok()
                .and_then(status_from_proto)
                .ok_or_else(|| {
                    crate::domain::ValidationError::new(
                        "statuses",
                        format!("{value} is not a delivery status"),
                    )
                })
        })
        .collect()
}

/// The webhook-id header value of a delivery.
pub(crate) fn message_id(id: DeliveryId) -> String {
    id.message_id()
}

/// A delivery, with attempts when given.
pub(crate) fn delivery(record: &DeliveryRecord, attempts: &[AttemptRecord]) -> pb::Delivery {
    pb::Delivery {
        id: record.id.to_string(),
        webhook_id: record.webhook_id.to_string(),
        event_id: record.event_id.to_string(),
        event_type: record.event_type.clone(),
        request_id: record.request_id.clone(),
        function: record
            .function
            .map_or(pb::Function::Unspecified, pb::Function::from) as i32,
        status: pb::DeliveryStatus::from(record.status) as i32,
        status_reason: record.status_reason.clone(),
        attempt_count: record.attempt_count.max(0) as u32,
        next_attempt_at: record.next_attempt_at.map(to_proto),
        last_response_status: record.last_response_status.unwrap_or(0).max(0) as u32,
        created_at: Some(to_proto(record.created_at)),
        updated_at: Some(to_proto(record.updated_at)),
        payload: record.payload.clone().unwrap_or_default(),
        attempts: attempts
            .iter()
            .map(|a| attempt(a, record.payload.as_deref()))
            .collect(),
        message_id: message_id(record.id),
    }
}

fn headers(pairs: &[(String, String)]) -> Vec<pb::HttpHeader> {
    pairs
        .iter()
        .map(|(name, value)| pb::HttpHeader {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// One attempt; the body sent is the delivery's payload (stored once per event).
pub(crate) fn attempt(record: &AttemptRecord, body: Option<&str>) -> pb::DeliveryAttempt {
    let error_kind = record.error_kind.map_or(
        pb::AttemptErrorKind::Unspecified,
        pb::AttemptErrorKind::from,
    );
    let micros = record.duration_us.max(0);
    pb::DeliveryAttempt {
        id: record.id.to_string(),
        attempt_number: record.attempt_number.max(0) as u32,
        trigger: pb::AttemptTrigger::from(record.trigger) as i32,
        started_at: Some(to_proto(record.started_at)),
        duration: Some(prost_types::Duration {
            seconds: micros / 1_000_000,
            nanos: ((micros % 1_000_000) * 1000) as i32,
        }),
        request_url: record.request_url.clone(),
        request_headers: headers(&record.request_headers),
        request_body: body.unwrap_or_default().to_owned(),
        response_status: record.response_status.unwrap_or(0).max(0) as u32,
        response_headers: headers(&record.response_headers),
        response_body: record.response_body.clone(),
        response_body_truncated: record.response_body_truncated,
        error_kind: error_kind as i32,
        error_message: record.error_message.clone(),
        succeeded: record.error_kind.is_none()
            && record
                .response_status
                .is_some_and(|s| (200..300).contains(&s)),
    }
}

/// One delivery-log entry. The attempt carries no request body (it is the delivery's payload,
/// which GetDelivery returns), keeping the stream light.
pub fn update_message(update: &UpdateRecord) -> pb::DeliveryUpdate {
    pb::DeliveryUpdate {
        cursor: update.cursor.to_string(),
        kind: pb::UpdateKind::from(update.kind) as i32,
        delivery: update.delivery.as_ref().map(|d| delivery(d, &[])),
        attempt: update.attempt.as_ref().map(|a| attempt(a, None)),
        webhook: update.webhook.as_ref().map(super::webhook),
    }
}

fn seconds(value: f64) -> prost_types::Duration {
    let value = value.max(0.0);
    prost_types::Duration {
        seconds: value.trunc() as i64,
        nanos: (value.fract() * 1e9) as i32,
    }
}

/// A webhook's statistics.
pub(crate) fn webhook_stats(
    id: WebhookId,
    since: time::OffsetDateTime,
    stats: &WebhookStatsRecord,
) -> pb::WebhookStats {
    let count = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
    pb::WebhookStats {
        webhook_id: id.to_string(),
        since: Some(to_proto(since)),
        attempts: count(stats.attempts),
        succeeded_attempts: count(stats.succeeded_attempts),
        success_rate: if stats.attempts > 0 {
            stats.succeeded_attempts as f64 / stats.attempts as f64
        } else {
            0.0
        },
        latency_p50: stats.latency.map(|l| seconds(l.0)),
        latency_p90: stats.latency.map(|l| seconds(l.1)),
        latency_p99: stats.latency.map(|l| seconds(l.2)),
        last_success_at: stats.last_success_at.map(to_proto),
        last_failure_at: stats.last_failure_at.map(to_proto),
        pending_deliveries: count(stats.pending_deliveries),
        failed_deliveries: count(stats.failed_deliveries),
    }
}
