//! The targets of issue 17 (issue 7's, raised), checked against the scenarios' results.

use serde_json::{Value, json};

use crate::stats::fmt_ms;

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Delivered/s of the first `e2e` run at `fanout` (the one into the bench's receiver).
fn delivered_at(results: &Value, fanout: u64) -> Option<f64> {
    get(results, &["e2e", "runs"])
        .and_then(Value::as_array)
        .and_then(|runs| runs.iter().find(|x| x["fanout"] == fanout))
        .and_then(|x| x["delivered_per_s"].as_f64())
}

/// Each target of issue 17 with what this run measured and whether it was met.
pub fn targets(results: &serde_json::Map<String, Value>) -> Vec<Value> {
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
    let fo1 = delivered_at(&r, 1);
    add(
        "end-to-end deliveries/s at fan-out 1",
        ">= 10000/s",
        fo1.map(|v| format!("{v:.0}/s")),
        fo1.map(|v| v >= 10_000.0),
    );
    let fo10 = delivered_at(&r, 10);
    add(
        "end-to-end deliveries/s at fan-out 10",
        ">= 8000/s",
        fo10.map(|v| format!("{v:.0}/s")),
        fo10.map(|v| v >= 8_000.0),
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
        "<= 10 ms",
        p99.map(|p| fmt_ms(p, "drain")),
        p99.map(|p| p.is_some_and(|p| p <= 10.0)),
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
        "<= 1.5x",
        hang.map(|h| {
            format!(
                "{} vs {} ({})",
                fmt_ms(h["healthy_p99_ms"].as_f64(), "drain"),
                fmt_ms(h["baseline_p99_ms"].as_f64(), "drain"),
                ratio.map_or_else(|| "ratio unknown".to_owned(), |x| format!("{x:.1}x"))
            )
        }),
        hang.map(|_| ratio.is_some_and(|x| x <= 1.5)),
    );
    let cost = get(&r, &["watchers", "cost_pct"]).and_then(Value::as_f64);
    add(
        "throughput cost of 100 WatchDeliveries subscribers",
        "<= 10 %",
        cost.map(|c| format!("{c:.1} %")),
        cost.map(|c| c <= 10.0),
    );
    out
}
