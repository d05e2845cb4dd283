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
        "cpu: service {:.0}%, postgres(bench db) {:.0}%, postgres(all) {:.0}%, bench {:.0}%{}, machine {:.0}% of {} cores; \
         active backends: {}; lock waits: {}; WAL flushes/s (cluster): {:.0}; rustc seen: {}; CPU stolen by the hypervisor: {:.0}%\n    busiest statements: {}",
        f(&p["service_cpu_pct"]),
        f(&p["postgres_bench_db_cpu_pct"]),
        f(&p["postgres_all_cpu_pct"]),
        f(&p["bench_cpu_pct"]),
        match p["watcher_clients_cpu_pct"].as_f64() {
            Some(clients) => format!(", watcher clients {clients:.0}%"),
            None => String::new(),
        },
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
        f(&p["steal_pct"]),
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
                "  {} watchers: {:.0} deliveries/s vs {:.0}/s without (mean of {:.0}/s before and {:.0}/s after): cost {:.1} %; watchers got {:.0} updates/s",
                w["watchers"],
                f(&w["delivered_per_s"]),
                f(&w["baseline_delivered_per_s"]),
                f(&w["baseline_runs_delivered_per_s"][0]),
                f(&w["baseline_runs_delivered_per_s"][1]),
                f(&w["cost_pct"]),
                f(&w["run"]["watcher_updates_per_s"])
            );
            println!(
                "    service CPU per delivery {:.3} ms vs {:.3} ms without; watcher clients (own process) {:.0}% CPU",
                f(&w["service_cpu_ms_per_delivery"]),
                f(&w["baseline_service_cpu_ms_per_delivery"]),
                f(&w["clients_cpu_pct"])
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
                println!(
                    "    publish call sent -> receipt {}",
                    latency_cells(&r["call_to_receipt"])
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
            println!(
                "    publish call sent -> receipt {}",
                latency_cells(&h["run"]["call_to_receipt"])
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
    if let Some(b) = s.get("backlog") {
        section("backlog: drain of pre-loaded pending deliveries");
        if !error(b) {
            for run in
                std::iter::once(&b["reference"]).chain(b["runs"].as_array().into_iter().flatten())
            {
                println!(
                    "  {:>9} pending over {:>3} webhook(s): drained {:.0}/s ({} vs the small-backlog reference) over {:.1} s, \
                     {} left; claim {} ms/call first third, {} last third; {:.0} MiB per million (deliveries table {:.0}); \
                     purge {}/s of {} finished rows",
                    run["preloaded"],
                    run["webhooks"],
                    f(&run["delivered_per_s"]),
                    run["rate_vs_reference"]
                        .as_f64()
                        .map_or("-".to_owned(), |r| format!("{r:.2}x")),
                    f(&run["window_s"]),
                    run["pending_left"],
                    opt(&run["claim_ms_first_third"], 2),
                    opt(&run["claim_ms_last_third"], 2),
                    f(&run["mib_per_million"]),
                    f(&run["deliveries_mib_per_million"]),
                    opt(&run["purge_per_s"], 0),
                    run["purge_rows"],
                );
                println!("    {}", probe_line(&run["probe"]));
            }
        }
    }
    if let Some(i) = s.get("instances") {
        section("instances: service processes on one database");
        if !error(i) {
            for run in i["runs"].as_array().into_iter().flatten() {
                println!(
                    "  {} instance(s): {:.0} delivered/s; CPU per delivery: services {:.3} ms, postgres (bench db) {:.3} ms, \
                     postgres (all) {:.3} ms; most leases held by the webhook {} (cap {}: {})",
                    run["instances"],
                    f(&run["delivered_per_s"]),
                    f(&run["service_cpu_ms_per_delivery"]),
                    f(&run["postgres_cpu_ms_per_delivery"]),
                    f(&run["postgres_all_cpu_ms_per_delivery"]),
                    run["max_leases_seen"],
                    run["cap"],
                    if run["cap_held"] == true {
                        "held"
                    } else {
                        "EXCEEDED"
                    },
                );
                println!("    {}", probe_line(&run["probe"]));
            }
        }
    }
    if let Some(b) = s.get("burst") {
        section("burst: fixed events published as fast as accepted, then drained");
        if !error(b) {
            for run in b["runs"].as_array().into_iter().flatten() {
                println!(
                    "  into {}: {} events published at {:.0}/s, all delivered after {:.1} s: {:.0}/s",
                    run["receiver_kind"].as_str().unwrap_or(""),
                    run["events"],
                    f(&run["published_per_s"]),
                    f(&run["drain_s"]),
                    f(&run["delivered_per_s"]),
                );
                println!("    {}", probe_line(&run["probe"]));
            }
        }
    }
    section("Postgres work per delivery, by run (pg_stat_statements when loaded)");
    print_costs("", s);
    section("targets (issue 17)");
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

fn opt(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

/// Every `pg_cost` in the results, labelled with where it was found.
fn print_costs(path: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            if let Some(cost) = map.get("pg_cost") {
                let label = [
                    map.get("receiver_kind")
                        .and_then(Value::as_str)
                        .map(|k| format!("into {k}")),
                    map.get("fanout").map(|x| format!("fan-out {x}")),
                    map.get("offered")
                        .and_then(Value::as_str)
                        .map(|x| format!("at {x}")),
                    map.get("with_hanging_endpoint")
                        .filter(|x| **x == true)
                        .map(|_| "with a hanging endpoint".to_owned()),
                    map.get("preloaded").map(|x| format!("{x} pre-loaded")),
                    map.get("webhooks").map(|x| format!("{x} webhooks")),
                    map.get("instances")
                        .filter(|x| x.is_u64())
                        .map(|x| format!("{x} instances")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
                let p = &cost["per_delivery"];
                println!(
                    "  {path} ({label}): {} deliveries; rows written {:.2} (ins {:.2}, upd {:.2} of which HOT {:.2}, del {:.2}); \
                     transactions {:.3}; WAL {:.0} B; statement time {} ms",
                    cost["deliveries"],
                    f(&cost["rows_written"]),
                    f(&p["rows_inserted"]),
                    f(&p["rows_updated"]),
                    f(&p["rows_hot_updated"]),
                    f(&p["rows_deleted"]),
                    f(&p["transactions"]),
                    f(&p["wal_bytes"]),
                    opt(&cost["statement_ms"], 3),
                );
                for st in cost["statements"].as_array().into_iter().flatten().take(6) {
                    let q: String = st["query"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .take(70)
                        .collect();
                    println!(
                        "      {:>7.3} ms (JIT {:.3}) {:>6.3} calls {:>7.2} rows {:>8.1} blocks {:>6.2} dirtied  `{q}`",
                        f(&st["exec_ms"]),
                        f(&st["jit_ms"]),
                        f(&st["calls"]),
                        f(&st["rows"]),
                        f(&st["blocks"]),
                        f(&st["blocks_dirtied"]),
                    );
                }
            }
            for (k, child) in map {
                if k != "pg_cost" {
                    let next = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    print_costs(&next, child);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                print_costs(&format!("{path}[{i}]"), child);
            }
        }
        _ => {}
    }
}
