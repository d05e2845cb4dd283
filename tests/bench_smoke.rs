//! CI smoke run of the benchmark (issue 7, item 4): `webhooks-bench --smoke` against the
//! `webhooks` binary of this build must finish, write valid JSON with every scenario present
//! and see no bad signature. Timings are never asserted: CI machines are shared and debug builds
//! are slow; the numbers worth reading come from a release run (BENCHMARKS.md). The bench is a
//! crate of its own (bench/); this test builds it when it is missing or stale.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole smoke run must finish within this (it takes about a minute or two).
const DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The debug (or whichever profile runs the tests) `webhooks-bench`, next to the `webhooks` binary
/// under test. It lives in its own package (bench/), so cargo builds it for this test only when
/// asked: with the cargo that runs the test, which rebuilds it when stale and does nothing when not.
fn bench_bin() -> PathBuf {
    let service = PathBuf::from(env!("CARGO_BIN_EXE_webhooks"));
    let profile_dir = service
        .parent()
        .expect("the webhooks binary has a directory");
    let bench = profile_dir.join(format!("webhooks-bench{}", std::env::consts::EXE_SUFFIX));
    let Ok(cargo) = std::env::var("CARGO") else {
        // Run outside cargo: take the binary as it is.
        assert!(
            bench.is_file(),
            "{} is missing: build it with `cargo build -p webhooks-bench`",
            bench.display()
        );
        return bench;
    };
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => "dev",
        Some(name) => name,
    };
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "webhooks-bench",
            "--bin",
            "webhooks-bench",
        ])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(
            profile_dir
                .parent()
                .expect("the profile directory has a parent"),
        )
        .status()
        .expect("cargo starts");
    assert!(
        status.success(),
        "cargo build -p webhooks-bench failed ({status})"
    );
    bench
}

#[test]
fn the_benchmark_smoke_run_completes_with_every_scenario_and_no_bad_signature() {
    let json_path: PathBuf = std::env::temp_dir().join(format!(
        "webhooks-bench-smoke-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let log_path = json_path.with_extension("log");
    let log = std::fs::File::create(&log_path).expect("can create the log file");
    let mut child = Command::new(bench_bin())
        // Its own cluster, so pg_stat_statements is loaded and the per-statement costs are
        // exercised; nginx as the judge (installed by scripts/install-nginx.sh when missing).
        .args(["--smoke", "--scenario", "all", "--own-cluster", "--nginx"])
        .arg("--service-bin")
        .arg(testkit::webhooks_bin!())
        .arg("--database-server")
        .arg(testkit::server_url())
        .arg("--json")
        .arg(&json_path)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log clones"))
        .stderr(log)
        .spawn()
        .expect("webhooks-bench starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("can wait for webhooks-bench") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "webhooks-bench --smoke did not finish within {DEADLINE:?}; output:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "webhooks-bench --smoke failed ({status}); output:\n{output}"
    );

    let text = std::fs::read_to_string(&json_path)
        .unwrap_or_else(|e| panic!("no JSON at {}: {e}; output:\n{output}", json_path.display()));
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid JSON: {e}\n{text}"));
    assert_eq!(report["mode"], "smoke");
    for scenario in [
        "publish",
        "e2e",
        "watchers",
        "latency",
        "hang",
        "sql",
        "rss",
        "backlog",
        "instances",
        "burst",
    ] {
        let result = &report["scenarios"][scenario];
        assert!(
            result.is_object(),
            "scenario {scenario} is missing from the JSON:\n{text}"
        );
        assert!(
            result.get("error").is_none(),
            "scenario {scenario} failed: {}",
            result["error"]
        );
    }
    let scenarios = &report["scenarios"];
    // Statement costs come from pg_stat_statements on the bench's own cluster.
    let e2e_costs = &scenarios["e2e"]["runs"][0]["pg_cost"];
    assert!(
        e2e_costs["statements"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "no per-statement costs for e2e: {e2e_costs}"
    );
    assert!(e2e_costs["rows_written"].as_f64().is_some_and(|r| r > 0.0));
    // The backlog drains and the claim is timed; the purge removed what was delivered.
    for run in scenarios["backlog"]["runs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(
            run["delivered_per_s"].as_f64().is_some_and(|r| r > 0.0),
            "the backlog did not drain: {run}"
        );
        assert!(
            run["claim_ms_first_third"].as_f64().is_some()
                || run["claim_ms_last_third"].as_f64().is_some(),
            "the claim was not timed: {run}"
        );
        assert!(run["mib_per_million"].as_f64().is_some_and(|m| m > 0.0));
        assert!(
            run["purge_per_s"].as_f64().is_some_and(|p| p > 0.0),
            "nothing purged: {run}"
        );
    }
    let instances: Vec<u64> = scenarios["instances"]["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|run| run["delivered_per_s"].as_f64().is_some_and(|r| r > 0.0))
        .filter_map(|run| run["instances"].as_u64())
        .collect();
    assert_eq!(
        instances,
        [1, 2, 4],
        "instances runs that delivered:\n{text}"
    );
    let judged: Vec<&str> = scenarios["burst"]["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|run| run["delivered_per_s"].as_f64().is_some_and(|r| r > 0.0))
        .filter_map(|run| run["receiver_kind"].as_str())
        .collect();
    assert_eq!(judged, ["bench", "nginx"], "burst runs that delivered");
    assert!(
        scenarios["e2e"]["runs"]
            .as_array()
            .is_some_and(|runs| runs.iter().any(|r| r["receiver_kind"] == "nginx"
                && r["delivered_per_s"].as_f64().is_some_and(|d| d > 0.0))),
        "no fan-out-1 run into nginx delivered"
    );
    assert_eq!(
        report["signature_failures"], 0,
        "the receiver rejected signatures; output:\n{output}"
    );
    assert!(report["targets"].as_array().is_some_and(|t| t.len() == 7));
    for key in ["nproc", "memory_mib", "postgres_version", "git_commit"] {
        assert!(!report["machine"][key].is_null(), "machine.{key} missing");
    }
    let _ = std::fs::remove_file(&json_path);
    let _ = std::fs::remove_file(&log_path);
}
