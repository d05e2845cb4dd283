//! The alert processor: walks the webhook-level entries of the update log once, cluster-wide
//! (the progress row in `delivery_update_alert_progress` is taken by one instance at a time), counts
//! the state changes (`webhooks_webhook_state_changes_total`) and, when
//! `WEBHOOKS_OPERATIONAL_WEBHOOK_URL` is set, enqueues an operational webhook for each alert.
//! Those go through the ordinary queue: durable, retried, signed, behind the SSRF guard.

use std::time::Duration;

use crate::domain::{Alert, AlertType, AlertedDelivery, AlertedWebhook, PublishedEvent, WebhookId};
use crate::shutdown::Shutdown;
use crate::store::{Store, UpdateRecord};

/// Entries handled per transaction.
const BATCH: i64 = 100;

/// The operational event for one log entry; `None` when it raises no alert.
pub fn alert_event(entry: &UpdateRecord) -> Option<PublishedEvent> {
    let alert_type = AlertType::of_update(entry.kind)?;
    let webhook = entry.webhook.as_ref()?;
    let delivery = entry.delivery.as_ref().map(|d| AlertedDelivery {
        id: d.id.to_string(),
        message_id: d.id.message_id(),
        event_id: d.event_id.to_string(),
        event_type: d.event_type.clone(),
        attempt_count: d.attempt_count,
        last_response_status: d.last_response_status,
        status_reason: d.status_reason.clone(),
    });
    let alert = Alert {
        alert_type,
        cursor: entry.cursor.get(),
        occurred_at: entry.recorded_at,
        webhook: AlertedWebhook {
            id: webhook.id,
            name: webhook.name.clone(),
            function: webhook.function,
            destination_url: webhook.destination_url.clone(),
            enabled: webhook.enabled,
            disabled_reason: webhook.disabled_reason.clone(),
            disabled_at: webhook.disabled_at,
            consecutive_failures: webhook.consecutive_failures,
            circuit_open_until: webhook.circuit_open_until,
            failing_since: webhook.failing_since,
            last_error: webhook.last_error.clone(),
        },
        delivery: (alert_type == AlertType::DeliveryExhausted)
            .then_some(delivery)
            .flatten(),
    };
    Some(alert.to_event())
}

/// Runs the processor every `interval` until `shutdown` fires; `operational` is the internal
/// webhook alerts go to, if configured.
pub async fn run(
    store: Store,
    operational: Option<WebhookId>,
    interval: Duration,
    mut shutdown: Shutdown,
) {
    loop {
        // Drain: a full batch is followed at once by the next.
        loop {
            match store.raise_alerts(BATCH, operational, alert_event).await {
                Ok(Some(entries)) => {
                    for entry in &entries {
                        crate::metrics::record_state_change(entry.kind);
                    }
                    if (entries.len() as i64) < BATCH {
                        break;
                    }
                }
                // Another instance is at it.
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "raising alerts failed; trying again");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.recv() => return,
        }
    }
}
