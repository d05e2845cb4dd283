//! Delivery statistics: the queue's depth and age (metrics) and one webhook's (GetWebhookStats).

use time::OffsetDateTime;

use crate::domain::WebhookId;
use crate::store::{Store, StoreError};

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
        webhook_id: WebhookId,
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
