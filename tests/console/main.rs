//! The web console in a real browser: `console/e2e/story.mjs` (playwright-core driving Debian's
//! Chromium) runs the seed's whole story against the real `webhooks` binary, with its console
//! listener, PostgreSQL and a real receiver: sign in, Learn More, create a webhook, edit it, see a
//! published event's delivery appear live in History, open its details, resend it with
//! confirmation and see the new attempt arrive, send a test event, rotate the secret, disable and
//! enable, delete with confirmation, and the message shown once the service is gone. This test
//! starts everything, publishes the event through EventIngest when the story asks for it, checks
//! what the receiver and the API saw, then stops the service for the story's last step. It also
//! edits the webhook over gRPC while the story's edit form is open, so the story's save meets a
//! stale etag.
//!
//! Needs `scripts/build-console.sh` to have run before the binary was built (it embeds
//! `console/dist`), node and Chromium: `scripts/test.sh` sees to all three. Screenshots of each
//! screen land in `target/console-screenshots`.

mod support;

use std::process::Stdio;
use std::time::Duration;

use testkit::{Receiver, Service, TestDatabase, free_port, with_token, withdrawal_approved};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use webhooks::proto::v1 as pb;

const ADMIN_TOKEN: &str = "console-story-admin-token-0123456789";
const INGEST_TOKEN: &str = "console-story-ingest-token-0123456789";
/// The whole story, browser start included (it takes about 20 s on an idle machine).
const STORY_DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_runs_in_a_real_browser_against_the_real_service() {
    support::check_prerequisites();
    let receiver = support::flaky_receiver().await;
    let database = TestDatabase::fresh();
    let console_addr = format!("127.0.0.1:{}", free_port());
    let mut service = Service::start(
        testkit::webhooks_bin!(),
        &database,
        &[
            "--admin-token",
            ADMIN_TOKEN,
            "--ingest-token",
            INGEST_TOKEN,
            "--console-addr",
            &console_addr,
            "--allow-private-destinations",
            "true",
            // The receiver fails the first attempt; the retry is far away, so the delivery stays
            // pending with a 500 until the story resends it.
            "--retry-schedule",
            "1h",
        ],
    )
    .await;
    support::wait_for_console(&console_addr).await;

    let mut child = tokio::process::Command::new("node")
        .arg("console/e2e/story.mjs")
        .current_dir(support::repo_root())
        .env("CONSOLE_URL", format!("http://{console_addr}"))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INGEST_TOKEN", INGEST_TOKEN)
        .env("RECEIVER_URL", receiver.url("/hooks/withdrawals"))
        .env("SCREENSHOT_DIR", support::screenshot_dir())
        .env("CHROMIUM_PATH", support::chromium_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts console/e2e/story.mjs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let mut transcript = String::new();
    let mut request_id = None;
    let mut checked = false;
    let outcome = tokio::time::timeout(STORY_DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("story output is readable") {
            println!("story: {line}");
            transcript.push_str(&line);
            transcript.push('\n');
            let answer = match line.trim() {
                "READY_TO_PUBLISH" => {
                    let id = publish_withdrawal_approval(&service).await;
                    let answer = format!("PUBLISHED {id}\n");
                    request_id = Some(id);
                    answer
                }
                "READY_TO_CHANGE" => {
                    change_behind_the_console(&service).await;
                    "CHANGED\n".to_owned()
                }
                "READY_TO_STOP" => {
                    // Everything the story did, seen from outside; then the service goes away.
                    let id = request_id
                        .as_deref()
                        .expect("the event was published first");
                    check_what_the_story_did(&service, &receiver, id).await;
                    checked = true;
                    service.sigkill();
                    "STOPPED\n".to_owned()
                }
                _ => continue,
            };
            stdin
                .write_all(answer.as_bytes())
                .await
                .expect("the story reads its stdin");
            stdin.flush().await.expect("stdin flushes");
        }
        child.wait().await.expect("node exits")
    })
    .await;
    let stderr_text = stderr_text.await.unwrap_or_default();
    let status = match outcome {
        Ok(status) => status,
        Err(_) => panic!(
            "the story did not finish within {STORY_DEADLINE:?}\n--- stdout ---\n{transcript}--- stderr ---\n{stderr_text}"
        ),
    };
    assert!(
        status.success(),
        "the browser story failed ({status}); screenshots in {}\n--- stdout ---\n{transcript}--- stderr ---\n{stderr_text}",
        support::screenshot_dir().display()
    );
    assert!(checked, "the story never asked for the service to stop");

    drop(service);
    database.drop_database().await;
}

/// Edits the story's one webhook as another admin would, over gRPC, while the console's form
/// holds its etag: the story's next save must be ABORTED.
async fn change_behind_the_console(service: &Service) {
    let mut admin = service.admin().await;
    let webhooks = admin
        .list_webhooks(with_token(
            pb::ListWebhooksRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect("webhooks listed")
        .into_inner()
        .webhooks;
    let [webhook] = webhooks.as_slice() else {
        panic!("the story has one webhook when it asks for a change: {webhooks:?}");
    };
    admin
        .update_webhook(with_token(
            pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook {
                    id: webhook.id.clone(),
                    description: "Changed by another admin".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                ..Default::default()
            },
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect("changed behind the console");
}

/// Publishes, as the back office would, a withdrawal approved at node 1; returns its request id.
async fn publish_withdrawal_approval(service: &Service) -> String {
    let id = format!("WD-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let answer = service
        .ingest()
        .await
        .publish_event(with_token(
            withdrawal_approved(&format!("story-{id}"), &id),
            Some(INGEST_TOKEN),
        ))
        .await
        .expect("PublishEvent answers")
        .into_inner();
    assert_eq!(
        answer.delivery_ids.len(),
        1,
        "one matching webhook: {answer:?}"
    );
    id
}

/// What the receiver and the API saw of the story: the first attempt's 500, the resend's 200
/// with the same webhook-id, the test event; the webhook deleted, its history kept.
async fn check_what_the_story_did(service: &Service, receiver: &Receiver, request_id: &str) {
    let received = receiver.received();
    let about_request: Vec<_> = received
        .iter()
        .filter(|r| r.text().contains(request_id))
        .collect();
    assert_eq!(
        about_request.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 200],
        "first attempt, then the resend: {received:#?}"
    );
    assert_eq!(about_request[0].webhook_id(), about_request[1].webhook_id());
    assert!(
        about_request
            .iter()
            .all(|r| r.header("webhook-signature").starts_with("v1,"))
    );
    assert!(
        received.iter().any(|r| r.text().contains("webhook.test")),
        "the test event arrived: {received:#?}"
    );

    let mut admin = service.admin().await;
    let webhooks = admin
        .list_webhooks(with_token(
            pb::ListWebhooksRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect("ListWebhooks answers")
        .into_inner()
        .webhooks;
    assert!(
        webhooks.is_empty(),
        "the story deleted its webhook: {webhooks:?}"
    );
    let history = admin
        .list_deliveries(with_token(
            pb::ListDeliveriesRequest {
                request_id: request_id.to_owned(),
                ..Default::default()
            },
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect("ListDeliveries answers")
        .into_inner()
        .deliveries;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].status, pb::DeliveryStatus::Succeeded as i32);
    assert_eq!(history[0].attempt_count, 2);
}
