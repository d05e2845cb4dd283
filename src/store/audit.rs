//! The audit trail: appending a row inside a change's transaction, listing, verifying the hash
//! chain and purging old rows (see migrations/V10__audit_events.sql).
//!
//! Rows are appended by the SQL function `audit_append`, which locks the chain's head row for the
//! rest of the transaction: appends serialize among themselves only. [`Store::verify_audit_chain`]
//! recomputes every hash here, in Rust, from the stored columns, so the check does not trust the
//! function that wrote them.

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::webhooks::WebhookRecord;
use super::{Store, StoreError};
use crate::domain::{AuditEntry, PageToken};

/// Appends `entry` to the trail on `client`, which must be inside the transaction of the change
/// it records (the row commits or rolls back with it). Call it last in the transaction: it
/// holds the chain's head until the commit.
pub(crate) async fn append(
    client: &impl GenericClient,
    entry: &AuditEntry<'_>,
) -> Result<i64, StoreError> {
    let statement = client
        .prepare_cached("SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .await?;
    let c = entry.context;
    let row = client
        .query_one(
            &statement,
            &[
                &c.actor.name,
                &c.actor.role,
                &entry.action.as_str(),
                &entry.target_kind,
                &entry.target_id,
                &c.request_id,
                &c.peer,
                &c.user_agent,
                &entry.diff,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// The fields of a webhook an audit diff compares. Secret-bearing settings (custom header
/// values, the client key, the CA's PEM) appear only as facts that never reveal them: header
/// names, certificate subjects and expiry.
fn webhook_fields(record: &WebhookRecord) -> Map<String, Value> {
    let certificate = |c: &Option<crate::domain::CertificateInfo>| {
        c.as_ref().map_or(Value::Null, |c| {
            json!({ "subject": c.subject, "issuer": c.issuer,
                    "not_after": crate::domain::timestamps::rfc3339(c.not_after) })
        })
    };
    let mut fields = Map::new();
    fields.insert("name".into(), json!(record.name));
    fields.insert("destination_url".into(), json!(record.destination_url));
    fields.insert("function".into(), json!(record.function.as_str()));
    fields.insert(
        "events.approval_nodes".into(),
        json!(record.events.approval_nodes()),
    );
    fields.insert("events.rejection".into(), json!(record.events.rejection()));
    fields.insert("description".into(), json!(record.description));
    fields.insert(
        "deliver_once_per_request".into(),
        json!(record.deliver_once_per_request),
    );
    fields.insert(
        "headers".into(),
        json!(
            record
                .header_hints
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
        ),
    );
    fields.insert(
        "client_certificate".into(),
        certificate(&record.client_certificate),
    );
    fields.insert("server_ca".into(), certificate(&record.server_ca));
    fields
}

/// The field-level diff between two states of a webhook, `{"field": {"before": .., "after":
/// ..}}` with only the fields that differ (a missing side is a creation or deletion). The
/// fields in `secret_changes` (headers, client_certificate, server_ca) had content replaced
/// that no hint shows: their entry is there even when names and subjects stayed the same, and
/// says `"value": "changed"` instead of the content.
pub(crate) fn webhook_diff(
    before: Option<&WebhookRecord>,
    after: Option<&WebhookRecord>,
    secret_changes: &[&str],
) -> Value {
    let before = before.map(webhook_fields).unwrap_or_default();
    let after = after.map(webhook_fields).unwrap_or_default();
    let mut diff = Map::new();
    for key in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(key), after.get(key));
        let secret = secret_changes.contains(&key.as_str());
        if diff.contains_key(key) || (b == a && !secret) {
            continue;
        }
        // A creation lists the settings it made, not the ones it left unset.
        let unset = |v: &Value| {
            v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty)
        };
        if b.is_none() && a.is_some_and(unset) && !secret {
            continue;
        }
        let mut change = Map::new();
        if let Some(b) = b {
            change.insert("before".into(), b.clone());
        }
        if let Some(a) = a {
            change.insert("after".into(), a.clone());
        }
        if secret {
            change.insert("value".into(), json!("changed"));
        }
        diff.insert(key.clone(), Value::Object(change));
    }
    Value::Object(diff)
}

/// ListAuditEvents filters; all optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows by this actor.
    pub actor: Option<String>,
    /// Only rows about this kind of target.
    pub target_kind: Option<String>,
    /// Only rows about this target id.
    pub target_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only rows at or after this time.
    pub after: Option<OffsetDateTime>,
    /// Only rows before this time.
    pub before: Option<OffsetDateTime>,
}

/// One audit row as stored.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Position in the chain (1, 2, ...).
    pub id: i64,
    /// When the change's transaction ran.
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// What.
    pub action: String,
    /// Kind of target.
    pub target_kind: String,
    /// Target id.
    pub target_id: String,
    /// The request's id (empty when it had none).
    pub request_id: String,
    /// Peer address (empty when unknown).
    pub peer: String,
    /// User agent.
    pub user_agent: String,
    /// The diff.
    pub diff: Value,
    /// The previous row's hash.
    pub prev_hash: Vec<u8>,
    /// This row's hash.
    pub hash: Vec<u8>,
}

/// What [`Store::verify_audit_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every row checks out: how many, and the head's id and hash (hex), worth keeping outside
    /// the database to detect a trail rewritten as a whole.
    Valid {
        /// Rows checked.
        rows: u64,
        /// Last id (0 when empty).
        last_id: i64,
        /// Last hash, hex.
        last_hash: String,
    },
    /// The first broken link.
    Broken {
        /// The row whose link breaks (for a deleted row: the id expected there).
        id: i64,
        /// What is wrong.
        problem: String,
    },
}

const COLUMNS: &str = "id, at, actor, role, action, target_kind, target_id, request_id, peer, \
    user_agent, diff, diff::text AS diff_text, prev_hash, hash";

fn record_from_row(row: &tokio_postgres::Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        role: row.try_get("role")?,
        action: row.try_get("action")?,
        target_kind: row.try_get("target_kind")?,
        target_id: row.try_get("target_id")?,
        request_id: row.try_get("request_id")?,
        peer: row.try_get("peer")?,
        user_agent: row.try_get("user_agent")?,
        diff: row.try_get("diff")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The canonical encoding's hash (docs/operations.md, "Audit and alerts"): SHA-256 over
/// `webhooks-audit-v1` and the netstrings (`<byte length>:<value>,`) of id, time in
/// microseconds since the epoch, actor, role, action, target kind, target id, request id,
/// peer, user agent, the diff as PostgreSQL prints jsonb, and the previous hash in hex.
pub fn audit_hash(record: &AuditRecord, diff_text: &str) -> [u8; 32] {
    let micros = record.at.unix_timestamp_nanos() / 1000;
    let mut hasher = Sha256::new();
    hasher.update(b"webhooks-audit-v1");
    for field in [
        record.id.to_string().as_str(),
        micros.to_string().as_str(),
        &record.actor,
        &record.role,
        &record.action,
        &record.target_kind,
        &record.target_id,
        &record.request_id,
        &record.peer,
        &record.user_agent,
        diff_text,
        &hex(&record.prev_hash),
    ] {
        hasher.update(format!("{}:{field},", field.len()).as_bytes());
    }
    hasher.finalize().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows read per round trip while verifying.
const VERIFY_BATCH: i64 = 1000;

impl Store {
    /// A page of audit rows, newest first, and the token of the next page if there is one.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<PageToken>,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, Option<PageToken>), StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_events WHERE id < $1 \
             AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR target_kind = $3) \
             AND ($4::text IS NULL OR target_id = $4) AND ($5::text IS NULL OR action = $5) \
             AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7) \
             ORDER BY id DESC LIMIT $8"
        );
        let statement = client.prepare_cached(&sql).await?;
        let rows = client
            .query(
                &statement,
                &[
                    &before.map_or(i64::MAX, |t| t.after_seq),
                    &filter.actor,
                    &filter.target_kind,
                    &filter.target_id,
                    &filter.action,
                    &filter.after,
                    &filter.before,
                    &(limit + 1),
                ],
            )
            .await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if records.len() as i64 > limit {
            records.truncate(limit as usize);
            records.last().map(|r| PageToken { after_seq: r.id })
        } else {
            None
        };
        Ok((records, next))
    }

    /// Walks the whole chain from its anchor (the first retained row) and recomputes every
    /// hash; reports the first row whose id, prev_hash or hash does not follow.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let client = self.client().await?;
        let head = client
            .query_one(
                "SELECT last_id, last_hash, anchor_id, anchor_hash FROM audit_chain_head",
                &[],
            )
            .await?;
        let last_id: i64 = head.try_get(0)?;
        let head_hash: Vec<u8> = head.try_get(1)?;
        let mut expected_id: i64 = head.try_get(2)?;
        let mut expected_prev: Vec<u8> = head.try_get(3)?;
        let mut rows = 0u64;
        let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE id >= $1 ORDER BY id LIMIT $2");
        loop {
            let batch = client.query(&sql, &[&expected_id, &VERIFY_BATCH]).await?;
            for row in &batch {
                let record = record_from_row(row)?;
                let diff_text: String = row.try_get("diff_text")?;
                if record.id != expected_id {
                    return Ok(ChainReport::Broken {
                        id: expected_id,
                        problem: format!(
                            "row {expected_id} is missing (the next row is {})",
                            record.id
                        ),
                    });
                }
                if record.prev_hash != expected_prev {
                    return Ok(ChainReport::Broken {
                        id: record.id,
                        problem: format!(
                            "row {} has prev_hash {} but the row before it hashes to {}",
                            record.id,
                            hex(&record.prev_hash),
                            hex(&expected_prev)
                        ),
                    });
                }
                let hash = audit_hash(&record, &diff_text);
                if hash[..] != record.hash[..] {
                    return Ok(ChainReport::Broken {
                        id: record.id,
                        problem: format!(
                            "row {} was altered: its content hashes to {}, not to its stored hash {}",
                            record.id,
                            hex(&hash),
                            hex(&record.hash)
                        ),
                    });
                }
                expected_prev = record.hash;
                expected_id += 1;
                rows += 1;
            }
            if (batch.len() as i64) < VERIFY_BATCH {
                break;
            }
        }
        if expected_id - 1 != last_id || (rows > 0 && expected_prev != head_hash) {
            return Ok(ChainReport::Broken {
                id: expected_id,
                problem: format!(
                    "the chain ends at row {} but its head says {last_id}: later rows are missing",
                    expected_id - 1
                ),
            });
        }
        Ok(ChainReport::Valid {
            rows,
            last_id,
            last_hash: hex(&head_hash),
        })
    }

    /// Deletes audit rows older than `cutoff` (a separate retention from the delivery
    /// history's), oldest first, never the last row; moves the chain's anchor to the first row
    /// kept, so the chain stays verifiable from there. Returns how many rows went.
    pub async fn purge_audit_events(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The head's lock orders the purge with appends; the setting lets the append-only
        // trigger allow these deletes, for this transaction only.
        let head = tx
            .query_one("SELECT last_id FROM audit_chain_head FOR UPDATE", &[])
            .await?;
        let last_id: i64 = head.try_get(0)?;
        tx.execute("SET LOCAL webhooks.audit_purge = 'on'", &[])
            .await?;
        let first_kept = tx
            .query_opt(
                "SELECT id, prev_hash FROM audit_events WHERE at >= $1 OR id = $2 ORDER BY id LIMIT 1",
                &[&cutoff, &last_id],
            )
            .await?;
        let Some(first_kept) = first_kept else {
            return Ok(0);
        };
        let first_id: i64 = first_kept.try_get(0)?;
        let prev_hash: Vec<u8> = first_kept.try_get(1)?;
        let deleted = tx
            .execute("DELETE FROM audit_events WHERE id < $1", &[&first_id])
            .await?;
        if deleted > 0 {
            tx.execute(
                "UPDATE audit_chain_head SET anchor_id = $1, anchor_hash = $2",
                &[&first_id, &prev_hash],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
