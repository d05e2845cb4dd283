//! Operational webhooks: the events `WEBHOOKS_OPERATIONAL_WEBHOOK_URL` receives about the other
//! webhooks (documented in docs/receiving-webhooks.md), built into the same kind of signed
//! body as every other event.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Decision, EventId, Function, PublishedEvent, UpdateKind, WebhookId, timestamps};

/// What an operational webhook reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertType {
    /// `webhook.disabled`.
    WebhookDisabled,
    /// `webhook.circuit_opened`.
    CircuitOpened,
    /// `webhook.circuit_closed`.
    CircuitClosed,
    /// `delivery.exhausted`.
    DeliveryExhausted,
}

impl AlertType {
    /// Every type, in the order the docs list them.
    pub const ALL: [AlertType; 4] = [
        AlertType::WebhookDisabled,
        AlertType::CircuitOpened,
        AlertType::CircuitClosed,
        AlertType::DeliveryExhausted,
    ];

    /// The event type receivers see.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::WebhookDisabled => "webhook.disabled",
            AlertType::CircuitOpened => "webhook.circuit_opened",
            AlertType::CircuitClosed => "webhook.circuit_closed",
            AlertType::DeliveryExhausted => "delivery.exhausted",
        }
    }

    /// The alert a log entry of `kind` raises; `None` for the kinds that raise none
    /// (delivery progress, and a webhook being enabled again: an admin did that on purpose).
    pub fn of_update(kind: UpdateKind) -> Option<Self> {
        match kind {
            UpdateKind::WebhookDisabled => Some(AlertType::WebhookDisabled),
            UpdateKind::CircuitOpened => Some(AlertType::CircuitOpened),
            UpdateKind::CircuitClosed => Some(AlertType::CircuitClosed),
            UpdateKind::DeliveryExhausted => Some(AlertType::DeliveryExhausted),
            _ => None,
        }
    }
}

/// The webhook an alert is about, as it was right after the change.
#[derive(Debug, Clone)]
pub struct AlertedWebhook {
    /// Id.
    pub id: WebhookId,
    /// Name.
    pub name: String,
    /// Function.
    pub function: Function,
    /// Destination URL.
    pub destination_url: String,
    /// Enabled after the change.
    pub enabled: bool,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Since when.
    pub disabled_at: Option<OffsetDateTime>,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// Until when its circuit is open.
    pub circuit_open_until: Option<OffsetDateTime>,
    /// Since when every delivery fails.
    pub failing_since: Option<OffsetDateTime>,
    /// The latest failure reason.
    pub last_error: String,
}

/// The delivery a `delivery.exhausted` alert is about.
#[derive(Debug, Clone)]
pub struct AlertedDelivery {
    /// Delivery id.
    pub id: String,
    /// The `webhook-id` header its attempts carried.
    pub message_id: String,
    /// The event it delivered.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Attempts made.
    pub attempt_count: i32,
    /// The last status code received (`None`: no answer).
    pub last_response_status: Option<i32>,
    /// Why it failed.
    pub status_reason: String,
}

/// One alert: what happened, when, to which webhook.
#[derive(Debug, Clone)]
pub struct Alert {
    /// What happened.
    pub alert_type: AlertType,
    /// The log cursor of the change: the event's idempotency key, so an alert raised twice
    /// (two instances, a retried round) is stored once.
    pub cursor: i64,
    /// When the change happened.
    pub occurred_at: OffsetDateTime,
    /// The webhook.
    pub webhook: AlertedWebhook,
    /// The delivery, for `delivery.exhausted`.
    pub delivery: Option<AlertedDelivery>,
}

fn time_or_null(at: Option<OffsetDateTime>) -> Value {
    at.map_or(Value::Null, |at| json!(timestamps::rfc3339(at)))
}

impl Alert {
    /// One sentence on why: the disable reason, the latest error, or the delivery's failure.
    fn reason(&self) -> String {
        match self.alert_type {
            AlertType::WebhookDisabled => self.webhook.disabled_reason.clone().unwrap_or_default(),
            AlertType::CircuitOpened => self.webhook.last_error.clone(),
            AlertType::CircuitClosed => String::new(),
            AlertType::DeliveryExhausted => self
                .delivery
                .as_ref()
                .map(|d| d.status_reason.clone())
                .unwrap_or_default(),
        }
    }

    /// The event sent to the operational webhook.
    pub fn to_event(&self) -> PublishedEvent {
        let id = EventId::now_v7();
        let w = &self.webhook;
        let mut data = json!({
            "event_id": id.to_string(),
            "occurred_at": timestamps::rfc3339(self.occurred_at),
            "reason": self.reason(),
            "webhook": {
                "id": w.id.to_string(),
                "name": w.name,
                "function": w.function.as_str(),
                "destination_url": w.destination_url,
                "enabled": w.enabled,
                "disabled_reason": w.disabled_reason,
                "disabled_at": time_or_null(w.disabled_at),
                "consecutive_failures": w.consecutive_failures,
                "circuit_open_until": time_or_null(w.circuit_open_until),
                "failing_since": time_or_null(w.failing_since),
                "last_error": w.last_error,
            },
        });
        if let Some(d) = &self.delivery {
            data["delivery"] = json!({
                "id": d.id,
                "message_id": d.message_id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "attempt_count": d.attempt_count,
                "last_response_status": d.last_response_status,
                "status_reason": d.status_reason,
            });
        }
        let body = json!({
            "type": self.alert_type.as_str(),
            "timestamp": timestamps::rfc3339(self.occurred_at),
            "data": data,
        })
        .to_string();
        PublishedEvent {
            id,
            idempotency_key: format!("operational:{}", self.cursor),
            content_hash: Sha256::digest(body.as_bytes()).to_vec(),
            function: w.function,
            decision: Decision::Rejected,
            // Not ordered against anything: one slow alert must not hold back the next.
            request_id: String::new(),
            event_type: self.alert_type.as_str().to_owned(),
            occurred_at: self.occurred_at,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(alert_type: AlertType) -> Alert {
        Alert {
            alert_type,
            cursor: 7,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            webhook: AlertedWebhook {
                id: WebhookId::now_v7(),
                name: "payments".into(),
                function: Function::Withdrawal,
                destination_url: "https://hooks.example.com/x".into(),
                enabled: false,
                disabled_reason: Some("endpoint answered 410 Gone".into()),
                disabled_at: Some(OffsetDateTime::UNIX_EPOCH),
                consecutive_failures: 1,
                circuit_open_until: None,
                failing_since: None,
                last_error: "HTTP 410".into(),
            },
            delivery: None,
        }
    }

    #[test]
    fn disabled_alert_has_the_reason_and_a_key_per_cursor() {
        let event = alert(AlertType::WebhookDisabled).to_event();
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["type"], "webhook.disabled");
        assert_eq!(body["data"]["reason"], "endpoint answered 410 Gone");
        assert_eq!(body["data"]["webhook"]["enabled"], false);
        assert!(body["data"].get("delivery").is_none());
        assert_eq!(event.idempotency_key, "operational:7");
    }

    #[test]
    fn only_alerting_kinds_raise_alerts() {
        assert_eq!(AlertType::of_update(UpdateKind::Failed), None);
        assert_eq!(AlertType::of_update(UpdateKind::WebhookEnabled), None);
        assert_eq!(
            AlertType::of_update(UpdateKind::DeliveryExhausted),
            Some(AlertType::DeliveryExhausted)
        );
    }
}
