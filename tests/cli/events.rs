//! `webhooks events publish`, from flags and from a JSON file.

use serde_json::json;
use webhooks::proto::v1 as pb;

use crate::support::{spawn_app, strings};
use testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_flags_and_from_a_file() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    app.cli(&[
        "hooks",
        "create",
        "--name",
        "Withdrawals",
        "--url",
        &receiver.url("/w"),
        "--function",
        "withdrawal",
        "--approve-node",
        "1",
        "--reject",
    ])
    .await
    .ok();
    app.cli(&[
        "hooks",
        "create",
        "--name",
        "Live stage",
        "--url",
        &receiver.url("/l"),
        "--function",
        "prop-trading-live-stage",
        "--approve-node",
        "2",
    ])
    .await
    .ok();

    // From flags.
    let flags = [
        "events",
        "publish",
        "--key",
        "wd-1-node-1",
        "--decision",
        "approved",
        "--node",
        "1",
        "--function",
        "withdrawal",
        "--request-id",
        "WD-1",
        "--client-id",
        "C-1",
        "--client-name",
        "Jane Doe",
        "--amount",
        "1250.00",
        "--currency",
        "USD",
        "--payment-method",
        "bank_transfer",
        "--remarks",
        "KYC checked",
        "--occurred-at",
        "2025-06-01T10:00:00Z",
    ];
    let mut json_flags = flags.to_vec();
    json_flags.extend(["--output", "json"]);
    let published = app.cli(&json_flags).await.json();
    assert_eq!(published["eventType"], "withdrawal.approved");
    assert_eq!(
        published.get("duplicate"),
        None,
        "false is left out: {published}"
    );
    let deliveries = strings(&published["deliveryIds"]);
    assert_eq!(deliveries.len(), 1, "{published}");
    assert!(
        published["eventId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let body = receiver
        .wait_for_one("the withdrawal approval", |r| r.path == "/w")
        .await
        .json();
    assert_eq!(body["type"], "withdrawal.approved");
    assert_eq!(body["data"]["approval_node"], 1);
    assert_eq!(body["data"]["occurred_at"], "2025-06-01T10:00:00Z");
    let withdrawal = &body["data"]["withdrawal"];
    assert_eq!(withdrawal["id"], "WD-1");
    assert_eq!(withdrawal["client_name"], "Jane Doe");
    assert_eq!(withdrawal["amount"], "1250.00");
    assert_eq!(withdrawal["payment_method"], "bank_transfer");

    // The same again: a duplicate, nothing new queued.
    app.cli(&flags)
        .await
        .ok()
        .stdout_has("duplicate:")
        .stdout_has("yes")
        .stdout_has(&deliveries[0]);
    // The same key with other content: ALREADY_EXISTS, 6.
    let mut changed = flags.to_vec();
    let amount = changed
        .iter()
        .position(|a| *a == "1250.00")
        .expect("amount");
    changed[amount] = "99.00";
    app.cli(&changed)
        .await
        .exits(6)
        .stderr_has("[ALREADY_EXISTS]");

    // Flags that do not fit are refused before anything is sent.
    app.cli(&[
        "events",
        "publish",
        "--key",
        "k-fee",
        "--decision",
        "approved",
        "--node",
        "1",
        "--function",
        "withdrawal",
        "--request-id",
        "WD-2",
        "--client-id",
        "C-1",
        "--amount",
        "1.00",
        "--currency",
        "USD",
        "--fee",
        "3.00",
    ])
    .await
    .exits(2)
    .stderr_has("--fee does not apply to --function withdrawal");
    app.cli(&[
        "events",
        "publish",
        "--key",
        "k-node",
        "--decision",
        "rejected",
        "--node",
        "1",
        "--function",
        "withdrawal",
        "--request-id",
        "WD-2",
        "--client-id",
        "C-1",
    ])
    .await
    .exits(2)
    .stderr_has("--node");
    // What the service refuses names the flag behind the field.
    app.cli(&[
        "events",
        "publish",
        "--key",
        "k-amount",
        "--decision",
        "rejected",
        "--function",
        "withdrawal",
        "--request-id",
        "WD-2",
        "--client-id",
        "C-1",
        "--currency",
        "USD",
    ])
    .await
    .exits(2)
    .stderr_has("withdrawal.amount")
    .stderr_has("(set by --amount)");

    // From a file: a live-stage approval with every field.
    let dir = std::env::temp_dir().join(format!("webhooks-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let live = dir.join("live.json");
    std::fs::write(
        &live,
        json!({
            "idempotency_key": "live-LS-7-node-2",
            "decision": "DECISION_APPROVED",
            "approval_node": 2,
            "occurred_at": "2025-06-02T08:30:00Z",
            "prop_trading_live_stage": {
                "id": "LS-7",
                "client_id": "C-7",
                "client_name": "Alan Turing",
                "client_email": "alan@example.com",
                "program": "Pro Trader",
                "challenge": "Phase 2",
                "account_size": "200000",
                "currency": "EUR",
                "evaluation_account": "EVAL-2",
                "live_account": "LIVE-2",
                "submitted_at": "2025-06-01T12:00:00Z",
                "status": "funded",
                "remarks": null
            }
        })
        .to_string(),
    )
    .expect("file written");
    let from_file = app
        .cli(&[
            "events",
            "publish",
            "--file",
            live.to_str().expect("utf-8"),
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(from_file["eventType"], "prop_trading.live_stage.approved");
    assert_eq!(strings(&from_file["deliveryIds"]).len(), 1, "{from_file}");
    let body = receiver
        .wait_for_one("the live-stage approval", |r| r.path == "/l")
        .await
        .json();
    let stage = &body["data"]["prop_trading_live_stage"];
    assert_eq!(stage["live_account"], "LIVE-2");
    assert_eq!(stage["account_size"], "200000");
    assert_eq!(stage["submitted_at"], "2025-06-01T12:00:00Z");
    assert_eq!(body["data"]["approval_node"], 2);

    // From stdin (`--file -`): a withdrawal rejection with a beneficiary.
    let rejection = json!({
        "idempotency_key": "wd-9-rejected",
        "decision": "DECISION_REJECTED",
        "withdrawal": {
            "id": "WD-9", "client_id": "C-9", "amount": "10.00", "currency": "USD",
            "beneficiary": {"account_holder": "Jane Doe", "iban": "DE89370400440532013000"}
        }
    });
    app.cli_with_stdin(
        &["events", "publish", "--file", "-"],
        &rejection.to_string(),
    )
    .await
    .ok()
    .stdout_has("withdrawal.rejected");
    let body = receiver
        .wait_for_one("the rejection", |r| {
            r.json()["type"] == "withdrawal.rejected"
        })
        .await
        .json();
    assert_eq!(
        body["data"]["withdrawal"]["beneficiary"]["iban"],
        "DE89370400440532013000"
    );

    // Broken files: usage errors naming the file and the field; nothing is published.
    let typo = dir.join("typo.json");
    std::fs::write(
        &typo,
        r#"{"idempotency_key": "k-typo", "decision": "DECISION_REJECTED",
            "withdrawal": {"id": "WD-3", "client_id": "C", "amout": "1.00"}}"#,
    )
    .expect("file written");
    app.cli(&["events", "publish", "--file", typo.to_str().expect("utf-8")])
        .await
        .exits(2)
        .stderr_has("withdrawal: unrecognized field name 'amout'");
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "decision: approved").expect("file written");
    app.cli(&[
        "events",
        "publish",
        "--file",
        not_json.to_str().expect("utf-8"),
    ])
    .await
    .exits(2)
    .stderr_has("not valid JSON");
    app.cli(&["events", "publish", "--file", "/nonexistent/event.json"])
        .await
        .exits(2)
        .stderr_has("--file /nonexistent/event.json");
    app.cli(&[
        "events",
        "publish",
        "--file",
        live.to_str().expect("utf-8"),
        "--key",
        "x",
    ])
    .await
    .exits(2)
    .stderr_has("--key");
    let events: Vec<pb::Delivery> = app
        .admin
        .clone()
        .list_deliveries(pb::ListDeliveriesRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .deliveries;
    assert_eq!(
        events.len(),
        3,
        "three publishes queued deliveries: {events:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
