//! The table for people, printed from the JSON report.

use serde_json::Value;

use crate::stats::fmt_ms;

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

/// Prints the report as a table for people (the JSON has every number).
pub fn print_table(report: &Value) {
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
