//! A real PostgreSQL restart while deliveries are in flight: the service reconnects by itself
//! and every acknowledged event is delivered.
//!
//! This binary holds one test on purpose: cargo runs test binaries one after another, so while
//! it restarts the server no other test is using it. It needs the local Debian cluster that
//! `scripts/ensure-postgres.sh` sets up (`pg_ctlcluster`); without it the test fails, saying so.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use webhooks::proto::v1 as pb;

use testkit::{Receiver, Reply, spawn_app_with, withdrawal_event};

/// The version and name of the local cluster on port 5432, from `pg_lsclusters`.
fn local_cluster() -> (String, String) {
    let output = Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .expect("pg_lsclusters runs: this test restarts the local Debian PostgreSQL cluster (scripts/test.sh sets it up)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&"5432"))
        .map(|fields| (fields[0].to_owned(), fields[1].to_owned()))
        .expect("a local cluster listens on port 5432")
}

fn restart_cluster() {
    let (version, name) = local_cluster();
    let status = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version,
            &name,
            "restart",
            "-m",
            "fast",
        ])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "restarting the cluster failed: {status}");
}

#[tokio::test]
async fn a_postgres_restart_during_delivery_loses_no_acknowledged_event() {
    let app = spawn_app_with(&["--retry-schedule", "200ms,500ms,1s,2s,2s,2s,2s,2s"]).await;
    let receiver = Receiver::start().await;
    receiver.reply_by_default(Reply::status(204).after(Duration::from_millis(20)));
    app.create_webhook(&receiver.url("/hook"), pb::Function::Withdrawal, &[], true)
        .await;

    let mut acknowledged = Vec::new();
    let mut ingest = app.ingest.clone();
    let mut restarted = false;
    for i in 0..200 {
        let event = withdrawal_event(
            &format!("pg-{i}"),
            &format!("W-{i}"),
            pb::Decision::Rejected,
            None,
        );
        // Publishes during the restart may fail; only acknowledged events must arrive.
        if let Ok(answer) = ingest.publish_event(event).await {
            acknowledged.push(answer.into_inner().event_id);
        }
        if i == 60 {
            restart_cluster();
            restarted = true;
        }
    }
    assert!(restarted);
    assert!(
        acknowledged.len() >= 150,
        "the service kept acknowledging after the restart: {}",
        acknowledged.len()
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let received: HashSet<String> = receiver
            .received()
            .iter()
            .filter_map(|r| r.json()["data"]["event_id"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !received.contains(*id))
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        missing, 0,
        "acknowledged events never delivered after the restart"
    );
}
