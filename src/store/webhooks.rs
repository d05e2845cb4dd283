//! Webhook configuration rows.

use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{DeliveryStatus, Store, StoreError};
use crate::domain::{
    Description, DestinationUrl, EventSelection, Function, PageToken, Secret, WebhookName,
};

/// A webhook as stored (deleted ones are never returned).
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// Id.
    pub id: Uuid,
    /// Insertion order, for paging.
    pub seq: i64,
    /// Name.
    pub name: String,
    /// Destination URL.
    pub destination_url: String,
    /// Function.
    pub function: Function,
    /// Selected events.
    pub events: EventSelection,
    /// Description.
    pub description: String,
    /// A few characters of the signing secret (the secret itself stays sealed in the store).
    pub secret_hint: String,
    /// Deliver only the first matching event per request.
    pub deliver_once_per_request: bool,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Since when it is disabled.
    pub disabled_at: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
    /// Failed attempts in a row (the circuit breaker's count).
    pub consecutive_failures: i32,
    /// While the circuit is open: until when deliveries wait.
    pub circuit_open_until: Option<OffsetDateTime>,
    /// The latest delivery's status and when it last changed; `None` without deliveries.
    pub last_delivery: Option<(DeliveryStatus, OffsetDateTime)>,
}

/// What CreateWebhook stores.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Name.
    pub name: WebhookName,
    /// Destination.
    pub destination_url: DestinationUrl,
    /// Function.
    pub function: Function,
    /// Selected events.
    pub events: EventSelection,
    /// Description.
    pub description: Description,
    /// Signing secret.
    pub secret: Secret,
    /// Deliver only the first matching event per request.
    pub deliver_once_per_request: bool,
}

/// The editable fields of a webhook, as a whole; UpdateWebhook merges the mask into it.
#[derive(Debug, Clone)]
pub struct WebhookChanges {
    /// Name.
    pub name: WebhookName,
    /// Destination.
    pub destination_url: DestinationUrl,
    /// Function.
    pub function: Function,
    /// Selected events.
    pub events: EventSelection,
    /// Description.
    pub description: Description,
    /// Deliver only the first matching event per request.
    pub deliver_once_per_request: bool,
}

/// ListWebhooks filters.
#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    /// Only this function.
    pub function: Option<Function>,
    /// Only enabled or only disabled.
    pub enabled: Option<bool>,
}

/// What every read of a webhook selects, from a webhook row named `w` joined with
/// [`LAST_DELIVERY`].
const COLUMNS: &str = "w.id, w.seq, w.name, w.destination_url, w.function, w.approval_nodes, \
    w.on_rejection, w.description, w.secret_hint, w.deliver_once_per_request, w.enabled, \
    w.disabled_reason, w.disabled_at, w.created_at, w.updated_at, w.consecutive_failures, \
    CASE WHEN w.circuit_open_until > now() THEN w.circuit_open_until END AS circuit_open_until, \
    last.status AS last_delivery_status, last.updated_at AS last_delivery_at";

/// The latest delivery of the webhook row `w`: a lateral join that reads one entry of the index
/// `deliveries_by_webhook (webhook_id, seq DESC)` per webhook, so listing a page of webhooks
/// costs one index probe per row, however long their histories.
const LAST_DELIVERY: &str = "LEFT JOIN LATERAL (SELECT d.status, d.updated_at FROM deliveries d \
    WHERE d.webhook_id = w.id ORDER BY d.seq DESC LIMIT 1) last ON true";

fn from_row(row: &Row) -> Result<WebhookRecord, StoreError> {
    let function: String = row.try_get("function")?;
    let nodes: Vec<i32> = row.try_get("approval_nodes")?;
    Ok(WebhookRecord {
        id: row.try_get("id")?,
        seq: row.try_get("seq")?,
        name: row.try_get("name")?,
        destination_url: row.try_get("destination_url")?,
        function: Function::from_db(&function)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown function {function}")))?,
        events: EventSelection::from_parts(
            nodes.into_iter().map(|n| n.max(0) as u32).collect(),
            row.try_get("on_rejection")?,
        ),
        description: row.try_get("description")?,
        secret_hint: row.try_get("secret_hint")?,
        deliver_once_per_request: row.try_get("deliver_once_per_request")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        disabled_at: row.try_get("disabled_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        circuit_open_until: row.try_get("circuit_open_until")?,
        last_delivery: match (
            row.try_get::<_, Option<String>>("last_delivery_status")?,
            row.try_get::<_, Option<OffsetDateTime>>("last_delivery_at")?,
        ) {
            (Some(status), Some(at)) => Some((delivery_status(&status)?, at)),
            _ => None,
        },
    })
}

/// A delivery status from its database name.
fn delivery_status(name: &str) -> Result<DeliveryStatus, StoreError> {
    use DeliveryStatus::{Cancelled, Failed, Pending, Skipped, Succeeded};
    [Pending, Succeeded, Failed, Skipped, Cancelled]
        .into_iter()
        .find(|status| status.as_str() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery status {name}")))
}

fn nodes_column(events: &EventSelection) -> Vec<i32> {
    events.approval_nodes().iter().map(|n| *n as i32).collect()
}

impl Store {
    /// Stores a new, enabled webhook.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<WebhookRecord, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH w AS (INSERT INTO webhooks (id, name, destination_url, function, approval_nodes, \
             on_rejection, description, secret, deliver_once_per_request, secret_hint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *) \
             SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = client.prepare_cached(&sql).await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &Uuid::now_v7(),
                    &new.name.as_str(),
                    &new.destination_url.as_str(),
                    &new.function.as_str(),
                    &nodes_column(&new.events),
                    &new.events.rejection(),
                    &new.description.as_str(),
                    &self.vault().seal(&new.secret)?,
                    &new.deliver_once_per_request,
                    &new.secret.hint(),
                ],
            )
            .await?;
        from_row(&row)
    }

    /// One webhook, unless unknown or deleted.
    pub async fn get_webhook(&self, id: Uuid) -> Result<Option<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks w {LAST_DELIVERY} WHERE w.id = $1 AND w.deleted_at IS NULL"
        );
        let statement = client.prepare_cached(&sql).await?;
        client
            .query_opt(&statement, &[&id])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// A page of webhooks in creation order, and the token of the next page if there is one.
    pub async fn list_webhooks(
        &self,
        filter: &WebhookFilter,
        after: Option<PageToken>,
        limit: i64,
    ) -> Result<(Vec<WebhookRecord>, Option<PageToken>), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks w {LAST_DELIVERY} WHERE w.deleted_at IS NULL \
             AND w.seq > $1 AND ($2::text IS NULL OR w.function = $2) \
             AND ($3::bool IS NULL OR w.enabled = $3) ORDER BY w.seq LIMIT $4"
        );
        let statement = client.prepare_cached(&sql).await?;
        let after_seq = after.map_or(0, |t| t.after_seq);
        let rows = client
            .query(
                &statement,
                &[
                    &after_seq,
                    &filter.function.map(Function::as_str),
                    &filter.enabled,
                    &(limit + 1),
                ],
            )
            .await?;
        let mut records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if records.len() as i64 > limit {
            records.truncate(limit as usize);
            records.last().map(|r| PageToken { after_seq: r.seq })
        } else {
            None
        };
        Ok((records, next))
    }

    /// Edits a webhook: `apply` gets the current record (row-locked) and returns the new editable
    /// fields, or an error that aborts the edit. `None` when the webhook is unknown.
    pub async fn update_webhook<E>(
        &self,
        id: Uuid,
        apply: impl FnOnce(&WebhookRecord) -> Result<WebhookChanges, E>,
    ) -> Result<Option<Result<WebhookRecord, E>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks w {LAST_DELIVERY} \
             WHERE w.id = $1 AND w.deleted_at IS NULL FOR UPDATE OF w"
        );
        let Some(row) = tx.query_opt(&sql, &[&id]).await? else {
            return Ok(None);
        };
        let current = from_row(&row)?;
        let changes = match apply(&current) {
            Ok(changes) => changes,
            Err(e) => return Ok(Some(Err(e))),
        };
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET name = $2, destination_url = $3, function = $4, \
             approval_nodes = $5, on_rejection = $6, description = $7, \
             deliver_once_per_request = $8, updated_at = now() WHERE id = $1 RETURNING *) \
             SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let row = tx
            .query_one(
                &sql,
                &[
                    &id,
                    &changes.name.as_str(),
                    &changes.destination_url.as_str(),
                    &changes.function.as_str(),
                    &nodes_column(&changes.events),
                    &changes.events.rejection(),
                    &changes.description.as_str(),
                    &changes.deliver_once_per_request,
                ],
            )
            .await?;
        let updated = from_row(&row)?;
        tx.commit().await?;
        Ok(Some(Ok(updated)))
    }

    /// Disables (with a reason) or re-enables a webhook. Re-enabling clears the reason; pending
    /// deliveries resume because workers only claim deliveries of enabled webhooks.
    pub async fn set_webhook_enabled(
        &self,
        id: Uuid,
        enabled: bool,
        reason: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET enabled = $2, updated_at = now(), \
             disabled_reason = CASE WHEN $2 THEN NULL WHEN enabled THEN $3 ELSE disabled_reason END, \
             consecutive_failures = CASE WHEN $2 AND NOT enabled THEN 0 ELSE consecutive_failures END, \
             circuit_open_until = CASE WHEN $2 AND NOT enabled THEN NULL ELSE circuit_open_until END, \
             failing_since = CASE WHEN $2 AND NOT enabled THEN NULL ELSE failing_since END, \
             disabled_at = CASE WHEN $2 THEN NULL WHEN enabled THEN now() ELSE disabled_at END \
             WHERE id = $1 AND deleted_at IS NULL RETURNING *) SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = client.prepare_cached(&sql).await?;
        let row = client
            .query_opt(&statement, &[&id, &enabled, &reason])
            .await?;
        let record = row.as_ref().map(from_row).transpose()?;
        if enabled && record.is_some() {
            // Wake workers: this webhook's waiting deliveries are claimable again.
            client
                .execute("SELECT pg_notify($1, '')", &[&super::DELIVERIES_CHANNEL])
                .await?;
        }
        Ok(record)
    }

    /// Deletes a webhook (soft: its history stays) and cancels its pending deliveries, in one
    /// transaction. Returns false when unknown.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute(
                "UPDATE webhooks SET deleted_at = now(), enabled = false, updated_at = now() \
                 WHERE id = $1 AND deleted_at IS NULL",
                &[&id],
            )
            .await?;
        if deleted == 0 {
            return Ok(false);
        }
        super::deliveries::cancel_pending_for_webhook(&tx, id).await?;
        tx.commit().await?;
        self.wrote_inbox();
        Ok(true)
    }

    /// Replaces the signing secret, keeping the old one for `grace` so receivers can switch over.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        secret: &Secret,
        grace: std::time::Duration,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET previous_secret = secret, secret = $2, secret_hint = $4, \
             previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL RETURNING *) SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = client.prepare_cached(&sql).await?;
        let row = client
            .query_opt(
                &statement,
                &[
                    &id,
                    &self.vault().seal(secret)?,
                    &grace.as_secs_f64(),
                    &secret.hint(),
                ],
            )
            .await?;
        row.as_ref().map(from_row).transpose()
    }
}
