//! The delivery-update log (WatchDeliveries): the append that statements changing deliveries
//! share, the sequencer that numbers their batches, and the reads that feed watchers.

use std::sync::LazyLock;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::deliveries::{AttemptRecord, DeliveryRecord, attempt_from_row, stored};
use super::{Store, StoreError, WebhookRecord};
use crate::domain::{Cursor, DeliveryStatus, Function, UpdateKind, WebhookId};

/// Channel on which the sequencer announces new log entries (payload: the newest cursor).
pub const UPDATES_CHANNEL: &str = "webhooks_delivery_updates";

/// Advisory lock key held by the one sequencer running at a time.
const SEQUENCER_LOCK: i64 = 7_262_023;

/// One entry of the log, with the delivery's state after the change and the attempt it is about.
#[derive(Debug, Clone)]
pub struct UpdateRecord {
    /// Position in the log.
    pub cursor: Cursor,
    /// What changed.
    pub kind: UpdateKind,
    /// The webhook the entry is about.
    pub webhook_id: WebhookId,
    /// The function of its delivery (or, webhook-level, of its webhook).
    pub function: Option<Function>,
    /// The delivery as it was right after the change (no payload); `None` for a webhook-level
    /// entry that is not about one delivery.
    pub delivery: Option<DeliveryRecord>,
    /// The attempt, when the change is about one.
    pub attempt: Option<AttemptRecord>,
    /// When the change was made.
    pub recorded_at: OffsetDateTime,
    /// Webhook-level entries only: the webhook, with its health as it was right after the
    /// change.
    pub webhook: Option<WebhookRecord>,
}

impl UpdateRecord {
    /// The delivery's status after the change; `None` for webhook-level entries, which a
    /// status filter never admits.
    pub fn delivery_status(&self) -> Option<DeliveryStatus> {
        match (&self.delivery, self.kind.is_webhook_level()) {
            (Some(delivery), false) => Some(delivery.status),
            _ => None,
        }
    }
}

/// A webhook's health as a webhook-level entry recorded it (the `webhook_state` column,
/// written by `webhook_state_json` in `migrations/V11__alerts_webhook_updates.sql`).
#[derive(Debug, Clone, Default)]
pub struct WebhookState {
    /// Enabled after the change.
    pub enabled: bool,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Since when it is disabled (Unix microseconds).
    pub disabled_at_us: Option<i64>,
    /// Until when its circuit is open (Unix microseconds).
    pub circuit_open_until_us: Option<i64>,
    /// Since when every delivery fails (Unix microseconds).
    pub failing_since_us: Option<i64>,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// The latest failure reason among its deliveries.
    pub last_error: Option<String>,
}

fn micros(us: Option<i64>) -> Option<OffsetDateTime> {
    us.and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok())
}

impl WebhookState {
    fn from_json(value: &serde_json::Value) -> Self {
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        Self {
            enabled: value["enabled"].as_bool().unwrap_or_default(),
            disabled_reason: text("disabled_reason"),
            disabled_at_us: value["disabled_at_us"].as_i64(),
            circuit_open_until_us: value["circuit_open_until_us"].as_i64(),
            failing_since_us: value["failing_since_us"].as_i64(),
            consecutive_failures: value["consecutive_failures"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or_default(),
            last_error: text("last_error"),
        }
    }

    /// `webhook` with this recorded health instead of its current one.
    pub fn apply(&self, webhook: &mut WebhookRecord) {
        webhook.enabled = self.enabled;
        webhook.disabled_reason = self.disabled_reason.clone();
        webhook.disabled_at = micros(self.disabled_at_us);
        webhook.circuit_open_until = micros(self.circuit_open_until_us);
        webhook.failing_since = micros(self.failing_since_us);
        webhook.consecutive_failures = self.consecutive_failures;
        webhook.last_error = self.last_error.clone().unwrap_or_default();
    }
}

/// What a watcher wants to see.
#[derive(Debug, Clone, Default)]
pub struct UpdateFilter {
    /// Only this webhook.
    pub webhook_id: Option<WebhookId>,
    /// Only this function.
    pub function: Option<Function>,
    /// Only updates leaving the delivery in one of these statuses (empty: all).
    pub statuses: Vec<DeliveryStatus>,
    /// Only webhook-level entries (the alert processor's read).
    pub webhook_level_only: bool,
}

impl UpdateFilter {
    /// Whether an update of a delivery to `webhook_id`, of `function`, leaving it `status`,
    /// passes the filter.
    /// `status` is `None` for webhook-level entries: a status filter selects deliveries, so
    /// such a watcher does not get them (it would otherwise count an exhausted delivery twice).
    pub fn admits(
        &self,
        webhook_id: WebhookId,
        function: Option<Function>,
        status: Option<DeliveryStatus>,
    ) -> bool {
        self.webhook_id.is_none_or(|id| id == webhook_id)
            && self.function.is_none_or(|f| Some(f) == function)
            && (self.statuses.is_empty() || status.is_some_and(|s| self.statuses.contains(&s)))
    }
}

/// CTEs (`log_batch`, `logged`, `logged_batch`) that append one log entry per row of `from`, as
/// one batch: `columns` of `delivery_update_entries` take the values `select`, numbered within the
/// batch by `order_by`. The statement then writes one row per entry and one for the batch; the
/// sequencer gives the batch its cursors later (see `migrations/V12__delivery_update_batches.sql`).
/// `logged` returns one row per entry appended.
pub(super) fn append_updates(columns: &str, select: &str, from: &str, order_by: &str) -> String {
    format!(
        "log_batch AS (SELECT nextval('delivery_update_batch_ids') AS log_batch_id),
logged AS (
    INSERT INTO delivery_update_entries (batch_id, batch_seq, {columns})
    SELECT log_batch.log_batch_id, row_number() OVER (ORDER BY {order_by}), {select}
    FROM {from} CROSS JOIN log_batch
    RETURNING batch_id
),
logged_batch AS (
    INSERT INTO delivery_update_batches (id, entries) SELECT batch_id, count(*) FROM logged GROUP BY batch_id
)"
    )
}

/// The columns of an entry as [`update_from_row`] reads them; entries `u` of batches `b`.
const UPDATE_COLUMNS: &str = "b.first_cursor + u.batch_seq - 1 AS cursor, u.kind, u.delivery_id AS id, u.webhook_id,
       d.event_id, d.event_type, u.function, d.request_id,
       u.status, u.status_reason, u.attempt_count, u.next_attempt_at, u.last_response_status,
       d.created_at, u.recorded_at AS updated_at, u.webhook_state,
       a.id AS a_id, a.attempt_number, a.trigger, a.started_at, a.duration_us, a.request_url, a.request_headers,
       a.response_status, a.response_headers, a.response_body, a.response_body_truncated, a.error_kind, a.error_message";

/// Entries in the cursor range (`$1`, `$2`] matching the filter, oldest first. An entry's cursor
/// is its batch's first cursor plus its place in the batch. The batches come from an index range
/// (from the one holding cursor `$1 + 1` to the last one starting by `$2`), and each batch's
/// entries from its primary key, starting at the place of the first cursor wanted and at most
/// `$6` of them: a page costs what it returns, however large a batch or long the log.
static SELECT_UPDATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {UPDATE_COLUMNS}
FROM (
    SELECT id, first_cursor FROM delivery_update_batches
    WHERE first_cursor >= (SELECT s.first_cursor FROM delivery_update_batches s
                           WHERE s.last_cursor > $1 ORDER BY s.last_cursor LIMIT 1)
      AND first_cursor <= $2
) b
CROSS JOIN LATERAL (
    SELECT * FROM delivery_update_entries e
    WHERE e.batch_id = b.id
      AND e.batch_seq > $1 - b.first_cursor + 1 AND e.batch_seq <= $2 - b.first_cursor + 1
      AND ($3::uuid IS NULL OR e.webhook_id = $3)
      AND ($4::text IS NULL OR e.function = $4)
      AND (cardinality($5::text[]) = 0 OR (e.status = ANY ($5) AND e.webhook_state IS NULL))
    ORDER BY e.batch_seq
    LIMIT $6
) u
LEFT JOIN deliveries d ON d.id = u.delivery_id
LEFT JOIN delivery_attempts a ON a.id = u.attempt_id
ORDER BY b.first_cursor, u.batch_seq
LIMIT $6"
    )
});

/// [`SELECT_UPDATES`] for webhook-level entries only (the alert processor's read), which come
/// from their own small index rather than a walk of the range.
static SELECT_WEBHOOK_LEVEL_UPDATES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {UPDATE_COLUMNS}
FROM delivery_update_entries u
JOIN delivery_update_batches b ON b.id = u.batch_id
LEFT JOIN deliveries d ON d.id = u.delivery_id
LEFT JOIN delivery_attempts a ON a.id = u.attempt_id
WHERE u.webhook_state IS NOT NULL
  AND b.last_cursor > $1 AND b.first_cursor <= $2
  AND b.first_cursor + u.batch_seq - 1 > $1 AND b.first_cursor + u.batch_seq - 1 <= $2
  AND ($3::uuid IS NULL OR u.webhook_id = $3)
  AND ($4::text IS NULL OR u.function = $4)
  AND cardinality($5::text[]) = 0
ORDER BY b.first_cursor, u.batch_seq
LIMIT $6"
    )
});

/// An entry, and the webhook state it recorded when it is webhook-level.
fn update_from_row(row: &Row) -> Result<(UpdateRecord, Option<WebhookState>), StoreError> {
    let delivery = match row.try_get::<_, Option<Uuid>>("id")? {
        Some(_) => Some(super::deliveries::delivery_from_row(row, false)?),
        None => None,
    };
    let attempt = match row.try_get::<_, Option<Uuid>>("a_id")? {
        Some(_) => Some(attempt_from_row(row, "a_id")?),
        None => None,
    };
    let state = row
        .try_get::<_, Option<serde_json::Value>>("webhook_state")?
        .as_ref()
        .map(WebhookState::from_json);
    let function: String = row.try_get("function")?;
    let record = UpdateRecord {
        cursor: row.try_get("cursor")?,
        kind: stored(UpdateKind::from_db, "update kind", row.try_get("kind")?)?,
        webhook_id: row.try_get("webhook_id")?,
        function: Function::from_db(&function),
        delivery,
        attempt,
        recorded_at: row.try_get("updated_at")?,
        webhook: None,
    };
    Ok((record, state))
}

/// What one sequencer round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequencerRound {
    /// Another instance's sequencer holds the lock: batches written meanwhile may be left for a
    /// later round.
    Busy,
    /// Numbered `batches` batches (maybe none) holding `entries` entries.
    Moved {
        /// Batches given cursors.
        batches: usize,
        /// Entries in them.
        entries: usize,
    },
}

/// Gives up to `$1` committed batches, in batch-id order, the cursor ranges that follow the
/// newest one: one row written per batch, whatever its size.
const NUMBER_BATCHES: &str = "
WITH pending AS (
    SELECT id, entries FROM delivery_update_batches WHERE first_cursor IS NULL ORDER BY id LIMIT $1
),
base AS (SELECT coalesce(max(last_cursor), 0) AS top FROM delivery_update_batches),
numbered AS (
    SELECT p.id, p.entries, base.top + sum(p.entries) OVER (ORDER BY p.id) AS last
    FROM pending p CROSS JOIN base
)
UPDATE delivery_update_batches b
SET first_cursor = n.last - n.entries + 1, last_cursor = n.last
FROM numbered n
WHERE b.id = n.id
RETURNING b.entries";

/// Rows the previous release wrote to its inbox (during a rolling upgrade), at most this many a
/// round.
const LEGACY_INBOX_BATCH: i64 = 1000;

/// Columns the previous release's inbox shares with the log's entries.
const LEGACY_COLUMNS: &str = "delivery_id, webhook_id, function, kind, status, status_reason, attempt_count, \
    next_attempt_at, last_response_status, attempt_id, recorded_at, webhook_state";

impl Store {
    /// Numbers up to `batch` committed batches of log entries with consecutive cursors, if no
    /// other instance is doing it right now. With `legacy`, first moves what the previous
    /// release's instances wrote to their inbox (rolling upgrades) into the log, as one batch.
    pub async fn sequence_updates(
        &self,
        batch: i64,
        legacy: bool,
    ) -> Result<SequencerRound, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SEQUENCER_LOCK])
            .await?
            .try_get(0)?;
        if !locked {
            return Ok(SequencerRound::Busy);
        }
        if legacy {
            let sql = format!(
                "WITH moved AS (
                     DELETE FROM delivery_update_inbox
                     WHERE id IN (SELECT id FROM delivery_update_inbox ORDER BY id LIMIT $1)
                     RETURNING *
                 ),
                 {}
                 SELECT 1 FROM logged",
                append_updates(LEGACY_COLUMNS, LEGACY_COLUMNS, "moved", "moved.id")
            );
            tx.execute(&sql, &[&LEGACY_INBOX_BATCH]).await?;
        }
        let statement = tx.prepare_cached(NUMBER_BATCHES).await?;
        let rows = tx.query(&statement, &[&batch]).await?;
        let entries = rows
            .iter()
            .map(|row| row.try_get::<_, i32>(0))
            .sum::<Result<i32, _>>()?;
        // The payload is this instance's origin (its own listener skips it), no longer the newest
        // cursor: no one read that, the hub reads the log itself.
        let moved = !rows.is_empty();
        if moved {
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&UPDATES_CHANNEL, &self.wakeups().origin()],
            )
            .await?;
        }
        tx.commit().await?;
        if moved {
            // This instance's hub reads at once; its own NOTIFY does not wake it again.
            self.wakeups().updates.wake();
        }
        Ok(SequencerRound::Moved {
            batches: rows.len(),
            entries: usize::try_from(entries).unwrap_or_default(),
        })
    }

    /// The oldest and newest cursors in the log (0, 0 when empty).
    pub async fn update_cursor_range(&self) -> Result<(Cursor, Cursor), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT coalesce((SELECT first_cursor FROM delivery_update_batches \
                                  WHERE last_cursor IS NOT NULL ORDER BY last_cursor LIMIT 1), 0), \
                        coalesce((SELECT max(last_cursor) FROM delivery_update_batches), 0)",
                &[],
            )
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Log entries after `after` up to `until` (inclusive) that match `filter`, oldest first.
    pub async fn read_updates(
        &self,
        after: Cursor,
        until: Cursor,
        filter: &UpdateFilter,
        limit: i64,
    ) -> Result<Vec<UpdateRecord>, StoreError> {
        let client = self.client().await?;
        let sql: &str = if filter.webhook_level_only {
            &SELECT_WEBHOOK_LEVEL_UPDATES
        } else {
            &SELECT_UPDATES
        };
        let statement = client.prepare_cached(sql).await?;
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let rows = client
            .query(
                &statement,
                &[
                    &after,
                    &until,
                    &filter.webhook_id,
                    &filter.function.map(Function::as_str),
                    &statuses,
                    &limit,
                ],
            )
            .await?;
        let entries = rows
            .iter()
            .map(update_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_webhook_states(entries).await
    }

    /// Fills in the webhook of webhook-level entries: the webhook as it is now (deleted ones
    /// included), with the health the entry recorded. One query per page that has any.
    async fn with_webhook_states(
        &self,
        entries: Vec<(UpdateRecord, Option<WebhookState>)>,
    ) -> Result<Vec<UpdateRecord>, StoreError> {
        let ids: Vec<WebhookId> = entries
            .iter()
            .filter(|(_, state)| state.is_some())
            .map(|(record, _)| record.webhook_id)
            .collect();
        let webhooks = if ids.is_empty() {
            Vec::new()
        } else {
            self.webhooks_by_id(&ids).await?
        };
        Ok(entries
            .into_iter()
            .map(|(mut record, state)| {
                if let Some(state) = state {
                    record.webhook = webhooks
                        .iter()
                        .find(|w| w.id == record.webhook_id)
                        .cloned()
                        .map(|mut webhook| {
                            state.apply(&mut webhook);
                            webhook
                        });
                }
                record
            })
            .collect())
    }

    /// Deletes log entries older than `retention`, a batch at a time, always keeping the newest
    /// batch so cursors keep counting up. Returns how many entries were deleted.
    pub async fn prune_updates(&self, retention: Duration) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let cutoff = OffsetDateTime::now_utc() - retention;
        Ok(client
            .execute(
                "WITH gone AS (
                     DELETE FROM delivery_update_batches
                     WHERE created_at < $1 AND last_cursor < (SELECT max(last_cursor) FROM delivery_update_batches)
                     RETURNING id
                 ),
                 deleted AS (
                     DELETE FROM delivery_update_entries WHERE batch_id IN (SELECT id FROM gone) RETURNING 1
                 )
                 SELECT 1 FROM deleted",
                &[&cutoff],
            )
            .await?)
    }
}
