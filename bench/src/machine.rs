//! The machine a run measured: recorded in the JSON beside the numbers, since they mean little
//! without it.

use serde_json::{Value, json};

use crate::{probe, service};

/// Now, as RFC 3339 (the report's `started_at` and `finished_at`).
pub fn now_rfc3339() -> String {
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

/// The load average and rustc processes now: other work on the machine colours every number.
pub fn machine_load() -> Value {
    json!({
        "loadavg": std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_owned()).unwrap_or_default(),
        "rustc_processes": probe::rustc_now(),
    })
}

/// What the numbers were measured on: cores, memory, kernel, Postgres and the commit.
pub async fn machine(server_url: &str) -> Value {
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
