//! Postgres-side accounting of a workload: transactions, tuples and database growth of the bench
//! database (pg_stat_database, pg_stat_user_tables, pg_database_size), WAL written
//! (pg_stat_wal: cluster-wide), and statements from pg_stat_statements when the server preloads
//! it. Every snapshot is one statement on the bench database, so the bench's own share is known
//! and subtracted.

use anyhow::Context;
use serde::Serialize;
use tokio_postgres::Client;

/// Marks the bench's own statements (kept out of the pg_stat_statements sums).
pub const TAG: &str = "/* webhooks-bench */";

/// Cumulative counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    xact_commit: i64,
    xact_rollback: i64,
    tup_ins: i64,
    tup_upd: i64,
    tup_del: i64,
    tup_hot_upd: i64,
    wal_records: i64,
    wal_fpi: i64,
    wal_bytes: i64,
    wal_sync: i64,
    /// Commits of every other database, by database oid (databases come and go while other
    /// work shares the server, so sums are compared per database).
    other_db_commits: std::collections::HashMap<String, i64>,
    db_size: i64,
    pgss_calls: i64,
    pgss_wal_bytes: i64,
}

/// Whether pg_stat_statements can be used, and how the numbers were obtained.
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    /// pg_stat_statements is preloaded and the extension exists in the bench database.
    pub pg_stat_statements: bool,
    /// `shared_preload_libraries` as the server reports it.
    pub shared_preload_libraries: String,
    /// Server version.
    pub server_version: String,
}

/// Checks `shared_preload_libraries` and, when pg_stat_statements is loaded, creates the
/// extension in the bench database.
pub async fn sources(db: &Client) -> anyhow::Result<Sources> {
    let preload: String = db
        .query_one(&format!("{TAG} SHOW shared_preload_libraries"), &[])
        .await?
        .try_get(0)?;
    let server_version: String = db
        .query_one(&format!("{TAG} SHOW server_version"), &[])
        .await?
        .try_get(0)?;
    let mut enabled = false;
    if preload.contains("pg_stat_statements") {
        enabled = db
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .is_ok();
    }
    Ok(Sources {
        pg_stat_statements: enabled,
        shared_preload_libraries: preload,
        server_version,
    })
}

/// Takes a snapshot (one statement, plus one more when pg_stat_statements is used).
pub async fn snapshot(db: &Client, pgss: bool) -> anyhow::Result<Snapshot> {
    let row = db
        .query_one(
            &format!(
                "{TAG} SELECT d.xact_commit, d.xact_rollback,
                    (SELECT coalesce(sum(n_tup_ins), 0)::int8 FROM pg_stat_user_tables),
                    (SELECT coalesce(sum(n_tup_upd), 0)::int8 FROM pg_stat_user_tables),
                    (SELECT coalesce(sum(n_tup_del), 0)::int8 FROM pg_stat_user_tables),
                    (SELECT coalesce(sum(n_tup_hot_upd), 0)::int8 FROM pg_stat_user_tables),
                    w.wal_records, w.wal_fpi, w.wal_bytes::int8,
                    (SELECT coalesce(json_object_agg(datid::text, xact_commit), '{{}}'::json) FROM pg_stat_database
                      WHERE datname IS DISTINCT FROM current_database()),
                    pg_database_size(current_database()),
                    w.wal_sync
                 FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()"
            ),
            &[],
        )
        .await
        .context("reading pg_stat_database / pg_stat_wal failed")?;
    let mut s = Snapshot {
        xact_commit: row.try_get(0)?,
        xact_rollback: row.try_get(1)?,
        tup_ins: row.try_get(2)?,
        tup_upd: row.try_get(3)?,
        tup_del: row.try_get(4)?,
        tup_hot_upd: row.try_get(5)?,
        wal_records: row.try_get(6)?,
        wal_fpi: row.try_get(7)?,
        wal_bytes: row.try_get(8)?,
        other_db_commits: {
            let commits: serde_json::Value = row.try_get(9)?;
            commits
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
                        .collect()
                })
                .unwrap_or_default()
        },
        db_size: row.try_get(10)?,
        wal_sync: row.try_get(11)?,
        ..Snapshot::default()
    };
    if pgss {
        let row = db
            .query_one(
                &format!(
                    "{TAG} SELECT coalesce(sum(calls), 0)::int8, coalesce(sum(wal_bytes), 0)::int8
                     FROM pg_stat_statements
                     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND query NOT LIKE '%webhooks-bench%'"
                ),
                &[],
            )
            .await
            .context("reading pg_stat_statements failed")?;
        s.pgss_calls = row.try_get(0)?;
        s.pgss_wal_bytes = row.try_get(1)?;
    }
    Ok(s)
}

/// Database-side costs of a workload, per delivery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PerDelivery {
    /// Committed transactions on the bench database (the bench's own subtracted).
    pub transactions: f64,
    /// Rolled-back transactions.
    pub rollbacks: f64,
    /// Rows inserted, updated (of which HOT), deleted in the bench database's tables.
    pub rows_inserted: f64,
    /// Rows updated.
    pub rows_updated: f64,
    /// Of which HOT updates.
    pub rows_hot_updated: f64,
    /// Rows deleted.
    pub rows_deleted: f64,
    /// WAL bytes (pg_stat_wal is cluster-wide: see `other_db_commits`).
    pub wal_bytes: f64,
    /// WAL records.
    pub wal_records: f64,
    /// Full-page images in WAL.
    pub wal_full_page_images: f64,
    /// WAL flushes to disk (pg_stat_wal.wal_sync, cluster-wide): each synchronous commit waits
    /// for one, shared by the commits that group-commit together.
    pub wal_syncs: f64,
    /// Growth of the bench database on disk (tables and indexes), bytes.
    pub db_growth_bytes: f64,
    /// Statements from pg_stat_statements (`calls`), when available.
    pub pgss_statements: Option<f64>,
    /// WAL bytes attributed by pg_stat_statements to the bench database, when available.
    pub pgss_wal_bytes: Option<f64>,
    /// Transactions committed in other databases during the workload (they share the WAL;
    /// databases created or dropped meanwhile are not counted).
    pub other_db_commits: i64,
}

/// `(after - before) / deliveries`, with `own_statements` of the bench's own subtracted from
/// the transaction count.
pub fn per_delivery(
    before: &Snapshot,
    after: &Snapshot,
    deliveries: u64,
    own_statements: u64,
    pgss: bool,
) -> PerDelivery {
    let n = deliveries.max(1) as f64;
    let d = |a: i64, b: i64| (a - b) as f64 / n;
    PerDelivery {
        transactions: ((after.xact_commit - before.xact_commit) as f64 - own_statements as f64) / n,
        rollbacks: d(after.xact_rollback, before.xact_rollback),
        rows_inserted: d(after.tup_ins, before.tup_ins),
        rows_updated: d(after.tup_upd, before.tup_upd),
        rows_hot_updated: d(after.tup_hot_upd, before.tup_hot_upd),
        rows_deleted: d(after.tup_del, before.tup_del),
        wal_bytes: d(after.wal_bytes, before.wal_bytes),
        wal_records: d(after.wal_records, before.wal_records),
        wal_full_page_images: d(after.wal_fpi, before.wal_fpi),
        wal_syncs: d(after.wal_sync, before.wal_sync),
        db_growth_bytes: d(after.db_size, before.db_size),
        pgss_statements: pgss.then(|| d(after.pgss_calls, before.pgss_calls)),
        pgss_wal_bytes: pgss.then(|| d(after.pgss_wal_bytes, before.pgss_wal_bytes)),
        other_db_commits: after
            .other_db_commits
            .iter()
            .filter_map(|(db, n)| Some(n - before.other_db_commits.get(db)?))
            .filter(|delta| *delta > 0)
            .sum(),
    }
}

/// Counts rows of `deliveries` in `status` (one statement, tagged as the bench's).
pub async fn count_status(db: &Client, status: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            &format!("{TAG} SELECT count(*) FROM deliveries WHERE status = $1"),
            &[&status],
        )
        .await
        .context("counting deliveries failed")?
        .try_get(0)?)
}

/// Log entries not yet given cursors by the sequencer (in unsequenced batches).
pub async fn inbox_rows(db: &Client) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            &format!(
                "{TAG} SELECT coalesce(sum(entries), 0)::bigint FROM delivery_update_batches \
                 WHERE first_cursor IS NULL"
            ),
            &[],
        )
        .await
        .context("counting unsequenced log entries failed")?
        .try_get(0)?)
}

/// pg_stat_statements counters of the bench database, by query id.
#[derive(Debug, Clone, Default)]
pub struct Statements(std::collections::HashMap<i64, StatementCounters>);

#[derive(Debug, Clone, Default)]
struct StatementCounters {
    query: String,
    calls: i64,
    exec_ms: f64,
    rows: i64,
    blocks: i64,
    dirtied: i64,
    wal_bytes: i64,
    jit_ms: f64,
}

/// One statement's share of a workload, per delivery (from pg_stat_statements).
#[derive(Debug, Clone, Serialize)]
pub struct StatementCost {
    /// The statement, whitespace folded, first 100 characters.
    pub query: String,
    /// Executions per delivery.
    pub calls: f64,
    /// Execution time per delivery, ms.
    pub exec_ms: f64,
    /// Rows returned or affected per delivery.
    pub rows: f64,
    /// Shared blocks hit or read per delivery (the work done, whatever the cache).
    pub blocks: f64,
    /// Shared blocks dirtied per delivery.
    pub blocks_dirtied: f64,
    /// WAL bytes per delivery.
    pub wal_bytes: f64,
    /// JIT compilation time per delivery, ms (part of `exec_ms`).
    pub jit_ms: f64,
}

/// Reads pg_stat_statements for the bench database (none when it is not loaded).
pub async fn statements(db: &Client) -> anyhow::Result<Statements> {
    let rows = db
        .query(
            &format!(
                "{TAG} SELECT queryid, left(regexp_replace(query, '\\s+', ' ', 'g'), 100), calls,
                        total_exec_time, rows, shared_blks_hit + shared_blks_read, shared_blks_dirtied,
                        wal_bytes::int8,
                        jit_generation_time + jit_inlining_time + jit_optimization_time + jit_emission_time
                 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND queryid IS NOT NULL AND query NOT LIKE '%webhooks-bench%'"
            ),
            &[],
        )
        .await
        .context("reading pg_stat_statements failed")?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let entry = out.entry(id).or_insert_with(StatementCounters::default);
        // The same query id can appear twice (top-level and nested): add them up.
        entry.query = row.try_get(1)?;
        entry.calls += row.try_get::<_, i64>(2)?;
        entry.exec_ms += row.try_get::<_, f64>(3)?;
        entry.rows += row.try_get::<_, i64>(4)?;
        entry.blocks += row.try_get::<_, i64>(5)?;
        entry.dirtied += row.try_get::<_, i64>(6)?;
        entry.wal_bytes += row.try_get::<_, i64>(7)?;
        entry.jit_ms += row.try_get::<_, f64>(8)?;
    }
    Ok(Statements(out))
}

/// `(after - before) / deliveries` per statement, the most time first.
pub fn statement_costs(
    before: &Statements,
    after: &Statements,
    deliveries: u64,
) -> Vec<StatementCost> {
    let n = deliveries.max(1) as f64;
    let mut costs: Vec<StatementCost> = after
        .0
        .iter()
        .filter_map(|(id, a)| {
            let b = before.0.get(id).cloned().unwrap_or_default();
            let calls = a.calls - b.calls;
            (calls > 0).then(|| StatementCost {
                query: a.query.clone(),
                calls: calls as f64 / n,
                exec_ms: (a.exec_ms - b.exec_ms) / n,
                rows: (a.rows - b.rows) as f64 / n,
                blocks: (a.blocks - b.blocks) as f64 / n,
                blocks_dirtied: (a.dirtied - b.dirtied) as f64 / n,
                wal_bytes: (a.wal_bytes - b.wal_bytes) as f64 / n,
                jit_ms: (a.jit_ms - b.jit_ms) / n,
            })
        })
        .collect();
    costs.sort_by(|a, b| b.exec_ms.total_cmp(&a.exec_ms));
    costs
}

/// Where a workload's Postgres work went, per delivery: rows and transactions from the
/// statistics views, and statements from pg_stat_statements when it is loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// Deliveries the figures are divided by.
    pub deliveries: u64,
    /// Rows written per delivery (inserted + updated + deleted, every table).
    pub rows_written: f64,
    /// Database-side counters per delivery.
    pub per_delivery: PerDelivery,
    /// Statement time per delivery, ms (pg_stat_statements; none without it).
    pub statement_ms: Option<f64>,
    /// Statements by time, per delivery (empty without pg_stat_statements).
    pub statements: Vec<StatementCost>,
}

/// A workload being metered.
pub struct Meter {
    pgss: bool,
    snapshot: Snapshot,
    statements: Statements,
}

impl Meter {
    /// Starts metering the bench database `db` (creating pg_stat_statements in it when the
    /// server preloads it).
    pub async fn start(db: &Client) -> anyhow::Result<Self> {
        let pgss = sources(db).await?.pg_stat_statements;
        let statements = if pgss {
            statements(db).await?
        } else {
            Statements::default()
        };
        Ok(Self {
            pgss,
            snapshot: snapshot(db, pgss).await?,
            statements,
        })
    }

    /// Whether statements are counted.
    pub fn has_statements(&self) -> bool {
        self.pgss
    }

    /// The cost since [`Meter::start`], divided by `deliveries`. `own` is how many of the
    /// bench's own transactions ran on the bench database meanwhile.
    pub async fn finish(&self, db: &Client, deliveries: u64, own: u64) -> anyhow::Result<Cost> {
        let after = snapshot(db, self.pgss).await?;
        let statements_after = if self.pgss {
            statements(db).await?
        } else {
            Statements::default()
        };
        // The start's snapshots and this one.
        let own = own + if self.pgss { 4 } else { 2 };
        let per_delivery = per_delivery(&self.snapshot, &after, deliveries, own, self.pgss);
        let mut statements = statement_costs(&self.statements, &statements_after, deliveries);
        let statement_ms = self
            .pgss
            .then(|| statements.iter().map(|s| s.exec_ms).sum());
        statements.truncate(12);
        Ok(Cost {
            deliveries,
            rows_written: per_delivery.rows_inserted
                + per_delivery.rows_updated
                + per_delivery.rows_deleted,
            per_delivery,
            statement_ms,
            statements,
        })
    }
}
