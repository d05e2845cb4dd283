//! What the machine was doing during a measurement window, for finding the bottleneck: CPU used
//! by the service, by the Postgres backends of the bench database, by all Postgres processes and
//! by the bench itself (from /proc), the machine's busy share, what the database's connections
//! were doing (sampled from pg_stat_activity), and whether compilers were running beside us.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the probe samples.
const EVERY: Duration = Duration::from_millis(250);

/// The findings of one window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Seconds observed.
    pub seconds: f64,
    /// CPU of the service process, in % of one core.
    pub service_cpu_pct: f64,
    /// CPU of the Postgres backends connected to the bench database, % of one core.
    pub postgres_bench_db_cpu_pct: f64,
    /// CPU of every Postgres process (all databases, WAL writer, checkpointer...), % of one core.
    pub postgres_all_cpu_pct: f64,
    /// CPU of the bench process (receiver, load generator), % of one core.
    pub bench_cpu_pct: f64,
    /// CPU of the bench's separate WatchDeliveries client process, % of one core (watchers
    /// runs only).
    pub watcher_clients_cpu_pct: Option<f64>,
    /// Busy share of the whole machine, % of all cores (time stolen by the hypervisor included).
    pub machine_busy_pct: f64,
    /// Time the hypervisor gave to other guests while this one wanted to run, % of all cores:
    /// a run with much of it was measured on a machine that was not quiet, whatever `rustc`
    /// shows.
    pub steal_pct: f64,
    /// Cores.
    pub cores: usize,
    /// Average bench-database connections by state (active, idle, idle in transaction...).
    pub connections_by_state: Vec<(String, f64)>,
    /// Average active bench-database backends by wait event (`CPU` when not waiting).
    pub active_by_wait_event: Vec<(String, f64)>,
    /// Average active bench-database backends by the statement they run (first 90 characters).
    pub active_by_query: Vec<(String, f64)>,
    /// Average ungranted locks of bench-database backends, by lock type, object class and mode
    /// (`object:pg_database:AccessExclusiveLock` with objid 0 is the commit-time NOTIFY lock).
    pub lock_waits: Vec<(String, f64)>,
    /// WAL flushes per second (pg_stat_wal.wal_sync, cluster-wide).
    pub wal_syncs_per_s: Option<f64>,
    /// WAL bytes per second (cluster-wide).
    pub wal_bytes_per_s: Option<f64>,
    /// Most `rustc` processes seen at once (other engineers compiling on the same machine).
    pub max_rustc_processes: u64,
    /// Share of samples with at least one `rustc` running.
    pub rustc_sample_share: f64,
}

/// A running probe.
pub struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Report>,
}

impl Probe {
    /// Starts sampling. `pg_url` is a connection to any database of the server (the probe's
    /// queries are kept out of the bench database's statistics).
    /// `clients_pid` is the watcher-client process, when there is one.
    pub fn start(
        service_pid: u32,
        clients_pid: Option<u32>,
        bench_db: String,
        pg_url: String,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(
            service_pid,
            clients_pid,
            bench_db,
            pg_url,
            stop.clone(),
        ));
        Self { stop, task }
    }

    /// Stops and reports.
    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    service_pid: u32,
    clients_pid: Option<u32>,
    bench_db: String,
    pg_url: String,
    stop: Arc<AtomicBool>,
) -> Report {
    let tck = clock_ticks();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let client = crate::service::connect(&pg_url).await.ok();
    let wal_start = wal(client.as_ref()).await;
    let me = std::process::id();
    let started = Instant::now();
    let machine_start = machine_ticks();
    let service_start = process_ticks(service_pid).unwrap_or(0);
    let bench_start = process_ticks(me).unwrap_or(0);
    let clients_start = clients_pid.and_then(process_ticks).unwrap_or(0);
    // Postgres processes: accumulate per-pid deltas so backends that come and go are counted.
    let mut pg_last: HashMap<u32, (u64, bool)> = postgres_processes(&bench_db);
    let (mut pg_bench, mut pg_all) = (0u64, 0u64);
    let mut states: HashMap<String, u64> = HashMap::new();
    let mut waits: HashMap<String, u64> = HashMap::new();
    let mut locks: HashMap<String, u64> = HashMap::new();
    let mut queries: HashMap<String, u64> = HashMap::new();
    let (mut samples, mut pg_samples, mut rustc_samples, mut max_rustc) = (0u64, 0u64, 0u64, 0u64);
    loop {
        tokio::time::sleep(EVERY).await;
        samples += 1;
        let now = postgres_processes(&bench_db);
        for (pid, (ticks, bench)) in &now {
            let before = pg_last.get(pid).map_or(0, |(t, _)| *t);
            let delta = ticks.saturating_sub(before);
            pg_all += delta;
            if *bench {
                pg_bench += delta;
            }
        }
        pg_last = now;
        let rustc = count_processes("rustc");
        max_rustc = max_rustc.max(rustc);
        if rustc > 0 {
            rustc_samples += 1;
        }
        if let Some(client) = &client
            && let Ok(rows) = client
                .query(
                    "SELECT coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*), \
                     CASE WHEN state = 'active' THEN left(regexp_replace(query, '\\s+', ' ', 'g'), 90) ELSE '' END \
                     FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' \
                     GROUP BY 1, 2, 4",
                    &[&bench_db],
                )
                .await
        {
            pg_samples += 1;
            for row in rows {
                let state: String = row.get(0);
                let wait: String = row.get(1);
                let n: i64 = row.get(2);
                *states.entry(state.clone()).or_insert(0) += n as u64;
                if state == "active" {
                    *waits.entry(wait).or_insert(0) += n as u64;
                    let query: String = row.get(3);
                    *queries.entry(query.trim().to_owned()).or_insert(0) += n as u64;
                }
            }
            if let Ok(rows) = client
                .query(
                    "SELECT l.locktype || ':' || coalesce(l.classid::regclass::text, l.relation::text, '') \
                     || ':' || l.mode, count(*) \
                     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                     WHERE a.datname = $1 AND NOT l.granted GROUP BY 1",
                    &[&bench_db],
                )
                .await
            {
                for row in rows {
                    let n: i64 = row.get(1);
                    *locks.entry(row.get(0)).or_insert(0) += n as u64;
                }
            }
        }
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(3600) {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let wal_end = wal(client.as_ref()).await;
    let (wal_syncs_per_s, wal_bytes_per_s) = match (wal_start, wal_end) {
        (Some(a), Some(b)) => (
            Some((b.0 - a.0) as f64 / seconds.max(1e-9)),
            Some((b.1 - a.1) as f64 / seconds.max(1e-9)),
        ),
        _ => (None, None),
    };
    let pct = |ticks: u64| ticks as f64 / tck / seconds.max(1e-9) * 100.0;
    let machine_end = machine_ticks();
    let busy = machine_end.0.saturating_sub(machine_start.0) as f64;
    let total = machine_end.1.saturating_sub(machine_start.1) as f64;
    let averaged = |m: HashMap<String, u64>| -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = m
            .into_iter()
            .map(|(k, n)| (k, n as f64 / pg_samples.max(1) as f64))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    };
    Report {
        seconds,
        service_cpu_pct: pct(process_ticks(service_pid)
            .unwrap_or(service_start)
            .saturating_sub(service_start)),
        postgres_bench_db_cpu_pct: pct(pg_bench),
        postgres_all_cpu_pct: pct(pg_all),
        bench_cpu_pct: pct(process_ticks(me)
            .unwrap_or(bench_start)
            .saturating_sub(bench_start)),
        watcher_clients_cpu_pct: clients_pid.map(|pid| {
            pct(process_ticks(pid)
                .unwrap_or(clients_start)
                .saturating_sub(clients_start))
        }),
        machine_busy_pct: if total > 0.0 {
            busy / total * 100.0
        } else {
            0.0
        },
        steal_pct: if total > 0.0 {
            machine_end.2.saturating_sub(machine_start.2) as f64 / total * 100.0
        } else {
            0.0
        },
        cores,
        connections_by_state: averaged(states),
        active_by_wait_event: averaged(waits),
        lock_waits: averaged(locks),
        active_by_query: averaged(queries),
        wal_syncs_per_s,
        wal_bytes_per_s,
        max_rustc_processes: max_rustc,
        rustc_sample_share: rustc_samples as f64 / samples.max(1) as f64,
    }
}

/// (wal_sync, wal_bytes) of the cluster.
async fn wal(client: Option<&tokio_postgres::Client>) -> Option<(i64, i64)> {
    let row = client?
        .query_one("SELECT wal_sync, wal_bytes::int8 FROM pg_stat_wal", &[])
        .await
        .ok()?;
    Some((row.try_get(0).ok()?, row.try_get(1).ok()?))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks of the whole machine.
/// The machine's (busy, total, stolen) CPU ticks since boot, all cores: busy counts steal too.
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().next() else {
        return (0, 0, 0);
    };
    let values: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    let steal = values.get(7).copied().unwrap_or(0);
    (total.saturating_sub(idle), total, steal)
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Postgres processes: pid -> (cpu ticks, serves the bench database).
fn postgres_processes(bench_db: &str) -> HashMap<u32, (u64, bool)> {
    let mut out = HashMap::new();
    let needle = format!(" {bench_db} ");
    for pid in pids() {
        if comm(pid) != "postgres" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if let Some(ticks) = process_ticks(pid) {
            out.insert(pid, (ticks, cmdline.contains(&needle)));
        }
    }
    out
}

fn count_processes(name: &str) -> u64 {
    pids().filter(|pid| comm(*pid) == name).count() as u64
}

/// Current number of `rustc` processes.
pub fn rustc_now() -> u64 {
    count_processes("rustc")
}
