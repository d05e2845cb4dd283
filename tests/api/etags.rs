//! Webhook etags (AIP-154): UpdateWebhook, SetWebhookEnabled and DeleteWebhook act only if the
//! etag given is the webhook's current one; a stale one is ABORTED and changes nothing.

use tonic::Code;
use tonic_types::StatusExt;
use webhooks::proto::v1 as pb;

use testkit::{TestApp, assert_status, spawn_app};

async fn hook(app: &TestApp) -> pb::Webhook {
    app.create_withdrawal_webhook("Edited", "https://hooks.example.com/e", "")
        .await
}

fn rename(id: &str, name: &str, etag: &str) -> pb::UpdateWebhookRequest {
    pb::UpdateWebhookRequest {
        webhook: Some(pb::Webhook {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["name".into()],
        }),
        etag: etag.into(),
    }
}

/// Asserts `result` is the ABORTED of a stale etag, with its ErrorInfo.
#[track_caller]
fn assert_stale<T: std::fmt::Debug>(result: Result<T, tonic::Status>) {
    let status = result.as_ref().err().cloned();
    assert_status(result, Code::Aborted, "changed since it was read");
    let info = status.and_then(|s| s.get_error_details().error_info().cloned());
    assert_eq!(info.map(|i| i.reason), Some("STALE_ETAG".to_owned()));
}

#[tokio::test]
async fn a_webhook_etag_changes_when_it_is_edited_and_not_when_read() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    assert!(!created.etag.is_empty());
    assert_eq!(app.get_webhook(&created.id).await.etag, created.etag);
    let updated = app
        .admin
        .clone()
        .update_webhook(rename(&created.id, "Renamed", ""))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(updated.etag, created.etag);
    assert_eq!(app.get_webhook(&created.id).await.etag, updated.etag);
}

#[tokio::test]
async fn update_webhook_with_a_stale_etag_is_aborted_and_changes_nothing() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let mut admin = app.admin.clone();
    let other = admin
        .update_webhook(rename(&created.id, "By someone else", ""))
        .await
        .unwrap()
        .into_inner();
    assert_stale(
        admin
            .update_webhook(rename(&created.id, "Mine", &created.etag))
            .await,
    );
    assert_eq!(app.get_webhook(&created.id).await, other);
}

#[tokio::test]
async fn update_webhook_with_the_current_etag_changes_it() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let updated = app
        .admin
        .clone()
        .update_webhook(rename(&created.id, "Mine", &created.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Mine");
}

#[tokio::test]
async fn set_webhook_enabled_with_a_stale_etag_is_aborted_and_changes_nothing() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let mut admin = app.admin.clone();
    admin
        .update_webhook(rename(&created.id, "By someone else", ""))
        .await
        .unwrap();
    assert_stale(
        admin
            .set_webhook_enabled(pb::SetWebhookEnabledRequest {
                id: created.id.clone(),
                enabled: false,
                etag: created.etag.clone(),
            })
            .await,
    );
    assert!(app.get_webhook(&created.id).await.enabled);
}

#[tokio::test]
async fn set_webhook_enabled_with_the_current_etag_disables_it() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let disabled = app
        .admin
        .clone()
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id: created.id.clone(),
            enabled: false,
            etag: created.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!disabled.enabled);
    assert_ne!(
        disabled.etag, created.etag,
        "the enabled state is part of the etag"
    );
}

#[tokio::test]
async fn delete_webhook_with_a_stale_etag_is_aborted_and_keeps_it() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let mut admin = app.admin.clone();
    app.set_enabled(&created.id, false).await;
    assert_stale(
        admin
            .delete_webhook(pb::DeleteWebhookRequest {
                id: created.id.clone(),
                etag: created.etag.clone(),
            })
            .await,
    );
    assert!(
        app.try_get_webhook(&created.id).await.is_ok(),
        "not deleted"
    );
}

#[tokio::test]
async fn delete_webhook_with_the_current_etag_deletes_it() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    app.admin
        .clone()
        .delete_webhook(pb::DeleteWebhookRequest {
            id: created.id.clone(),
            etag: created.etag.clone(),
        })
        .await
        .unwrap();
    assert_status(
        app.try_get_webhook(&created.id).await,
        Code::NotFound,
        "not found",
    );
}

#[tokio::test]
async fn an_etag_on_a_deleted_webhook_is_not_found() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let mut admin = app.admin.clone();
    admin
        .delete_webhook(pb::DeleteWebhookRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_status(
        admin
            .set_webhook_enabled(pb::SetWebhookEnabledRequest {
                id: created.id.clone(),
                enabled: true,
                etag: created.etag.clone(),
            })
            .await,
        Code::NotFound,
        "not found",
    );
}

#[tokio::test]
async fn an_etag_the_service_did_not_issue_is_invalid_argument() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    assert_status(
        app.admin
            .clone()
            .update_webhook(rename(&created.id, "Mine", "\"abc\""))
            .await,
        Code::InvalidArgument,
        "etag: must be an etag",
    );
}

#[tokio::test]
async fn concurrent_updates_with_the_same_etag_exactly_one_wins() {
    let app = spawn_app().await;
    let created = hook(&app).await;
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let mut admin = app.admin.clone();
            let request = rename(&created.id, &format!("Editor {i}"), &created.etag);
            tokio::spawn(async move { admin.update_webhook(request).await })
        })
        .collect();
    let mut won = Vec::new();
    for call in calls {
        match call.await.expect("joined") {
            Ok(answer) => won.push(answer.into_inner()),
            Err(status) => assert_stale(Err::<(), _>(status)),
        }
    }
    assert_eq!(won.len(), 1, "exactly one edit wins: {won:?}");
    assert_eq!(app.get_webhook(&created.id).await.name, won[0].name);
}
