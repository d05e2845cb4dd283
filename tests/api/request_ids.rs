//! request_id (AIP-155) on the admin mutations: a retry with the same id answers the first
//! call's answer instead of acting twice; docs/grpc-api.md, "Retrying".

use tonic::Code;
use tonic_types::StatusExt;
use webhooks::proto::v1 as pb;

use testkit::{Receiver, TestApp, assert_status, spawn_app};

const ID: &str = "3f0c1a52-6b1e-4d2a-9a47-0c8d1e5f7b21";

fn create_request(url: &str, request_id: &str) -> pb::CreateWebhookRequest {
    let mut webhook = testkit::webhook_spec(url, pb::Function::Withdrawal, &[1], true);
    webhook.name = "Retried".into();
    pb::CreateWebhookRequest {
        webhook: Some(webhook),
        request_id: request_id.into(),
        ..Default::default()
    }
}

async fn webhook_count(app: &TestApp) -> usize {
    app.admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .expect("listed")
        .into_inner()
        .webhooks
        .len()
}

/// The number of `resent` updates the delivery log holds for `delivery_id`: one per requeue.
async fn resent_updates(app: &TestApp, delivery_id: &str) -> i64 {
    let id: uuid::Uuid = delivery_id.parse().expect("a delivery id");
    app.db()
        .await
        .query_one(
            "SELECT count(*) FROM delivery_update_entries WHERE delivery_id = $1 AND kind = 'resent'",
            &[&id],
        )
        .await
        .expect("counted")
        .get(0)
}

#[tokio::test]
async fn create_webhook_retried_with_the_same_request_id_creates_one_webhook() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let request = create_request("https://hooks.example.com/retried", ID);
    let first = admin
        .create_webhook(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = admin.create_webhook(request).await.unwrap().into_inner();
    assert_eq!(
        retried, first,
        "the retry answers the first answer, secret included"
    );
    assert!(first.secret.starts_with("whsec_"));
    assert_eq!(webhook_count(&app).await, 1);
}

#[tokio::test]
async fn concurrent_create_webhooks_with_the_same_request_id_create_one_webhook() {
    let app = spawn_app().await;
    let request = create_request("https://hooks.example.com/raced", ID);
    let calls = (0..4).map(|_| {
        let mut admin = app.admin.clone();
        let request = request.clone();
        tokio::spawn(async move { admin.create_webhook(request).await.map(|r| r.into_inner()) })
    });
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("joined").expect("created"));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "one answer for all: {answers:?}"
    );
    assert_eq!(webhook_count(&app).await, 1);
}

#[tokio::test]
async fn create_webhooks_with_different_request_ids_create_one_each() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let url = "https://hooks.example.com/twice";
    admin.create_webhook(create_request(url, ID)).await.unwrap();
    admin
        .create_webhook(create_request(url, "6d1f3e2a-0b4c-4e5f-8a9b-1c2d3e4f5a6b"))
        .await
        .unwrap();
    admin.create_webhook(create_request(url, "")).await.unwrap();
    assert_eq!(webhook_count(&app).await, 3);
}

#[tokio::test]
async fn a_request_id_reused_for_another_request_is_invalid_argument() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    admin
        .create_webhook(create_request("https://hooks.example.com/a", ID))
        .await
        .unwrap();
    let reused = admin
        .create_webhook(create_request("https://hooks.example.com/b", ID))
        .await;
    let status = reused.as_ref().expect_err("refused").clone();
    assert_status(reused, Code::InvalidArgument, "request_id");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|i| i.reason.as_str()),
        Some("REQUEST_ID_REUSED")
    );
    let violations = &details
        .bad_request()
        .expect("a BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "request_id");
    assert_eq!(webhook_count(&app).await, 1);
}

#[tokio::test]
async fn a_request_id_that_is_not_a_uuid_is_invalid_argument() {
    let app = spawn_app().await;
    let answer = app
        .admin
        .clone()
        .create_webhook(create_request("https://hooks.example.com/a", "retry-1"))
        .await;
    assert_status(answer, Code::InvalidArgument, "request_id: must be a UUID");
    assert_eq!(webhook_count(&app).await, 0);
}

#[tokio::test]
async fn rotate_webhook_secret_retried_with_the_same_request_id_rotates_once() {
    let app = spawn_app().await;
    let hook = app
        .create_withdrawal_webhook("Rotated", "https://hooks.example.com/r", "")
        .await;
    let mut admin = app.admin.clone();
    let request = pb::RotateWebhookSecretRequest {
        id: hook.id.clone(),
        request_id: ID.into(),
        ..Default::default()
    };
    let first = admin
        .rotate_webhook_secret(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = admin
        .rotate_webhook_secret(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, first, "the retry answers the same new secret");
    // A second rotation would have generated another secret, with another hint.
    let now = app.get_webhook(&hook.id).await;
    assert_eq!(now.secret_hint, first.webhook.unwrap().secret_hint);
    assert!(
        first
            .secret
            .ends_with(&now.secret_hint[now.secret_hint.len() - 4..])
    );
}

#[tokio::test]
async fn resend_delivery_retried_with_the_same_request_id_resends_once() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    app.create_withdrawal_webhook("Resent", &receiver.url("/hook"), "")
        .await;
    let delivery_id = app.publish_withdrawal("resend-key", "W-1").await;
    app.wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    let mut admin = app.admin.clone();
    let request = pb::ResendDeliveryRequest {
        id: delivery_id.clone(),
        request_id: ID.into(),
    };
    let first = admin
        .resend_delivery(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = admin.resend_delivery(request).await.unwrap().into_inner();
    assert_eq!(retried, first);
    assert_eq!(resent_updates(&app, &delivery_id).await, 1);
}

#[tokio::test]
async fn recover_failed_deliveries_retried_with_the_same_request_id_recovers_once() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    let hook = app
        .create_withdrawal_webhook("Recovered", &receiver.url("/hook"), "")
        .await;
    let delivery_id = app.publish_withdrawal("recover-key", "W-1").await;
    app.wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    // Failing for good takes the whole retry schedule; mark it failed as the worker would.
    let id: uuid::Uuid = delivery_id.parse().unwrap();
    app.db()
        .await
        .execute(
            "UPDATE deliveries SET status = 'failed' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let mut admin = app.admin.clone();
    let request = pb::RecoverFailedDeliveriesRequest {
        webhook_id: hook.id.clone(),
        since: Some(prost_types::Timestamp::default()),
        request_id: ID.into(),
    };
    let first = admin
        .recover_failed_deliveries(request.clone())
        .await
        .unwrap()
        .into_inner();
    // Failed again before the retry: a second recovery would re-queue it again.
    app.wait_for_delivery_status(&delivery_id, pb::DeliveryStatus::Succeeded)
        .await;
    app.db()
        .await
        .execute(
            "UPDATE deliveries SET status = 'failed' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let retried = admin
        .recover_failed_deliveries(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.recovered, 1);
    assert_eq!(retried, first);
    assert_eq!(resent_updates(&app, &delivery_id).await, 1);
    assert_eq!(
        app.get_delivery(&delivery_id).await.status,
        pb::DeliveryStatus::Failed as i32,
        "the retry did not re-queue it"
    );
}

#[tokio::test]
async fn send_test_event_retried_with_the_same_request_id_sends_once() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    let hook = app
        .create_withdrawal_webhook("Pinged", &receiver.url("/hook"), "")
        .await;
    let mut admin = app.admin.clone();
    let request = pb::SendTestEventRequest {
        webhook_id: hook.id.clone(),
        request_id: ID.into(),
    };
    let first = admin
        .send_test_event(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = admin.send_test_event(request).await.unwrap().into_inner();
    assert_eq!(retried, first);
    assert_eq!(app.deliveries_of(&hook.id).await.len(), 1);
}

#[tokio::test]
async fn two_callers_with_the_same_request_id_each_create_their_webhook() {
    const FIRST: &str = "admin-token-first-0123456789";
    const SECOND: &str = "admin-token-second-0123456789";
    let app = testkit::spawn_app_with(&["--admin-token", &format!("{FIRST},{SECOND}")]).await;
    let mut admin = app.admin.clone();
    let request = create_request("https://hooks.example.com/shared-id", ID);
    let first = admin
        .create_webhook(testkit::with_token(request.clone(), Some(FIRST)))
        .await
        .unwrap()
        .into_inner();
    let second = admin
        .create_webhook(testkit::with_token(request, Some(SECOND)))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(first.webhook.unwrap().id, second.webhook.unwrap().id);
    let listed = admin
        .list_webhooks(testkit::with_token(
            pb::ListWebhooksRequest::default(),
            Some(FIRST),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.webhooks.len(), 2);
}

#[tokio::test]
async fn a_stored_answer_is_sealed_and_survives_reencrypt_to_a_new_key() {
    use base64::Engine;
    let old = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let new = base64::engine::general_purpose::STANDARD.encode([4u8; 32]);
    let (url, name) = testkit::fresh_database_url();
    let app = testkit::spawn_app_on(&url, &name, &["--encryption-key", &old]).await;
    let request = create_request("https://hooks.example.com/sealed", ID);
    let first = app
        .admin
        .clone()
        .create_webhook(request.clone())
        .await
        .unwrap()
        .into_inner();
    // The secret shown once is not in the stored answer in plain text.
    let stored: Vec<u8> = app
        .db()
        .await
        .query_one("SELECT response FROM admin_requests", &[])
        .await
        .unwrap()
        .get(0);
    let secret = first.secret.trim_start_matches("whsec_");
    assert!(!String::from_utf8_lossy(&stored).contains(secret));
    app.stop().await;

    crate::helpers::reencrypt(&url, &new, &old).await;
    let app = testkit::spawn_app_on(&url, &name, &["--encryption-key", &new]).await;
    let retried = app
        .admin
        .clone()
        .create_webhook(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, first);
}
