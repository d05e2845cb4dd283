//! Planner statistics of the queue tables.
//!
//! The claim is planned from the statistics of `deliveries`. Before autovacuum has analyzed a
//! table (it looks at each database once a minute by default), or after the table grew many
//! times over, the planner guesses: measured under load on a new database, it then scanned every
//! pending delivery of a webhook for each candidate (30 ms a claim instead of 0.5 ms; see
//! BENCHMARKS.md). So the service analyzes those tables itself in those two cases, and leaves the
//! steady state to autovacuum.

use super::{Store, StoreError};

/// Tables whose plans matter for delivery throughput.
const QUEUE_TABLES: [&str; 4] = [
    "deliveries",
    "delivery_update_batches",
    "events",
    "delivery_update_entries",
];

/// Never analyzed and at least this many rows, or twice as many rows as at the last analysis.
const MIN_ROWS: f64 = 1000.0;

impl Store {
    /// Analyzes the queue tables whose statistics are missing or far behind; returns their
    /// names.
    pub async fn refresh_stale_statistics(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let tables: Vec<&str> = QUEUE_TABLES.to_vec();
        let rows = client
            .query(
                "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
                 WHERE s.schemaname = current_schema() AND s.relname = ANY ($1) \
                   AND s.n_live_tup >= $2::float8 \
                   AND (c.reltuples < 0 OR s.n_live_tup > 2 * c.reltuples)",
                &[&tables, &MIN_ROWS],
            )
            .await?;
        let mut analyzed = Vec::with_capacity(rows.len());
        for row in rows {
            let table: String = row.try_get(0)?;
            // Only names from QUEUE_TABLES get here, so quoting them is enough.
            client
                .batch_execute(&format!("ANALYZE \"{}\"", table.replace('"', "")))
                .await?;
            analyzed.push(table);
        }
        Ok(analyzed)
    }
}
