//! `webhooks audit list` against the running service, and `webhooks audit verify` on its
//! database, as the CLI's users run them.

use crate::support::spawn_app;
use testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_shows_who_changed_a_webhook_and_verify_checks_the_chain() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Audited desk", &receiver.url("/a"), "")
        .await;
    app.cli(&["hooks", "disable", &hook.id]).await.ok();

    let listed = app
        .cli(&["audit", "list", "--webhook", &hook.id, "--output", "json"])
        .await
        .json();
    let events = listed["auditEvents"].as_array().expect("a list of rows");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["webhook.disabled", "webhook.created"], "{listed}");
    assert!(
        events[0]["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.contains("tonic")),
        "the CLI's own user agent is recorded: {listed}"
    );
    assert_eq!(events[0]["actor"], "local");

    let table = app
        .cli(&["audit", "list", "--action", "webhook.created"])
        .await;
    table.ok();
    assert!(
        table.stdout.contains("webhook.created") && table.stdout.contains("Audited desk"),
        "{}",
        table.stdout
    );
    assert!(
        !table.stdout.contains("webhook.disabled"),
        "{}",
        table.stdout
    );

    let verified = crate::support::run(
        &[
            "audit".to_owned(),
            "verify".to_owned(),
            "--database-url".to_owned(),
            app.database.url.clone(),
        ],
        None,
    )
    .await;
    verified.ok();
    assert!(
        verified.stdout.contains("audit chain valid: 2 row(s)"),
        "{verified:#?}"
    );
}
