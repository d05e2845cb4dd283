//! Delivery history: ListDeliveries pages and one delivery with its attempts (GetDelivery).

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use super::{AttemptRecord, COLUMNS, DeliveryRecord, attempt_from_row, delivery_from_row};
use crate::domain::{DeliveryId, DeliveryStatus, PageToken, WebhookId};
use crate::store::{Store, StoreError};

/// ListDeliveries filters.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Webhook.
    pub webhook_id: Option<WebhookId>,
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

impl Store {
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
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        self.get_delivery_in(&self.client().await?, id).await
    }

    /// [`Store::get_delivery`] on `client` (a transaction of a request id, which sees its own
    /// new delivery).
    pub async fn get_delivery_in(
        &self,
        client: &impl GenericClient,
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
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
}
