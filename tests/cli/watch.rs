//! `webhooks deliveries watch`: live updates, one line (or JSON object) each, and resuming after
//! the last printed cursor when the connection drops.

use serde_json::Value;
use webhooks::proto::v1 as pb;

use crate::support::{Proxy, Running, spawn_app};
use testkit::Receiver;

/// The JSON updates printed so far (every line must be one JSON object).
fn updates(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("watch printed a line that is not JSON ({e}): {line}"))
        })
        .collect()
}

fn has_update(lines: &[String], delivery: &str, kind: &str) -> bool {
    updates(lines)
        .iter()
        .any(|u| u["delivery"]["id"] == delivery && u["kind"] == kind)
}

fn cursors(lines: &[String]) -> Vec<i64> {
    updates(lines)
        .iter()
        .map(|u| {
            u["cursor"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("no numeric cursor in {u}"))
        })
        .collect()
}

fn watch(server: &str, webhook: &str, json: bool) -> Running {
    let mut args: Vec<String> = [
        "deliveries",
        "watch",
        "--webhook",
        webhook,
        "--server",
        server,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if json {
        args.extend(["--output".to_owned(), "json".to_owned()]);
    }
    Running::start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_live_updates() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Watched desk", &receiver.url("/w"), "")
        .await;
    let other = app
        .create_withdrawal_webhook("Other desk", &receiver.url("/o"), "")
        .await;

    let mut as_json = watch(&app.server, &hook.id, true);
    let mut as_text = watch(&app.server, &hook.id, false);
    for watcher in [&mut as_json, &mut as_text] {
        watcher
            .wait_stderr("the stream to open", |lines| {
                lines
                    .iter()
                    .any(|l| l.contains("watching delivery updates"))
            })
            .await;
    }

    // One publish matches both webhooks; the watchers only follow theirs.
    let response = app
        .ingest
        .clone()
        .publish_event(pb::PublishEventRequest {
            idempotency_key: "watched-1".into(),
            decision: pb::Decision::Rejected as i32,
            approval_node: None,
            occurred_at: None,
            request: Some(pb::publish_event_request::Request::Withdrawal(
                pb::WithdrawalRequest {
                    id: "WD-W1".into(),
                    client_id: "C-1".into(),
                    amount: "5.00".into(),
                    currency: "USD".into(),
                    ..Default::default()
                },
            )),
        })
        .await
        .expect("published")
        .into_inner();
    assert_eq!(response.delivery_ids.len(), 2);
    let mut mine = None;
    for id in &response.delivery_ids {
        if app.get_delivery(id).await.webhook_id == hook.id {
            mine = Some(id.clone());
        }
    }
    let delivery = mine.expect("a delivery to the watched webhook");

    let lines = as_json
        .wait_stdout("the delivery's success", |lines| {
            has_update(lines, &delivery, "UPDATE_KIND_ATTEMPT_SUCCEEDED")
        })
        .await;
    assert!(
        has_update(&lines, &delivery, "UPDATE_KIND_CREATED"),
        "no CREATED update: {lines:#?}"
    );
    let all = updates(&lines);
    assert!(
        all.iter()
            .all(|u| u["delivery"]["webhookId"] == hook.id.as_str()),
        "an update of another webhook ({}) leaked through: {lines:#?}",
        other.id
    );
    let succeeded = all
        .iter()
        .find(|u| u["kind"] == "UPDATE_KIND_ATTEMPT_SUCCEEDED")
        .expect("found above");
    assert_eq!(succeeded["delivery"]["status"], "DELIVERY_STATUS_SUCCEEDED");
    assert_eq!(succeeded["attempt"]["responseStatus"], 204);
    let cursors = cursors(&lines);
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");

    let text = as_text
        .wait_stdout("the delivery's success as text", |lines| {
            lines
                .iter()
                .any(|l| l.contains(&delivery) && l.contains("attempt-succeeded"))
        })
        .await;
    let success = text
        .iter()
        .find(|l| l.contains("attempt-succeeded"))
        .expect("found above");
    for part in [
        "status=succeeded",
        "http=204",
        "request=WD-W1",
        "withdrawal.rejected",
        "cursor=",
    ] {
        assert!(success.contains(part), "`{part}` missing from `{success}`");
    }
    assert!(
        text.iter()
            .any(|l| l.contains(&delivery) && l.contains("  created  ")),
        "{text:#?}"
    );
    as_json.kill().await;
    as_text.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_the_last_cursor_when_the_connection_drops() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Flaky network desk", &receiver.url("/f"), "")
        .await;
    let proxy = Proxy::start(app.addr).await;

    let mut watcher = watch(&format!("http://{}", proxy.addr), &hook.id, true);
    watcher
        .wait_stderr("the stream to open", |lines| {
            lines
                .iter()
                .any(|l| l.contains("watching delivery updates"))
        })
        .await;
    let before = app.publish_withdrawal("flaky-1", "WD-F1").await;
    watcher
        .wait_stdout("the first delivery's success", |lines| {
            has_update(lines, &before, "UPDATE_KIND_ATTEMPT_SUCCEEDED")
        })
        .await;

    // The network goes away; meanwhile a delivery is made from start to end.
    proxy.cut();
    watcher
        .wait_stderr("the loss to be noticed", |lines| {
            lines.iter().any(|l| l.contains("connection lost"))
        })
        .await;
    let during = app.publish_withdrawal("flaky-2", "WD-F2").await;
    app.wait_for_delivery_status(&during, pb::DeliveryStatus::Succeeded)
        .await;
    assert!(
        !has_update(&watcher.stdout_lines(), &during, "UPDATE_KIND_CREATED"),
        "the proxy did not cut the stream"
    );

    // Back: what happened while away is printed, then the live tail goes on.
    proxy.restore();
    watcher
        .wait_stdout("the updates made while disconnected", |lines| {
            has_update(lines, &during, "UPDATE_KIND_CREATED")
                && has_update(lines, &during, "UPDATE_KIND_ATTEMPT_SUCCEEDED")
        })
        .await;
    let after = app.publish_withdrawal("flaky-3", "WD-F3").await;
    let lines = watcher
        .wait_stdout("a live update after reconnecting", |lines| {
            has_update(lines, &after, "UPDATE_KIND_ATTEMPT_SUCCEEDED")
        })
        .await;
    let stderr = watcher.stderr_lines();
    assert!(
        stderr.iter().any(|l| l.contains("resuming after cursor")),
        "{stderr:#?}"
    );

    // Nothing repeated, nothing out of order, and every update of the three deliveries there.
    let cursors = cursors(&lines);
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors repeat or go back: {cursors:?}\n{lines:#?}"
    );
    for id in [&before, &during, &after] {
        let kinds: Vec<String> = updates(&lines)
            .iter()
            .filter(|u| u["delivery"]["id"] == id.as_str())
            .map(|u| u["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            kinds,
            ["UPDATE_KIND_CREATED", "UPDATE_KIND_ATTEMPT_SUCCEEDED"],
            "delivery {id}: {lines:#?}"
        );
    }
    watcher.kill().await;
}
