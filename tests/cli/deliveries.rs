//! `webhooks deliveries list|show|resend|recover` end to end, and the confirmation asked before
//! delete, resend and recover.

use webhooks::proto::v1 as pb;

use crate::support::spawn_app;
use testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_resend_and_recover() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    receiver.reply_by_default(testkit::Reply::status(500));
    let since = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    let hook = app
        .create_withdrawal_webhook("Failing desk", &receiver.url("/d"), "")
        .await;

    // A delivery that fails every attempt (three: the first and two retries).
    let first = app.publish_withdrawal("wd-100", "WD-100").await;
    app.wait_for_delivery_status(&first, pb::DeliveryStatus::Failed)
        .await;

    // list: JSON and table, with filters.
    let failed = app
        .cli(&[
            "deliveries",
            "list",
            "--webhook",
            &hook.id,
            "--status",
            "failed",
            "--output",
            "json",
        ])
        .await
        .json();
    let listed = &failed["deliveries"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(listed[0]["id"], first.as_str());
    assert_eq!(listed[0]["status"], "DELIVERY_STATUS_FAILED");
    assert_eq!(listed[0]["attemptCount"], 3);
    assert_eq!(listed[0]["lastResponseStatus"], 500);
    assert_eq!(listed[0]["requestId"], "WD-100");
    assert_eq!(listed[0]["function"], "FUNCTION_WITHDRAWAL");
    app.cli(&["deliveries", "list", "--webhook", &hook.id])
        .await
        .ok()
        .stdout_has("STATUS")
        .stdout_has(&first)
        .stdout_has("failed")
        .stdout_has("withdrawal.approved");
    let matching = app
        .cli(&[
            "deliveries",
            "list",
            "--event-type",
            "withdrawal.approved",
            "--request-id",
            "WD-100",
            "--created-after",
            &since,
            "--limit",
            "5",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(matching["deliveries"].as_array().map(Vec::len), Some(1));
    app.cli(&["deliveries", "list", "--status", "succeeded"])
        .await
        .ok()
        .stdout_has("No deliveries.");
    app.cli(&[
        "deliveries",
        "list",
        "--request-id",
        "WD-100",
        "--status",
        "pending",
        "--status",
        "failed",
        "--output",
        "json",
    ])
    .await
    .json()["deliveries"]
        .as_array()
        .map(Vec::len)
        .filter(|n| *n == 1)
        .expect("repeated --status filters combine");

    // show: every attempt's request and response.
    let shown = app
        .cli(&["deliveries", "show", &first, "--output", "json"])
        .await
        .json();
    let attempts = shown["attempts"].as_array().expect("attempts").clone();
    assert_eq!(attempts.len(), 3, "{shown}");
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attemptNumber"], i + 1);
        assert_eq!(attempt["responseStatus"], 500);
        assert_eq!(
            attempt.get("succeeded"),
            None,
            "false is left out: {attempt}"
        );
        assert_eq!(attempt["errorKind"], "ATTEMPT_ERROR_KIND_STATUS");
        assert_eq!(attempt["trigger"], "ATTEMPT_TRIGGER_SCHEDULED");
        assert!(
            attempt["duration"]
                .as_str()
                .is_some_and(|d| d.ends_with('s')),
            "{attempt}"
        );
        let headers = attempt["requestHeaders"].as_array().expect("headers");
        assert!(
            headers.iter().any(|h| h["name"] == "webhook-signature"),
            "{attempt}"
        );
    }
    let message_id = app.get_delivery(&first).await.message_id;
    assert!(message_id.starts_with("msg_"), "{message_id}");
    assert_eq!(shown["messageId"], message_id.as_str());
    let sent_id = attempts[0]["requestHeaders"]
        .as_array()
        .and_then(|headers| headers.iter().find(|h| h["name"] == "webhook-id"))
        .map(|h| h["value"].clone());
    assert_eq!(sent_id, Some(serde_json::Value::from(message_id)));
    app.cli(&["deliveries", "show", &first])
        .await
        .ok()
        .stdout_has("attempt 1 (scheduled)")
        .stdout_has("attempt 3 (scheduled)")
        .stdout_has(&format!("request: POST {}", receiver.url("/d")))
        .stdout_has("webhook-signature: v1,")
        .stdout_has("response: HTTP 500")
        .stdout_has("\"amount\": \"10.00\"");

    // resend: a new attempt now, which succeeds.
    receiver.reply_by_default(testkit::Reply::status(204));
    let resent = app
        .cli(&["deliveries", "resend", &first, "--yes", "--output", "json"])
        .await
        .json();
    assert_eq!(resent["id"], first.as_str());
    app.wait_for_delivery_status(&first, pb::DeliveryStatus::Succeeded)
        .await;
    let shown = app
        .cli(&["deliveries", "show", &first, "--output", "json"])
        .await
        .json();
    assert_eq!(shown["attempts"].as_array().map(Vec::len), Some(4));
    assert_eq!(shown["attempts"][3]["trigger"], "ATTEMPT_TRIGGER_RESEND");
    assert_eq!(shown["attempts"][3]["responseStatus"], 204);

    // recover: re-queues the failed deliveries since a time (only the second one is failed).
    receiver.reply_by_default(testkit::Reply::status(500));
    let second = app.publish_withdrawal("wd-101", "WD-101").await;
    app.wait_for_delivery_status(&second, pb::DeliveryStatus::Failed)
        .await;
    receiver.reply_by_default(testkit::Reply::status(204));
    let recovered = app
        .cli(&[
            "deliveries",
            "recover",
            "--webhook",
            &hook.id,
            "--since",
            &since,
            "--yes",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(recovered, serde_json::json!({"recovered": 1}));
    let done = app
        .wait_for_delivery_status(&second, pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(
        done.attempts.last().map(|a| a.trigger),
        Some(pb::AttemptTrigger::Recover as i32),
        "{done:#?}"
    );
    app.cli(&[
        "deliveries",
        "recover",
        "--webhook",
        &hook.id,
        "--since",
        &since,
        "--yes",
    ])
    .await
    .ok()
    .stdout_has("Re-queued 0 failed deliveries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_resend_and_recover_ask_first() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Careful desk", &receiver.url("/c"), "")
        .await;
    let delivery = app.publish_withdrawal("wd-200", "WD-200").await;
    app.wait_for_delivery_status(&delivery, pb::DeliveryStatus::Succeeded)
        .await;
    let since = "2000-01-01T00:00:00Z";

    // No terminal and no --yes: refused, exit 7, nothing done.
    app.cli(&["hooks", "delete", &hook.id])
        .await
        .exits(7)
        .stderr_has("--yes");
    assert!(
        app.try_get_webhook(&hook.id).await.is_ok(),
        "the webhook was deleted"
    );
    app.cli(&["deliveries", "resend", &delivery])
        .await
        .exits(7)
        .stderr_has("--yes");
    app.cli(&[
        "deliveries",
        "recover",
        "--webhook",
        &hook.id,
        "--since",
        since,
    ])
    .await
    .exits(7)
    .stderr_has("--yes");
    // Give a wrongly sent resend time to show up before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.get_delivery(&delivery).await.attempt_count,
        1,
        "it was resent"
    );

    // On a terminal: the question names what would happen; "n" refuses.
    let refused = app
        .cli_in_terminal(&["hooks", "delete", &hook.id], "n\n")
        .await;
    refused
        .exits(7)
        .stdout_has(&format!("Delete webhook {} (Careful desk)?", hook.id))
        .stdout_has("[y/N]")
        .stdout_has("nothing was deleted");
    assert!(
        app.try_get_webhook(&hook.id).await.is_ok(),
        "the webhook was deleted"
    );
    app.cli_in_terminal(&["deliveries", "resend", &delivery], "\n")
        .await
        .exits(7)
        .stdout_has(&format!(
            "Resend delivery {delivery} (withdrawal.approved, request WD-200"
        ));

    // "y" goes ahead.
    app.cli_in_terminal(&["deliveries", "resend", &delivery], "y\n")
        .await
        .ok()
        .stdout_has("Resent.");
    app.wait_for_delivery(&delivery, "a second attempt", |d| d.attempt_count == 2)
        .await;
    app.cli_in_terminal(
        &[
            "deliveries",
            "recover",
            "--webhook",
            &hook.id,
            "--since",
            since,
        ],
        "y\n",
    )
    .await
    .ok()
    .stdout_has("Re-queue the 0 failed deliveries of webhook")
    .stdout_has("(Careful desk)");
    app.cli_in_terminal(&["hooks", "delete", &hook.id], "yes\n")
        .await
        .ok()
        .stdout_has(&format!("Deleted webhook {} (Careful desk).", hook.id));
    assert_eq!(
        app.try_get_webhook(&hook.id)
            .await
            .map(|_| ())
            .map_err(|s| s.code()),
        Err(tonic::Code::NotFound)
    );
}
