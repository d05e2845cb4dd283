//! Every error status carries a `google.rpc.ErrorInfo` (reason, domain), and every retryable
//! RESOURCE_EXHAUSTED or UNAVAILABLE a `google.rpc.RetryInfo`: docs/grpc-api.md, "Errors". The
//! malformed and oversized requests of every RPC are checked in requests.rs.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;
use webhooks::proto::v1 as pb;

use testkit::pg_cluster::{Cluster, Transport};
use testkit::{spawn_app, spawn_app_on, spawn_app_with, with_token, withdrawal_event};

const DOMAIN: &str = "webhooks.backoffice.internal";
const ADMIN: &str = "admin-token-0123456789";
const INGEST: &str = "ingest-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const UNKNOWN: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// Asserts `result` failed with `code` and an ErrorInfo of `reason` in this service's domain,
/// with a RetryInfo exactly when the code is RESOURCE_EXHAUSTED or UNAVAILABLE.
#[track_caller]
fn assert_error_info<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: Code,
    reason: &str,
) {
    let status = result.expect_err(&format!("{reason}: expected an error"));
    assert_eq!(status.code(), code, "{reason}: {}", status.message());
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("{reason}: no ErrorInfo on {status:?}"));
    assert_eq!(info.reason, reason, "{}", status.message());
    assert_eq!(info.domain, DOMAIN);
    let retryable = matches!(code, Code::ResourceExhausted | Code::Unavailable);
    let delay = details.retry_info().and_then(|r| r.retry_delay);
    assert_eq!(
        delay.is_some_and(|d| d > Duration::ZERO),
        retryable,
        "{reason}: RetryInfo {delay:?}"
    );
}

#[tokio::test]
async fn the_admin_and_ingest_errors_carry_error_info() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let mut ingest = app.ingest.clone();
    assert_error_info(
        admin
            .create_webhook(pb::CreateWebhookRequest::default())
            .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_error_info(
        admin
            .get_webhook(pb::GetWebhookRequest { id: UNKNOWN.into() })
            .await,
        Code::NotFound,
        "WEBHOOK_NOT_FOUND",
    );
    assert_error_info(
        admin
            .get_delivery(pb::GetDeliveryRequest { id: UNKNOWN.into() })
            .await,
        Code::NotFound,
        "DELIVERY_NOT_FOUND",
    );
    let hook = app
        .create_withdrawal_webhook("Errors", "https://hooks.example.com/e", "")
        .await;
    let disabled = app.set_enabled(&hook.id, false).await;
    assert_error_info(
        admin
            .send_test_event(pb::SendTestEventRequest {
                webhook_id: hook.id.clone(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "WEBHOOK_NOT_SENDABLE",
    );
    assert_error_info(
        admin
            .delete_webhook(pb::DeleteWebhookRequest {
                id: hook.id.clone(),
                etag: hook.etag.clone(),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );
    assert_ne!(disabled.etag, hook.etag);
    ingest
        .publish_event(withdrawal_event(
            "key-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap();
    assert_error_info(
        ingest
            .publish_event(withdrawal_event(
                "key-1",
                "W-2",
                pb::Decision::Rejected,
                None,
            ))
            .await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let mut watch = admin
        .watch_deliveries(pb::WatchDeliveriesRequest {
            after_cursor: "not a cursor".into(),
            ..Default::default()
        })
        .await;
    if let Ok(stream) = &mut watch {
        // A stream may start before it fails: its first message is the error.
        let first = stream.get_mut().message().await;
        assert_error_info(first, Code::InvalidArgument, "INVALID_FIELD");
    } else {
        assert_error_info(watch, Code::InvalidArgument, "INVALID_FIELD");
    }
}

#[tokio::test]
async fn an_unknown_method_carries_error_info_named_after_its_code() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let answer = grpc
        .unary(
            tonic::Request::new(pb::GetWebhookRequest::default()),
            "/backoffice.webhooks.v1.WebhookAdmin/NoSuchMethod"
                .parse()
                .unwrap(),
            tonic_prost::ProstCodec::<pb::GetWebhookRequest, pb::Webhook>::default(),
        )
        .await;
    assert_error_info(answer, Code::Unimplemented, "UNIMPLEMENTED");
}

#[tokio::test]
async fn the_auth_layers_errors_carry_error_info_and_rate_limits_retry_info() {
    let app = spawn_app_with(&[
        "--admin-token",
        ADMIN,
        "--ingest-token",
        INGEST,
        "--viewer-token",
        VIEWER,
        "--ingest-rate-limit",
        "1",
        "--max-watch-streams-per-credential",
        "1",
    ])
    .await;
    let mut admin = app.admin.clone();
    let mut ingest = app.ingest.clone();
    assert_error_info(
        admin
            .list_webhooks(with_token(pb::ListWebhooksRequest::default(), None))
            .await,
        Code::Unauthenticated,
        "MISSING_CREDENTIALS",
    );
    assert_error_info(
        admin
            .list_webhooks(with_token(
                pb::ListWebhooksRequest::default(),
                Some("not-a-token"),
            ))
            .await,
        Code::Unauthenticated,
        "INVALID_TOKEN",
    );
    assert_error_info(
        admin
            .create_webhook(with_token(
                pb::CreateWebhookRequest::default(),
                Some(VIEWER),
            ))
            .await,
        Code::PermissionDenied,
        "ROLE_NOT_ALLOWED",
    );
    let mut limited = None;
    for i in 0..20 {
        let event = withdrawal_event(&format!("rate-{i}"), "W-1", pb::Decision::Rejected, None);
        if let Err(status) = ingest.publish_event(with_token(event, Some(INGEST))).await {
            limited = Some(status);
            break;
        }
    }
    assert_error_info(
        limited.map_or(Ok(()), Err),
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    let _open = admin
        .watch_deliveries(with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(ADMIN),
        ))
        .await
        .expect("the first stream opens");
    let second = admin
        .watch_deliveries(with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(ADMIN),
        ))
        .await;
    assert_error_info(
        second.map(|_| ()),
        Code::ResourceExhausted,
        "TOO_MANY_STREAMS",
    );
}

#[tokio::test]
async fn a_lost_database_is_unavailable_with_retry_info() {
    let cluster = Cluster::start(Transport::Plain);
    let database = Cluster::fresh_database();
    let app = spawn_app_on(&cluster.url("127.0.0.1", &database, ""), &database, &[]).await;
    app.create_withdrawal_webhook("Before", "https://hooks.example.com/b", "")
        .await;
    drop(cluster);
    assert_error_info(
        app.admin
            .clone()
            .list_webhooks(pb::ListWebhooksRequest::default())
            .await,
        Code::Unavailable,
        "DATABASE_UNAVAILABLE",
    );
}
