//! `--output json` is the canonical proto3 JSON mapping: the CLI prints what grpcurl prints for
//! the same call (lowerCamelCase names, enums by name, RFC 3339 times, int64 as strings, default
//! values left out), compared as parsed JSON.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use webhooks::proto::v1 as pb;

use crate::support::{Running, spawn_app};
use testkit::Receiver;

/// Every JSON document grpcurl printed (a stream prints one after the other).
async fn grpcurl(addr: &str, method: &str, request: &Value, extra: &[&str]) -> Vec<Value> {
    let request = request.to_string();
    let mut args = vec!["-plaintext", "-d", request.as_str()];
    args.extend_from_slice(extra);
    args.push(addr);
    args.push(method);
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("grpcurl")
            .args(&args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("grpcurl {args:?} did not finish within 60 s"))
    .unwrap_or_else(|e| panic!("grpcurl could not be run ({e}): install grpcurl"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let documents: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e}):\n{stdout}"));
    assert!(
        !documents.is_empty(),
        "grpcurl {args:?} printed nothing; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_what_grpcurl_prints() {
    let app = spawn_app(&[]).await;
    let addr = app.addr.to_string();
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Payments desk", &receiver.url("/hook"), "")
        .await;

    // Webhook (GetWebhook).
    let cli = app
        .cli(&["hooks", "get", &hook.id, "--output", "json"])
        .await
        .ok()
        .json();
    let theirs = grpcurl(
        &addr,
        "backoffice.webhooks.v1.WebhookAdmin/GetWebhook",
        &serde_json::json!({ "id": hook.id }),
        &[],
    )
    .await;
    assert_eq!(cli, theirs[0]);
    assert!(cli["destinationUrl"].is_string(), "{cli}");
    assert!(
        cli.get("description").is_none(),
        "defaults are left out: {cli}"
    );

    // DeliveryUpdate (WatchDeliveries), one JSON object per line.
    let mut watch = Running::start(&[
        "deliveries".to_owned(),
        "watch".to_owned(),
        "--webhook".to_owned(),
        hook.id.clone(),
        "--server".to_owned(),
        app.server.clone(),
        "--output".to_owned(),
        "json".to_owned(),
    ]);
    watch
        .wait_stderr("the stream to open", |lines| {
            lines
                .iter()
                .any(|l| l.contains("watching delivery updates"))
        })
        .await;
    let delivery_id = app.publish_withdrawal("grpcurl-1", "WD-1").await;
    let delivery = app
        .wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    let lines = watch
        .wait_stdout("two updates", |lines| lines.len() >= 2)
        .await;
    watch.kill().await;
    let first: Value = serde_json::from_str(&lines[0]).expect("one JSON object per line");
    let second: Value = serde_json::from_str(&lines[1]).expect("one JSON object per line");
    let cursor = first["cursor"].as_str().expect("the cursor is a string");
    let theirs = grpcurl(
        &addr,
        "backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries",
        &serde_json::json!({ "webhookId": hook.id, "afterCursor": cursor }),
        &["-max-time", "3"],
    )
    .await;
    assert_eq!(second, theirs[0]);
    assert_eq!(
        second["delivery"]["webhookId"],
        hook.id.as_str(),
        "{second}"
    );

    // Delivery (GetDelivery).
    let cli = app
        .cli(&["deliveries", "show", &delivery.id, "--output", "json"])
        .await
        .ok()
        .json();
    let theirs = grpcurl(
        &addr,
        "backoffice.webhooks.v1.WebhookAdmin/GetDelivery",
        &serde_json::json!({ "id": delivery.id }),
        &[],
    )
    .await;
    assert_eq!(cli, theirs[0]);
    assert_eq!(cli["status"], "DELIVERY_STATUS_SUCCEEDED", "{cli}");
    assert_eq!(cli["attemptCount"], 1, "{cli}");
}
