//! `webhooks-bench`: the end-to-end benchmark of the webhook service (issue 7).
//!
//! It starts the real service (`webhooks serve`, the binary next to this one unless
//! `--service-bin` says otherwise) as a child process on a fresh database, a fast receiver on
//! 127.0.0.1 that verifies every signature, and a load generator that publishes through the
//! real gRPC API; then it measures publish throughput, end-to-end delivered throughput,
//! publish→receipt latency, SQL statements and Postgres writes per delivery, peak RSS, latency
//! beside a hanging endpoint and throughput with WatchDeliveries subscribers. It prints a table
//! and, with `--json FILE`, writes every number. See BENCHMARKS.md.
//!
//! ```text
//! cargo build --release --bins
//! cargo run --release --bin webhooks-bench -- --json bench.json
//! ```

#[path = "webhooks-bench/load.rs"]
mod load;
#[path = "webhooks-bench/pgstats.rs"]
mod pgstats;
#[path = "webhooks-bench/probe.rs"]
mod probe;
#[path = "webhooks-bench/proxy.rs"]
mod proxy;
#[path = "webhooks-bench/receiver.rs"]
mod receiver;
#[path = "webhooks-bench/scenarios.rs"]
mod scenarios;
#[path = "webhooks-bench/service.rs"]
mod service;
#[path = "webhooks-bench/stats.rs"]
mod stats;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use webhooks::domain::parse_duration;

use scenarios::{Ctx, E2eRun, LatencyRun, Settings};
use stats::fmt_ms;

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    /// (a) PublishEvent / PublishEvents throughput (ingest only).
    Publish,
    /// (b) End-to-end delivered throughput at fan-out 1 and 10.
    E2e,
    /// (g) (b) at fan-out 1 with WatchDeliveries subscribers attached.
    Watchers,
    /// (c) Publish-ack to receipt latency at fixed rates and at the maximum.
    Latency,
    /// (f) Healthy endpoint latency while another endpoint hangs.
    Hang,
    /// (d) SQL statements and Postgres writes per delivery.
    Sql,
    /// (e) Peak RSS of the service (over every run of this invocation).
    Rss,
    /// Everything.
    All,
}

/// End-to-end benchmark of the webhook service. Talks only to 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "webhooks-bench", version)]
struct Args {
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<Scenario>,

    /// Measured window of each run (e.g. 20s). Default 20s, or 2s with --smoke.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Load before each window opens. Default 3s, or 500ms with --smoke.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,

    /// Longest wait for outstanding deliveries after a latency window. Default 15s (5s smoke).
    #[arg(long, value_parser = parse_duration)]
    drain: Option<Duration>,

    /// Short run for CI: ~2-3 s per scenario, smaller SQL workload. Never judge numbers from it.
    #[arg(long)]
    smoke: bool,

    /// Also write every number as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// The `webhooks` binary to benchmark. Default: `webhooks` next to this executable.
    #[arg(long)]
    service_bin: Option<PathBuf>,

    /// PostgreSQL server (no database name needed; one is stripped). Must be on this machine.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    database_server: String,

    /// Concurrent single-event publishers (publish throughput; latency at max).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Concurrent batch publishers.
    #[arg(long, default_value_t = 4)]
    batch_concurrency: usize,

    /// Events per PublishEvents call.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_size: u16,

    /// Saturating runs pause while more deliveries than this are published but not yet received
    /// (0: no cap). The claim's cost grows with the backlog, so this shapes the e2e numbers; see
    /// BENCHMARKS.md.
    #[arg(long, default_value_t = 5_000)]
    max_backlog: u64,

    /// Fixed offered rates (events/s) of the latency scenario.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,

    /// Offered rate (events/s) of the hanging-endpoint scenario.
    #[arg(long, default_value_t = 1000)]
    hang_rate: u32,

    /// WatchDeliveries subscribers of the watchers scenario.
    #[arg(long, default_value_t = 100)]
    watchers: usize,

    /// Events of the SQL-accounting workload. Default 20000 (500 with --smoke).
    #[arg(long)]
    sql_events: Option<u64>,

    /// gRPC connections the load generator spreads its calls over.
    #[arg(long, default_value_t = 4)]
    connections: usize,

    /// Extra flag for `webhooks serve` (repeatable), e.g. --service-arg=--worker-concurrency=128.
    #[arg(long, allow_hyphen_values = true)]
    service_arg: Vec<String>,

    /// Free-form note recorded in the JSON (e.g. which build of the service this is).
    #[arg(long, default_value = "")]
    label: String,

    /// Keep the webhooks_bench_* databases instead of dropping them.
    #[arg(long)]
    keep_databases: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tokio::select! {
        result = run(args) => match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("webhooks-bench: error: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            // Dropping the run kills the child services (their guards); databases may remain.
            eprintln!("webhooks-bench: interrupted; services stopped (webhooks_bench_* databases may remain)");
            ExitCode::from(130)
        }
    }
}

/// The server part of a Postgres URL (scheme, user, host, port), without database or query.
fn server_part(url: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("--database-server is not a URL")?;
    parsed.set_path("");
    parsed.set_query(None);
    Ok(parsed.to_string().trim_end_matches('/').to_owned())
}

async fn resolve_local(server_url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(server_url)?;
    let host = parsed.host_str().context("--database-server has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().unwrap_or(5432);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "the benchmark only talks to this machine: --database-server must be a loopback address, not {addr}"
        );
    }
    Ok(addr)
}

fn service_bin(args: &Args) -> anyhow::Result<PathBuf> {
    let bin = match &args.service_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable's directory")?
            .parent()
            .context("this executable has no directory")?
            .join("webhooks"),
    };
    if !bin.is_file() {
        bail!(
            "the service binary {} does not exist: build it (cargo build --release --bins) or pass --service-bin",
            bin.display()
        );
    }
    Ok(bin)
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let smoke = args.smoke;
    let pick = |given: Option<Duration>, full: Duration, quick: Duration| {
        given.unwrap_or(if smoke { quick } else { full })
    };
    let server_url = server_part(&args.database_server)?;
    let server_addr = resolve_local(&server_url).await?;
    let settings = Settings {
        duration: pick(
            args.duration,
            Duration::from_secs(20),
            Duration::from_secs(2),
        ),
        warmup: pick(
            args.warmup,
            Duration::from_secs(3),
            Duration::from_millis(500),
        ),
        drain: pick(args.drain, Duration::from_secs(15), Duration::from_secs(5)),
        // An idle backend's statistics can reach the views up to 10 s late
        // (PGSTAT_IDLE_INTERVAL), and the service's backends go idle between the sequencer's
        // rounds; a shorter wait under-counted rows (4.31 inserted per delivery instead of 7).
        settle: if smoke {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(11_000)
        },
        concurrency: args.concurrency.max(1),
        batch_concurrency: args.batch_concurrency.max(1),
        batch_size: usize::from(args.batch_size),
        max_backlog: args.max_backlog,
        rates: args.rates.iter().copied().filter(|r| *r > 0).collect(),
        hang_rate: args.hang_rate.max(1),
        watchers: args.watchers.max(1),
        sql_events: args
            .sql_events
            .unwrap_or(if smoke { 500 } else { 20_000 })
            .max(10),
        connections: args.connections.max(1),
        server_url: server_url.clone(),
        server_addr,
    };
    let bin = service_bin(&args)?;
    let log_dir = std::env::temp_dir().join(format!(
        "webhooks-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let mut selected: BTreeSet<Scenario> = args.scenario.iter().copied().collect();
    if selected.remove(&Scenario::All) {
        selected.extend([
            Scenario::Publish,
            Scenario::E2e,
            Scenario::Watchers,
            Scenario::Latency,
            Scenario::Hang,
            Scenario::Sql,
            Scenario::Rss,
        ]);
    }
    let started_at = now_rfc3339();
    let machine_before = machine(&server_url).await;
    let mut ctx = Ctx {
        launcher: service::Launcher {
            bin: bin.clone(),
            server_url: server_url.clone(),
            extra_args: args.service_arg.clone(),
            log_dir: log_dir.clone(),
            keep_databases: args.keep_databases,
        },
        settings: settings.clone(),
        memory: Vec::new(),
    };
    eprintln!(
        "[webhooks-bench] service {}, database server {server_url}, logs in {}",
        bin.display(),
        log_dir.display()
    );

    let mut results = serde_json::Map::new();
    let mut failed = Vec::new();
    let mut record = |key: &str, outcome: anyhow::Result<Value>| match outcome {
        Ok(value) => {
            results.insert(key.to_owned(), value);
        }
        Err(e) => {
            eprintln!("[webhooks-bench] {key} failed: {e:#}");
            failed.push(key.to_owned());
            results.insert(key.to_owned(), json!({ "error": format!("{e:#}") }));
        }
    };
    // (a)
    if selected.contains(&Scenario::Publish) {
        let r = scenarios::publish(&mut ctx).await;
        record("publish", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (b), and the baseline of (g)
    let mut e2e_fanout_1: Option<E2eRun> = None;
    if selected.contains(&Scenario::E2e) {
        let r = scenarios::e2e(&mut ctx).await;
        if let Ok(r) = &r {
            e2e_fanout_1 = r.runs.iter().find(|run| run.fanout == 1).cloned();
        }
        record("e2e", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (g)
    if selected.contains(&Scenario::Watchers) {
        let r = async {
            let baseline = match e2e_fanout_1.clone() {
                Some(b) => b,
                None => scenarios::e2e_run(&mut ctx, 1, 0).await?,
            };
            let r = scenarios::watchers(&mut ctx, &baseline).await?;
            Ok(serde_json::to_value(r)?)
        }
        .await;
        record("watchers", r);
    }
    // (c), and the baseline of (f)
    let mut baseline_at_hang_rate: Option<LatencyRun> = None;
    if selected.contains(&Scenario::Latency) {
        let r = scenarios::latency(&mut ctx).await;
        if let Ok(r) = &r {
            baseline_at_hang_rate = r
                .runs
                .iter()
                .find(|run| run.offered_rate == Some(f64::from(settings.hang_rate)))
                .cloned();
        }
        record("latency", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (f)
    if selected.contains(&Scenario::Hang) {
        let r = async {
            let baseline = match baseline_at_hang_rate.clone() {
                Some(b) => b,
                None => scenarios::latency_run(&mut ctx, Some(settings.hang_rate), false).await?,
            };
            let r = scenarios::hang(&mut ctx, &baseline).await?;
            Ok(serde_json::to_value(r)?)
        }
        .await;
        record("hang", r);
    }
    // (d)
    if selected.contains(&Scenario::Sql) {
        let r = scenarios::sql(&mut ctx).await;
        record("sql", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (e)
    if selected.contains(&Scenario::Rss) {
        let r = async {
            if ctx.memory.is_empty() {
                scenarios::e2e_run(&mut ctx, 1, 0).await?;
            }
            Ok(serde_json::to_value(scenarios::rss(&ctx)?)?)
        }
        .await;
        record("rss", r);
    }

    let signature_failures: u64 =
        collect_numbers(&Value::Object(results.clone()), "signature_failures")
            .into_iter()
            .sum();
    let targets = targets(&results);
    let machine_after = machine_load();
    let report = json!({
        "benchmark": "webhooks-bench",
        "version": 1,
        "started_at": started_at,
        "finished_at": now_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>(),
        "mode": if smoke { "smoke" } else { "full" },
        "bench_build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "service_bin": bin.display().to_string(),
        "service_args": args.service_arg,
        "label": args.label,
        "settings": {
            "duration_s": settings.duration.as_secs_f64(),
            "warmup_s": settings.warmup.as_secs_f64(),
            "drain_s": settings.drain.as_secs_f64(),
            "concurrency": settings.concurrency,
            "batch_concurrency": settings.batch_concurrency,
            "batch_size": settings.batch_size,
            "max_backlog": settings.max_backlog,
            "rates": settings.rates,
            "hang_rate": settings.hang_rate,
            "watchers": settings.watchers,
            "sql_events": settings.sql_events,
            "connections": settings.connections,
        },
        "machine": machine_before,
        "machine_load_at_end": machine_after,
        "scenarios": results,
        "signature_failures": signature_failures,
        "failed_scenarios": failed,
        "targets": targets,
    });
    print_table(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("[webhooks-bench] JSON written to {}", path.display());
    }
    if !failed.is_empty() {
        eprintln!("[webhooks-bench] failed scenarios: {}", failed.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if signature_failures > 0 {
        eprintln!("[webhooks-bench] {signature_failures} deliveries failed signature verification");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every number under a key of that name, anywhere in `value`.
fn collect_numbers(value: &Value, key: &str) -> Vec<u64> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key
                    && let Some(n) = v.as_u64()
                {
                    out.push(n);
                }
                out.extend(collect_numbers(v, key));
            }
        }
        Value::Array(items) => {
            for v in items {
                out.extend(collect_numbers(v, key));
            }
        }
        _ => {}
    }
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
}

fn machine_load() -> Value {
    json!({
        "loadavg": std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_owned()).unwrap_or_default(),
        "rustc_processes": probe::rustc_now(),
    })
}

async fn machine(server_url: &str) -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let postgres = match service::connect(&format!("{server_url}/postgres")).await {
        Ok(db) => db
            .query_one("SELECT version()", &[])
            .await
            .ok()
            .and_then(|row| row.try_get::<_, String>(0).ok())
            .unwrap_or_default(),
        Err(e) => format!("unreachable: {e:#}"),
    };
    let repo = env!("CARGO_MANIFEST_DIR");
    let commit = command_output("git", &["-C", repo, "rev-parse", "HEAD"])
        .unwrap_or_else(|| "unknown".into());
    let dirty = command_output(
        "git",
        &["-C", repo, "status", "--porcelain", "--untracked-files=no"],
    )
    .map(|s| !s.is_empty());
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu_model,
        "memory_mib": mem_kib / 1024,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default(),
        "postgres_version": postgres,
        "git_commit": commit,
        "git_dirty": dirty,
        "load": machine_load(),
    })
}

// ----------------------------------------------------------------------------------------------
// Targets of issue 7

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn targets(results: &serde_json::Map<String, Value>) -> Vec<Value> {
    let r = Value::Object(results.clone());
    let mut out = Vec::new();
    let mut add = |name: &str, target: &str, measured: Option<String>, met: Option<bool>| {
        out.push(json!({
            "name": name,
            "target": target,
            "measured": measured.unwrap_or_else(|| "not measured".into()),
            "met": met,
        }));
    };
    // Throughput at fan-out 1.
    let fo1 = get(&r, &["e2e", "runs"])
        .and_then(Value::as_array)
        .and_then(|runs| runs.iter().find(|x| x["fanout"] == 1))
        .and_then(|x| x["delivered_per_s"].as_f64());
    add(
        "end-to-end deliveries/s at fan-out 1",
        ">= 5000/s",
        fo1.map(|v| format!("{v:.0}/s")),
        fo1.map(|v| v >= 5000.0),
    );
    // Latency at 1000/s.
    let at_1000 = get(&r, &["latency", "runs"])
        .and_then(Value::as_array)
        .and_then(|runs| {
            runs.iter()
                .find(|x| x["offered_rate"].as_f64() == Some(1000.0))
        });
    let p99 = at_1000.map(|x| x["ack_to_receipt"]["p99_ms"].as_f64());
    add(
        "p99 publish ack -> receipt at 1000 events/s",
        "<= 50 ms",
        p99.map(|p| fmt_ms(p, "drain")),
        p99.map(|p| p.is_some_and(|p| p <= 50.0)),
    );
    // Statements per delivery (fan-out 1, batched, amortised).
    let sql = get(&r, &["sql", "phases"])
        .and_then(Value::as_array)
        .and_then(|p| p.first())
        .and_then(|p| p["statements_per_delivery"].as_f64());
    add(
        "SQL statements per delivery (fan-out 1, batched publish, amortised)",
        "<= 5",
        sql.map(|v| format!("{v:.2}")),
        sql.map(|v| v <= 5.0),
    );
    let rss = get(&r, &["rss", "peak_rss_mib"]).and_then(Value::as_f64);
    add(
        "service peak RSS under load",
        "<= 150 MiB",
        rss.map(|v| format!("{v:.1} MiB")),
        rss.map(|v| v <= 150.0),
    );
    let hang = r.get("hang").filter(|h| h.get("error").is_none());
    let ratio = hang.and_then(|h| h["ratio"].as_f64());
    add(
        "healthy p99 while another endpoint hangs, vs baseline",
        "<= 2x",
        hang.map(|h| {
            format!(
                "{} vs {} ({})",
                fmt_ms(h["healthy_p99_ms"].as_f64(), "drain"),
                fmt_ms(h["baseline_p99_ms"].as_f64(), "drain"),
                ratio.map_or_else(|| "ratio unknown".to_owned(), |x| format!("{x:.1}x"))
            )
        }),
        hang.map(|_| ratio.is_some_and(|x| x <= 2.0)),
    );
    let cost = get(&r, &["watchers", "cost_pct"]).and_then(Value::as_f64);
    add(
        "throughput cost of 100 WatchDeliveries subscribers",
        "< 10 %",
        cost.map(|c| format!("{c:.1} %")),
        cost.map(|c| c < 10.0),
    );
    out
}

// ----------------------------------------------------------------------------------------------
// The table for people

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn probe_line(p: &Value) -> String {
    let waits = p["active_by_wait_event"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(3)
                .map(|x| format!("{} {:.1}", x[0].as_str().unwrap_or(""), f(&x[1])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let locks = p["lock_waits"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(2)
                .map(|x| format!("{} {:.1}", x[0].as_str().unwrap_or(""), f(&x[1])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let queries = p["active_by_query"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(2)
                .map(|x| {
                    let q: String = x[0].as_str().unwrap_or("").chars().take(60).collect();
                    format!("{:.1} x `{q}`", f(&x[1]))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "cpu: service {:.0}%, postgres(bench db) {:.0}%, postgres(all) {:.0}%, bench {:.0}%, machine {:.0}% of {} cores; \
         active backends: {}; lock waits: {}; WAL flushes/s (cluster): {:.0}; rustc seen: {}\n    busiest statements: {}",
        f(&p["service_cpu_pct"]),
        f(&p["postgres_bench_db_cpu_pct"]),
        f(&p["postgres_all_cpu_pct"]),
        f(&p["bench_cpu_pct"]),
        f(&p["machine_busy_pct"]),
        p["cores"],
        if waits.is_empty() {
            "none".to_owned()
        } else {
            waits
        },
        if locks.is_empty() {
            "none".to_owned()
        } else {
            locks
        },
        f(&p["wal_syncs_per_s"]),
        p["max_rustc_processes"],
        if queries.is_empty() {
            "none".to_owned()
        } else {
            queries
        },
    )
}

fn publish_line(run: &Value) -> String {
    let first = run["first_error"].as_str().unwrap_or("");
    format!(
        "PublishEvent call {}; failed calls {}{}",
        latency_cells(&run["publish_call"]),
        run["publish_errors"],
        if first.is_empty() {
            String::new()
        } else {
            format!(" (first: {first})")
        }
    )
}

fn latency_cells(s: &Value) -> String {
    let ms = |k: &str| fmt_ms(s[k].as_f64(), "drain");
    format!(
        "p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}  (n={}, missing {})",
        ms("p50_ms"),
        ms("p90_ms"),
        ms("p99_ms"),
        ms("max_ms"),
        s["count"],
        s["missing"]
    )
}

fn print_table(report: &Value) {
    let s = &report["scenarios"];
    let m = &report["machine"];
    println!();
    println!(
        "webhooks-bench ({} mode, started {})",
        report["mode"].as_str().unwrap_or(""),
        report["started_at"].as_str().unwrap_or("")
    );
    println!(
        "machine: {} cores ({}), {} MiB; {}; commit {}{}",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_mib"],
        m["postgres_version"]
            .as_str()
            .unwrap_or("")
            .split(" on ")
            .next()
            .unwrap_or(""),
        m["git_commit"].as_str().unwrap_or(""),
        if m["git_dirty"] == true {
            " (+ uncommitted changes)"
        } else {
            ""
        }
    );
    let section = |title: &str| println!("\n== {title}");
    let error = |v: &Value| {
        if let Some(e) = v.get("error") {
            println!("  FAILED: {}", e.as_str().unwrap_or(""));
            true
        } else {
            false
        }
    };
    if let Some(p) = s.get("publish") {
        section("(a) publish throughput (ingest only, workers disabled)");
        if !error(p) {
            for k in ["single", "batched"] {
                let r = &p[k];
                println!(
                    "  {:<14} {:>3} callers x {:>3}: {:>8.0} events/s  {:>7.0} calls/s  call {}  errors {}",
                    r["rpc"].as_str().unwrap_or(""),
                    r["callers"],
                    r["batch"],
                    f(&r["events_per_s"]),
                    f(&r["calls_per_s"]),
                    latency_cells(&r["call_latency"]),
                    r["errors"]
                );
                println!("    {}", probe_line(&r["probe"]));
            }
        }
    }
    if let Some(e) = s.get("e2e") {
        section("(b) end-to-end delivered throughput (publish -> 2xx -> SUCCEEDED in history)");
        if !error(e) {
            for r in e["runs"].as_array().into_iter().flatten() {
                println!(
                    "  fan-out {:>2}: {:>8.0} deliveries/s recorded  ({:.0}/s received, {:.0} events/s published); \
                     backlog left {}; signature failures {}; duplicates {}",
                    r["fanout"].as_u64().unwrap_or(0),
                    f(&r["delivered_per_s"]),
                    f(&r["received_per_s"]),
                    f(&r["published_events_per_s"]),
                    r["backlog_pending"],
                    r["receiver"]["signature_failures"],
                    r["receiver"]["duplicates"],
                );
                println!("    {}", probe_line(&r["probe"]));
            }
        }
    }
    if let Some(w) = s.get("watchers") {
        section("(g) with WatchDeliveries subscribers attached (fan-out 1)");
        if !error(w) {
            println!(
                "  {} watchers: {:.0} deliveries/s vs {:.0}/s without: cost {:.1} %; watchers got {:.0} updates/s",
                w["watchers"],
                f(&w["delivered_per_s"]),
                f(&w["baseline_delivered_per_s"]),
                f(&w["cost_pct"]),
                f(&w["run"]["watcher_updates_per_s"])
            );
            println!("    {}", probe_line(&w["run"]["probe"]));
        }
    }
    if let Some(l) = s.get("latency") {
        section("(c) latency, publish acknowledgement -> verified receipt (fan-out 1)");
        if !error(l) {
            for r in l["runs"].as_array().into_iter().flatten() {
                println!(
                    "  {:>7} (achieved {:>6.0}/s): {}",
                    r["offered"].as_str().unwrap_or(""),
                    f(&r["achieved_rate"]),
                    latency_cells(&r["ack_to_receipt"])
                );
                println!("    {}", publish_line(r));
                println!("    {}", probe_line(&r["probe"]));
            }
        }
    }
    if let Some(h) = s.get("hang") {
        section("(f) healthy endpoint while another endpoint (same events) hangs 30 s");
        if !error(h) {
            println!(
                "  {}/s: healthy {}",
                h["rate"],
                latency_cells(&h["run"]["ack_to_receipt"])
            );
            println!("    {}", publish_line(&h["run"]));
            println!(
                "  p99 {} vs baseline {} -> {}; hanging requests taken: {}",
                fmt_ms(h["healthy_p99_ms"].as_f64(), "drain"),
                fmt_ms(h["baseline_p99_ms"].as_f64(), "drain"),
                h["ratio"]
                    .as_f64()
                    .map_or_else(|| "ratio unknown".to_owned(), |x| format!("{x:.1}x")),
                h["run"]["receiver"]["hang_requests"]
            );
        }
    }
    if let Some(q) = s.get("sql") {
        section("(d) SQL and Postgres writes per delivery");
        if !error(q) {
            println!("  source: {}", q["source"].as_str().unwrap_or(""));
            println!(
                "  idle background: {:.1} statements/s, {:.1} round trips/s, {:.1} transactions/s",
                f(&q["idle_statements_per_s"]),
                f(&q["idle_round_trips_per_s"]),
                f(&q["idle_transactions_per_s"])
            );
            for p in q["phases"].as_array().into_iter().flatten() {
                let pg = &p["postgres"];
                println!(
                    "  {} ({} deliveries): {:.2} statements/delivery ({:.2} without idle background), {:.2} round trips, \
                     {:.2} parses, {:.2} transactions, {:.2} WAL flushes; rows ins/upd/del {:.2}/{:.2}/{:.2}; WAL {:.0} B ({:.2} records, \
                     {:.3} FPI); db growth {:.0} B{}; other databases' commits meanwhile: {}",
                    p["name"].as_str().unwrap_or(""),
                    p["deliveries"],
                    f(&p["statements_per_delivery"]),
                    f(&p["statements_per_delivery_net"]),
                    f(&p["round_trips_per_delivery"]),
                    f(&p["parses_per_delivery"]),
                    f(&pg["transactions"]),
                    f(&pg["wal_syncs"]),
                    f(&pg["rows_inserted"]),
                    f(&pg["rows_updated"]),
                    f(&pg["rows_deleted"]),
                    f(&pg["wal_bytes"]),
                    f(&pg["wal_records"]),
                    f(&pg["wal_full_page_images"]),
                    f(&pg["db_growth_bytes"]),
                    pg["pgss_statements"]
                        .as_f64()
                        .map_or_else(String::new, |v| format!(
                            "; pg_stat_statements {v:.2} statements"
                        )),
                    pg["other_db_commits"],
                );
                for (i, t) in p["top_statements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(8)
                    .enumerate()
                {
                    let sql = t[0].as_str().unwrap_or("");
                    let short: String = sql.chars().take(110).collect();
                    println!(
                        "      {:>2}. {:>6.3}  {}{}",
                        i + 1,
                        f(&t[1]),
                        short,
                        if sql.len() > 110 { "..." } else { "" }
                    );
                }
            }
        }
    }
    if let Some(r) = s.get("rss") {
        section("(e) service peak RSS (VmHWM)");
        if !error(r) {
            println!(
                "  peak {:.1} MiB ({})",
                f(&r["peak_rss_mib"]),
                r["peak_run"].as_str().unwrap_or("")
            );
            let runs: Vec<String> = r["by_run"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{} {:.0}", x[0].as_str().unwrap_or(""), f(&x[1])))
                .collect();
            println!("  by run (MiB): {}", runs.join(", "));
        }
    }
    section("targets (issue 7)");
    for t in report["targets"].as_array().into_iter().flatten() {
        let verdict = match t["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        };
        println!(
            "  {:<68} {:>11}  {:<32} {}",
            t["name"].as_str().unwrap_or(""),
            t["target"].as_str().unwrap_or(""),
            t["measured"].as_str().unwrap_or(""),
            verdict
        );
    }
    println!(
        "\nsignature failures: {}; machine load at start {} / end {}",
        report["signature_failures"],
        report["machine"]["load"]["loadavg"].as_str().unwrap_or(""),
        report["machine_load_at_end"]["loadavg"]
            .as_str()
            .unwrap_or("")
    );
}
