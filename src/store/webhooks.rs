//! Webhook configuration rows.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;

use serde_json::json;

use super::audit::{self, webhook_diff};
use super::vault::Sealed;
use super::{Store, StoreError};
use crate::domain::{
    AuditAction, CertificateInfo, Change, ClientCertificate, CustomHeaders, DeliveryStatus,
    Description, DestinationTls, DestinationUrl, EventSelection, Function, PageToken, PrivateCa,
    RequestContext, Secret, WebhookId, WebhookName,
};

/// A webhook as stored (deleted ones are never returned).
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// Id.
    pub id: WebhookId,
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
    /// Since when every delivery has failed (the auto-disable clock); `None` while healthy.
    pub failing_since: Option<OffsetDateTime>,
    /// Why the latest delivery last failed ("" unless it is pending after a failure or failed).
    pub last_error: String,
    /// The latest delivery's status and when it last changed; `None` without deliveries.
    pub last_delivery: Option<(DeliveryStatus, OffsetDateTime)>,
    /// The custom headers' names and value hints (the values stay sealed in the store).
    pub header_hints: Vec<(String, String)>,
    /// The client certificate for mutual TLS, as responses show it.
    pub client_certificate: Option<CertificateInfo>,
    /// The private CA destinations are verified against, as responses show it.
    pub server_ca: Option<CertificateInfo>,
    /// The version of the settings (bumped by a trigger on every change of them): the etag.
    pub revision: i64,
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
    /// Extra request headers (sealed when stored).
    pub headers: CustomHeaders,
    /// Client certificate for mutual TLS (its key sealed when stored).
    pub client_certificate: Option<ClientCertificate>,
    /// Private CA the destination is verified against instead of public roots.
    pub server_ca: Option<PrivateCa>,
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
    /// Extra request headers, as a whole (re-sealed on every edit).
    pub headers: CustomHeaders,
    /// The client certificate, unless kept.
    pub client_certificate: Change<ClientCertificate>,
    /// The private CA, unless kept.
    pub server_ca: Change<PrivateCa>,
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
    last.status AS last_delivery_status, last.updated_at AS last_delivery_at, \
    w.failing_since, CASE WHEN last.status IN ('pending', 'failed') THEN last.status_reason END AS last_error, \
    w.custom_header_hints, w.client_cert_subject, w.client_cert_issuer, w.client_cert_not_after, \
    w.server_ca_subject, w.server_ca_issuer, w.server_ca_not_after, w.revision";

/// The latest delivery of the webhook row `w`: a lateral join that reads one entry of the index
/// `deliveries_by_webhook (webhook_id, seq DESC)` per webhook, so listing a page of webhooks
/// costs one index probe per row, however long their histories.
const LAST_DELIVERY: &str = "LEFT JOIN LATERAL (SELECT d.status, d.status_reason, d.updated_at FROM deliveries d \
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
        failing_since: row.try_get("failing_since")?,
        last_error: row
            .try_get::<_, Option<String>>("last_error")?
            .unwrap_or_default(),
        last_delivery: match (
            row.try_get::<_, Option<String>>("last_delivery_status")?,
            row.try_get::<_, Option<OffsetDateTime>>("last_delivery_at")?,
        ) {
            (Some(status), Some(at)) => Some((delivery_status(&status)?, at)),
            _ => None,
        },
        header_hints: hints_from_json(&row.try_get("custom_header_hints")?),
        client_certificate: certificate_info(row, "client_cert")?,
        server_ca: certificate_info(row, "server_ca")?,
        revision: row.try_get("revision")?,
    })
}

/// The hints column: `[{"name": ..., "hint": ...}]`.
fn hints_from_json(value: &serde_json::Value) -> Vec<(String, String)> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let text = |key: &str| item[key].as_str().unwrap_or_default().to_owned();
                    (text("name"), text("hint"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn hints_to_json(headers: &CustomHeaders) -> serde_json::Value {
    serde_json::Value::Array(
        headers
            .hints()
            .into_iter()
            .map(|(name, hint)| serde_json::json!({ "name": name, "hint": hint }))
            .collect(),
    )
}

/// The `{prefix}_subject`, `_issuer` and `_not_after` columns, when set.
fn certificate_info(row: &Row, prefix: &str) -> Result<Option<CertificateInfo>, StoreError> {
    let subject: Option<String> = row.try_get(format!("{prefix}_subject").as_str())?;
    let issuer: Option<String> = row.try_get(format!("{prefix}_issuer").as_str())?;
    let not_after: Option<OffsetDateTime> = row.try_get(format!("{prefix}_not_after").as_str())?;
    Ok(match (subject, not_after) {
        (Some(subject), Some(not_after)) => Some(CertificateInfo {
            subject,
            issuer: issuer.unwrap_or_default(),
            not_after,
        }),
        _ => None,
    })
}

/// The stored form of a credential's columns.
struct CredentialColumns {
    headers: Option<Vec<u8>>,
    header_hints: serde_json::Value,
    client: Option<(String, Vec<u8>, CertificateInfo)>,
    ca: Option<(String, CertificateInfo)>,
}

impl Store {
    /// The sealed envelope of `headers`, `None` when there are none.
    fn seal_headers(&self, headers: &CustomHeaders) -> Result<Option<Vec<u8>>, StoreError> {
        if headers.is_empty() {
            return Ok(None);
        }
        self.vault()
            .seal_bytes(Sealed::Headers, &headers.to_json())
            .map(Some)
    }

    /// Opens a stored custom header envelope (`None`: no headers).
    pub(crate) fn open_headers(&self, sealed: Option<&[u8]>) -> Result<CustomHeaders, StoreError> {
        let Some(sealed) = sealed else {
            return Ok(CustomHeaders::none());
        };
        let json = self.vault().open_bytes(Sealed::Headers, sealed)?;
        CustomHeaders::from_json(&json).map_err(StoreError::Corrupt)
    }

    /// The TLS settings in a claimed row (the claim's `RETURNING` names the webhook columns as
    /// they are, and `webhook_updated_at`); `None` when the webhook has neither a client
    /// certificate nor a private CA. The key is opened here.
    pub(crate) fn destination_tls(&self, row: &Row) -> Result<Option<DestinationTls>, StoreError> {
        let chain: Option<String> = row.try_get("client_cert_pem")?;
        let key: Option<Vec<u8>> = row.try_get("client_key")?;
        let ca: Option<String> = row.try_get("server_ca_pem")?;
        let client_certificate = match (chain, key, certificate_info(row, "client_cert")?) {
            (Some(chain), Some(key), Some(info)) => {
                let key = self.vault().open_bytes(Sealed::ClientKey, &key)?;
                let key = String::from_utf8(key)
                    .map_err(|_| StoreError::Corrupt("a client key is not UTF-8 PEM".into()))?;
                Some(ClientCertificate::from_parts(chain, key, info))
            }
            _ => None,
        };
        let server_ca = match (ca, certificate_info(row, "server_ca")?) {
            (Some(pem), Some(info)) => Some(PrivateCa::from_parts(pem, info)),
            _ => None,
        };
        if client_certificate.is_none() && server_ca.is_none() {
            return Ok(None);
        }
        Ok(Some(DestinationTls {
            version: row.try_get("webhook_updated_at")?,
            client_certificate,
            server_ca,
        }))
    }

    fn credential_columns(
        &self,
        headers: &CustomHeaders,
        client: Option<&ClientCertificate>,
        ca: Option<&PrivateCa>,
    ) -> Result<CredentialColumns, StoreError> {
        Ok(CredentialColumns {
            headers: self.seal_headers(headers)?,
            header_hints: hints_to_json(headers),
            client: client
                .map(|c| {
                    self.vault()
                        .seal_bytes(Sealed::ClientKey, c.key_pem().as_bytes())
                        .map(|key| (c.chain_pem().to_owned(), key, c.info().clone()))
                })
                .transpose()?,
            ca: ca.map(|ca| (ca.pem().to_owned(), ca.info().clone())),
        })
    }
}

/// A delivery status from its database name.
fn delivery_status(name: &str) -> Result<DeliveryStatus, StoreError> {
    super::deliveries::stored(DeliveryStatus::from_db, "delivery status", name)
}

fn nodes_column(events: &EventSelection) -> Vec<i32> {
    events.approval_nodes().iter().map(|n| *n as i32).collect()
}

impl Store {
    /// Stores a new, enabled webhook, with its audit row by `context`.
    pub async fn create_webhook(
        &self,
        new: &NewWebhook,
        context: &RequestContext,
    ) -> Result<WebhookRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let record = self.create_webhook_in(&tx, new, context).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// [`Store::create_webhook`] in the transaction `tx` (of a request id), with its audit row.
    pub async fn create_webhook_in(
        &self,
        tx: &impl GenericClient,
        new: &NewWebhook,
        context: &RequestContext,
    ) -> Result<WebhookRecord, StoreError> {
        let sql = format!(
            "WITH w AS (INSERT INTO webhooks (id, name, destination_url, function, approval_nodes, \
             on_rejection, description, secret, deliver_once_per_request, secret_hint, \
             custom_headers, custom_header_hints, client_cert_pem, client_key, client_cert_subject, \
             client_cert_issuer, client_cert_not_after, server_ca_pem, server_ca_subject, \
             server_ca_issuer, server_ca_not_after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21) RETURNING *) \
             SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = tx.prepare_cached(&sql).await?;
        let columns = self.credential_columns(
            &new.headers,
            new.client_certificate.as_ref(),
            new.server_ca.as_ref(),
        )?;
        let client_cert = columns.client.as_ref();
        let ca = columns.ca.as_ref();
        let row = tx
            .query_one(
                &statement,
                &[
                    &WebhookId::now_v7(),
                    &new.name.as_str(),
                    &new.destination_url.as_str(),
                    &new.function.as_str(),
                    &nodes_column(&new.events),
                    &new.events.rejection(),
                    &new.description.as_str(),
                    &self.vault().seal(&new.secret)?,
                    &new.deliver_once_per_request,
                    &new.secret.hint(),
                    &columns.headers,
                    &columns.header_hints,
                    &client_cert.map(|c| c.0.as_str()),
                    &client_cert.map(|c| c.1.as_slice()),
                    &client_cert.map(|c| c.2.subject.as_str()),
                    &client_cert.map(|c| c.2.issuer.as_str()),
                    &client_cert.map(|c| c.2.not_after),
                    &ca.map(|c| c.0.as_str()),
                    &ca.map(|c| c.1.subject.as_str()),
                    &ca.map(|c| c.1.issuer.as_str()),
                    &ca.map(|c| c.1.not_after),
                ],
            )
            .await?;
        let record = from_row(&row)?;
        let diff = webhook_diff(None, Some(&record), &[]);
        audit::append(
            tx,
            &context.audit(AuditAction::WebhookCreated, "webhook", record.id, diff),
        )
        .await?;
        Ok(record)
    }

    /// One webhook, unless unknown or deleted.
    pub async fn get_webhook(&self, id: WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM webhooks w {LAST_DELIVERY} WHERE w.id = $1 AND w.deleted_at IS NULL AND w.kind = 'endpoint'"
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
             AND w.kind = 'endpoint' AND w.seq > $1 AND ($2::text IS NULL OR w.function = $2) \
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

    /// Edits a webhook: `apply` gets the current record (row-locked) and its custom headers
    /// (opened: an edit may keep values it does not retype), and returns the new editable
    /// fields, or an error that aborts the edit. `None` when the webhook is unknown.
    pub async fn update_webhook<E>(
        &self,
        id: WebhookId,
        context: &RequestContext,
        apply: impl FnOnce(&WebhookRecord, &CustomHeaders) -> Result<WebhookChanges, E>,
    ) -> Result<Option<Result<WebhookRecord, E>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let sql = format!(
            "SELECT {COLUMNS}, w.custom_headers FROM webhooks w {LAST_DELIVERY} \
             WHERE w.id = $1 AND w.deleted_at IS NULL AND w.kind = 'endpoint' FOR UPDATE OF w"
        );
        let Some(row) = tx.query_opt(&sql, &[&id]).await? else {
            return Ok(None);
        };
        let current = from_row(&row)?;
        let sealed: Option<Vec<u8>> = row.try_get("custom_headers")?;
        let headers = self.open_headers(sealed.as_deref())?;
        let changes = match apply(&current, &headers) {
            Ok(changes) => changes,
            Err(e) => return Ok(Some(Err(e))),
        };
        let (set_client, client_cert) = match &changes.client_certificate {
            Change::Keep => (false, None),
            Change::Set(c) => (true, Some(c)),
            Change::Remove => (true, None),
        };
        let (set_ca, ca) = match &changes.server_ca {
            Change::Keep => (false, None),
            Change::Set(c) => (true, Some(c)),
            Change::Remove => (true, None),
        };
        let columns = self.credential_columns(&changes.headers, client_cert, ca)?;
        let client_cert = columns.client.as_ref();
        let ca = columns.ca.as_ref();
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET name = $2, destination_url = $3, function = $4, \
             approval_nodes = $5, on_rejection = $6, description = $7, \
             deliver_once_per_request = $8, custom_headers = $9, custom_header_hints = $10, \
             client_cert_pem = CASE WHEN $11 THEN $12 ELSE client_cert_pem END, \
             client_key = CASE WHEN $11 THEN $13 ELSE client_key END, \
             client_cert_subject = CASE WHEN $11 THEN $14 ELSE client_cert_subject END, \
             client_cert_issuer = CASE WHEN $11 THEN $15 ELSE client_cert_issuer END, \
             client_cert_not_after = CASE WHEN $11 THEN $16 ELSE client_cert_not_after END, \
             server_ca_pem = CASE WHEN $17 THEN $18 ELSE server_ca_pem END, \
             server_ca_subject = CASE WHEN $17 THEN $19 ELSE server_ca_subject END, \
             server_ca_issuer = CASE WHEN $17 THEN $20 ELSE server_ca_issuer END, \
             server_ca_not_after = CASE WHEN $17 THEN $21 ELSE server_ca_not_after END, \
             updated_at = now() WHERE id = $1 RETURNING *) \
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
                    &columns.headers,
                    &columns.header_hints,
                    &set_client,
                    &client_cert.map(|c| c.0.as_str()),
                    &client_cert.map(|c| c.1.as_slice()),
                    &client_cert.map(|c| c.2.subject.as_str()),
                    &client_cert.map(|c| c.2.issuer.as_str()),
                    &client_cert.map(|c| c.2.not_after),
                    &set_ca,
                    &ca.map(|c| c.0.as_str()),
                    &ca.map(|c| c.1.subject.as_str()),
                    &ca.map(|c| c.1.issuer.as_str()),
                    &ca.map(|c| c.1.not_after),
                ],
            )
            .await?;
        let updated = from_row(&row)?;
        // What the record's hints cannot show changed: header values, a key, a CA's PEM.
        let mut secret_changes = Vec::new();
        if changes.headers != headers {
            secret_changes.push("headers");
        }
        if set_client {
            secret_changes.push("client_certificate");
        }
        if set_ca {
            secret_changes.push("server_ca");
        }
        let diff = webhook_diff(Some(&current), Some(&updated), &secret_changes);
        audit::append(
            &tx,
            &context.audit(AuditAction::WebhookUpdated, "webhook", id, diff),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(updated)))
    }

    /// Disables (with a reason) or re-enables a webhook. Re-enabling clears the reason; pending
    /// deliveries resume because workers only claim deliveries of enabled webhooks. `None` when
    /// unknown, or when `expected` is not its revision (an etag that went stale).
    pub async fn set_webhook_enabled(
        &self,
        id: WebhookId,
        enabled: bool,
        reason: &str,
        expected: Option<i64>,
        context: &RequestContext,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(before) = tx
            .query_opt(
                "SELECT enabled FROM webhooks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let was_enabled: bool = before.try_get(0)?;
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET enabled = $2, updated_at = now(), \
             disabled_reason = CASE WHEN $2 THEN NULL WHEN enabled THEN $3 ELSE disabled_reason END, \
             consecutive_failures = CASE WHEN $2 AND NOT enabled THEN 0 ELSE consecutive_failures END, \
             circuit_open_until = CASE WHEN $2 AND NOT enabled THEN NULL ELSE circuit_open_until END, \
             failing_since = CASE WHEN $2 AND NOT enabled THEN NULL ELSE failing_since END, \
             disabled_at = CASE WHEN $2 THEN NULL WHEN enabled THEN now() ELSE disabled_at END \
             WHERE id = $1 AND deleted_at IS NULL AND kind = 'endpoint' \
             AND ($4::bigint IS NULL OR revision = $4) RETURNING *) SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = tx.prepare_cached(&sql).await?;
        let row = tx
            .query_opt(&statement, &[&id, &enabled, &reason, &expected])
            .await?;
        let Some(record) = row.as_ref().map(from_row).transpose()? else {
            return Ok(None);
        };
        let (action, mut diff) = if enabled {
            (AuditAction::WebhookEnabled, json!({}))
        } else {
            (AuditAction::WebhookDisabled, json!({ "reason": reason }))
        };
        diff["enabled"] = json!({ "before": was_enabled, "after": enabled });
        if enabled {
            // Wake the other instances on commit: this webhook's deliveries are claimable again.
            self.notify_deliveries(&tx).await?;
        }
        audit::append(&tx, &context.audit(action, "webhook", id, diff)).await?;
        tx.commit().await?;
        if enabled {
            self.wakeups().deliveries.wake();
        }
        Ok(Some(record))
    }

    /// Deletes a webhook (soft: its history stays) and cancels its pending deliveries, in one
    /// transaction. Returns false when unknown, or when `expected` is not its revision.
    pub async fn delete_webhook(
        &self,
        id: WebhookId,
        expected: Option<i64>,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(deleted) = tx
            .query_opt(
                "UPDATE webhooks SET deleted_at = now(), enabled = false, updated_at = now() \
                 WHERE id = $1 AND deleted_at IS NULL AND kind = 'endpoint' \
                 AND ($2::bigint IS NULL OR revision = $2) RETURNING name, destination_url",
                &[&id, &expected],
            )
            .await?
        else {
            return Ok(false);
        };
        let cancelled = super::deliveries::cancel_pending_for_webhook(&tx, id).await?;
        let diff = json!({
            "name": { "before": deleted.try_get::<_, String>(0)? },
            "destination_url": { "before": deleted.try_get::<_, String>(1)? },
            "pending_deliveries_cancelled": cancelled,
        });
        audit::append(
            &tx,
            &context.audit(AuditAction::WebhookDeleted, "webhook", id, diff),
        )
        .await?;
        tx.commit().await?;
        self.appended_updates();
        Ok(true)
    }

    /// Replaces the signing secret, keeping the old one for `grace` so receivers can switch over.
    pub async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        secret: &Secret,
        grace: std::time::Duration,
        context: &RequestContext,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let record = self
            .rotate_webhook_secret_in(&tx, id, secret, grace, context)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// [`Store::rotate_webhook_secret`] in the transaction `tx` (of a request id), with its
    /// audit row.
    pub async fn rotate_webhook_secret_in(
        &self,
        tx: &impl GenericClient,
        id: WebhookId,
        secret: &Secret,
        grace: std::time::Duration,
        context: &RequestContext,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let sql = format!(
            "WITH w AS (UPDATE webhooks SET previous_secret = secret, secret = $2, secret_hint = $4, \
             previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now() \
             WHERE id = $1 AND deleted_at IS NULL AND kind = 'endpoint' RETURNING *) SELECT {COLUMNS} FROM w {LAST_DELIVERY}"
        );
        let statement = tx.prepare_cached(&sql).await?;
        let row = tx
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
        let Some(record) = row.as_ref().map(from_row).transpose()? else {
            return Ok(None);
        };
        // That a rotation happened and the old secret's grace: never a secret or its hint.
        let diff = json!({
            "secret": { "value": "changed" },
            "grace_period_seconds": grace.as_secs(),
        });
        audit::append(
            tx,
            &context.audit(AuditAction::WebhookSecretRotated, "webhook", id, diff),
        )
        .await?;
        Ok(Some(record))
    }
}

impl Store {
    /// Webhooks by id, deleted and internal ones included (for log entries about them).
    pub(super) async fn webhooks_by_id(
        &self,
        ids: &[WebhookId],
    ) -> Result<Vec<WebhookRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM webhooks w {LAST_DELIVERY} WHERE w.id = ANY ($1)");
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &[&ids]).await?;
        rows.iter().map(from_row).collect()
    }

    /// How many webhooks admins manage are disabled, and how many have an open circuit, across
    /// every instance (the gauges are sampled from here).
    pub async fn webhook_health_counts(&self) -> Result<(i64, i64), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE NOT enabled), \
                 count(*) FILTER (WHERE enabled AND circuit_open_until > now()) \
                 FROM webhooks WHERE deleted_at IS NULL AND kind = 'endpoint'",
                &[],
            )
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Makes the internal operational webhook (kind `operational`, hidden from the API) point at
    /// `url` with `secret`, creating it on first use, and returns its id. Its selection matches
    /// no event, so only the alert processor ever gives it deliveries. Every instance calls this
    /// at startup; the unique index on the kind keeps it one row.
    pub async fn ensure_operational_webhook(
        &self,
        url: &DestinationUrl,
        secret: &Secret,
    ) -> Result<WebhookId, StoreError> {
        let client = self.client().await?;
        let sealed = self.vault().seal(secret)?;
        let row = client
            .query_one(
                "INSERT INTO webhooks (id, name, destination_url, function, approval_nodes, on_rejection, \
                 description, secret, secret_hint, kind) \
                 VALUES ($1, 'operational alerts', $2, 'withdrawal', '{}', false, \
                 'WEBHOOKS_OPERATIONAL_WEBHOOK_URL: alerts about the other webhooks', $3, $4, 'operational') \
                 ON CONFLICT (kind) WHERE kind = 'operational' AND deleted_at IS NULL \
                 DO UPDATE SET destination_url = EXCLUDED.destination_url, secret = EXCLUDED.secret, \
                 secret_hint = EXCLUDED.secret_hint, enabled = true, disabled_reason = NULL, \
                 disabled_at = NULL, updated_at = now() \
                 RETURNING id",
                &[&WebhookId::now_v7(), &url.as_str(), &sealed, &secret.hint()],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Retires the operational webhook (the setting was removed): its pending alerts are
    /// cancelled like a deleted webhook's.
    pub async fn retire_operational_webhook(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ids: Vec<WebhookId> = tx
            .query(
                "UPDATE webhooks SET deleted_at = now(), enabled = false, updated_at = now() \
                 WHERE kind = 'operational' AND deleted_at IS NULL RETURNING id",
                &[],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        for id in ids {
            super::deliveries::cancel_pending_for_webhook(&tx, id).await?;
        }
        tx.commit().await?;
        self.appended_updates();
        Ok(())
    }
}
