//! Purging old history in small batches, so no statement holds many locks for long.

use time::OffsetDateTime;

use super::{Store, StoreError};

impl Store {
    /// Deletes up to `batch` finished deliveries created before `cutoff`, with their attempts,
    /// and events left without deliveries. Returns how many deliveries went; call again until 0.
    /// Pending deliveries are never purged: nothing acknowledged is lost to retention.
    pub async fn purge_history(
        &self,
        cutoff: OffsetDateTime,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                // Oldest first by `seq` (insertion order, so creation order), whose index the
                // scan walks and leaves after a batch: ordered by created_at, which has no
                // index, every batch read and sorted the whole table (24,207 blocks against
                // 2,019 beside a million pending deliveries: BENCHMARKS.md, backlog).
                "SELECT id, event_id FROM deliveries WHERE created_at < $1 AND status <> 'pending' \
                 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&cutoff, &batch],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<uuid::Uuid> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let events: Vec<uuid::Uuid> = rows
            .iter()
            .map(|r| r.try_get(1))
            .collect::<Result<_, _>>()?;
        tx.execute(
            "DELETE FROM delivery_attempts WHERE delivery_id = ANY ($1)",
            &[&ids],
        )
        .await?;
        tx.execute(
            "DELETE FROM once_per_request WHERE delivery_id = ANY ($1)",
            &[&ids],
        )
        .await?;
        let deleted = tx
            .execute("DELETE FROM deliveries WHERE id = ANY ($1)", &[&ids])
            .await?;
        tx.execute(
            "DELETE FROM events e WHERE e.id = ANY ($1) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
            &[&events],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
