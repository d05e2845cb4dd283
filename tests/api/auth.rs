//! Authentication and roles, API keys, rate limits, and secrets sealed at rest.

use std::time::Duration;

use base64::Engine;
use tonic::Code;
use webhooks::proto::v1 as pb;
use webhooks::store::{Role, Store};

use crate::helpers::operator;
use testkit::{
    Receiver, fresh_database_url, serve_config, spawn_app_with, with_token, withdrawal_event,
};

const ADMIN: &str = "admin-token-0123456789";
const INGEST: &str = "ingest-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";

fn new_hook(url: &str) -> pb::CreateWebhookRequest {
    pb::CreateWebhookRequest {
        webhook: Some(pb::Webhook {
            name: "Auth".into(),
            destination_url: url.into(),
            function: pb::Function::Withdrawal as i32,
            events: Some(pb::EventSelection {
                approval_nodes: vec![1],
                rejection: true,
            }),
            ..Default::default()
        }),
        secret: String::new(),
        ..Default::default()
    }
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

const TOKENS: &[&str] = &[
    "--admin-token",
    ADMIN,
    "--ingest-token",
    INGEST,
    "--viewer-token",
    VIEWER,
];

#[tokio::test]
async fn without_a_token_nothing_but_health_answers() {
    let app = spawn_app_with(TOKENS).await;
    let mut admin = app.admin.clone();
    let mut ingest = app.ingest.clone();
    let list = admin
        .list_webhooks(with_token(pb::ListWebhooksRequest::default(), None))
        .await;
    assert_eq!(code(list), Code::Unauthenticated);
    let create = admin
        .create_webhook(with_token(new_hook("https://example.com/h"), None))
        .await;
    assert_eq!(code(create), Code::Unauthenticated);
    let publish = ingest
        .publish_event(with_token(
            withdrawal_event("a-1", "W-1", pb::Decision::Rejected, None),
            None,
        ))
        .await;
    assert_eq!(code(publish), Code::Unauthenticated);
    let wrong = admin
        .list_webhooks(with_token(pb::ListWebhooksRequest::default(), Some("nope")))
        .await;
    assert_eq!(code(wrong), Code::Unauthenticated);

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(health.is_ok(), "health needs no token: {health:?}");
}

#[tokio::test]
async fn each_role_may_do_its_part_only() {
    let app = spawn_app_with(TOKENS).await;
    let mut admin = app.admin.clone();
    let mut ingest = app.ingest.clone();

    // An ingest token cannot administer, but publishes.
    let create = admin
        .create_webhook(with_token(new_hook("https://example.com/h"), Some(INGEST)))
        .await;
    let denied = create.expect_err("ingest may not create");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("ingest"), "{}", denied.message());
    assert_eq!(
        code(
            admin
                .list_webhooks(with_token(pb::ListWebhooksRequest::default(), Some(INGEST)))
                .await
        ),
        Code::PermissionDenied
    );
    let event = withdrawal_event("roles-1", "W-1", pb::Decision::Rejected, None);
    assert_eq!(
        code(
            ingest
                .publish_event(with_token(event.clone(), Some(INGEST)))
                .await
        ),
        Code::Ok
    );

    // A viewer reads, and nothing more.
    assert_eq!(
        code(
            admin
                .list_webhooks(with_token(pb::ListWebhooksRequest::default(), Some(VIEWER)))
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            admin
                .create_webhook(with_token(new_hook("https://example.com/h"), Some(VIEWER)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            ingest
                .publish_event(with_token(event.clone(), Some(VIEWER)))
                .await
        ),
        Code::PermissionDenied
    );
    let watch = admin
        .watch_deliveries(with_token(
            pb::WatchDeliveriesRequest::default(),
            Some(VIEWER),
        ))
        .await;
    assert_eq!(code(watch), Code::Ok);

    // An admin does everything.
    assert_eq!(
        code(
            admin
                .create_webhook(with_token(new_hook("https://example.com/h"), Some(ADMIN)))
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(ingest.publish_event(with_token(event, Some(ADMIN))).await),
        Code::Ok
    );
}

#[tokio::test]
async fn api_keys_from_the_store_work_until_revoked() {
    let (url, name) = fresh_database_url();
    let app = testkit::spawn_app_on(&url, &name, &["--require-auth", "true"]).await;
    let store = Store::connect(&url, 2).unwrap();
    let (key, token) = store
        .create_api_key("ci", Role::Viewer, &operator())
        .await
        .unwrap();
    assert!(token.starts_with("whk_"));
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !format!("{listed:?}").contains(&token),
        "listings never show the token"
    );

    let mut admin = app.admin.clone();
    assert_eq!(
        code(
            admin
                .list_webhooks(with_token(pb::ListWebhooksRequest::default(), Some(&token)))
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            admin
                .create_webhook(with_token(new_hook("https://example.com/h"), Some(&token)))
                .await
        ),
        Code::PermissionDenied
    );
    assert!(store.revoke_api_key(key.id, &operator()).await.unwrap());
    let mut revoked = false;
    for _ in 0..80 {
        if code(
            admin
                .list_webhooks(with_token(pb::ListWebhooksRequest::default(), Some(&token)))
                .await,
        ) == Code::Unauthenticated
        {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(revoked, "a revoked key stops working within the cache time");
}

#[tokio::test]
async fn ingest_over_the_rate_limit_is_resource_exhausted() {
    let app = spawn_app_with(&["--ingest-token", INGEST, "--ingest-rate-limit", "2"]).await;
    let mut ingest = app.ingest.clone();
    let mut codes = Vec::new();
    for i in 0..6 {
        let event = withdrawal_event(&format!("rate-{i}"), "W-1", pb::Decision::Rejected, None);
        codes.push(code(
            ingest.publish_event(with_token(event, Some(INGEST))).await,
        ));
    }
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    assert_eq!(codes[0], Code::Ok);
}

#[tokio::test]
async fn without_authentication_only_loopback_may_be_bound() {
    let (url, _) = fresh_database_url();
    let mut config = serve_config(&url, &[]);
    config.grpc_addr = "0.0.0.0:0".parse().unwrap();
    let error = webhooks::startup::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("WEBHOOKS_ADMIN_TOKEN"),
        "{error}"
    );
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_deliveries_still_verify() {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let app = spawn_app_with(&["--encryption-key", &key]).await;
    let receiver = Receiver::start().await;
    let created = app
        .admin
        .clone()
        .create_webhook(new_hook(&receiver.url("/hook")))
        .await
        .unwrap()
        .into_inner();
    let raw_key = base64::engine::general_purpose::STANDARD
        .decode(&created.secret["whsec_".len()..])
        .unwrap();

    let row = app
        .db()
        .await
        .query_one("SELECT secret FROM webhooks", &[])
        .await
        .unwrap();
    let stored: Vec<u8> = row.get(0);
    assert!(
        !stored
            .windows(raw_key.len())
            .any(|w| w == raw_key.as_slice()),
        "the dump shows the secret"
    );

    app.ingest
        .clone()
        .publish_event(withdrawal_event(
            "sealed-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap();
    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 1);
    let verifier = standardwebhooks::Webhook::new(&created.secret).unwrap();
    verifier
        .verify(&received[0].body, &received[0].headers)
        .expect("verifies with the secret the API returned");
}

async fn keys_cli(database_url: &str, args: &[&str]) -> String {
    let mut all = vec!["keys", "--database-url", database_url];
    all.extend_from_slice(args);
    crate::helpers::webhooks_binary(&all).await
}

#[tokio::test]
async fn the_keys_command_creates_lists_and_revokes_working_tokens() {
    let (url, name) = fresh_database_url();
    let app = testkit::spawn_app_on(&url, &name, &["--require-auth", "true"]).await;
    let created = keys_cli(&url, &["create", "--name", "payments", "--role", "ingest"]).await;
    let token = created
        .lines()
        .last()
        .expect("the token line")
        .trim()
        .to_owned();
    assert!(token.starts_with("whk_"), "{created}");
    let event = withdrawal_event("cli-key-1", "W-1", pb::Decision::Rejected, None);
    assert_eq!(
        code(
            app.ingest
                .clone()
                .publish_event(with_token(event, Some(&token)))
                .await
        ),
        Code::Ok
    );

    let listed = keys_cli(&url, &["list"]).await;
    assert!(
        listed.contains("payments") && listed.contains("ingest"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "the token is never listed");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("an id")
        .to_owned();
    keys_cli(&url, &["revoke", &id]).await;
    assert!(keys_cli(&url, &["list"]).await.contains("revoked"));
}

#[tokio::test]
async fn reencrypt_moves_every_secret_to_the_new_key() {
    let old = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
    let new = base64::engine::general_purpose::STANDARD.encode([2u8; 32]);
    let (url, name) = fresh_database_url();
    let app = testkit::spawn_app_on(&url, &name, &["--encryption-key", &old]).await;
    let receiver = Receiver::start().await;
    let created = app
        .admin
        .clone()
        .create_webhook(new_hook(&receiver.url("/hook")))
        .await
        .unwrap()
        .into_inner();
    app.stop().await;

    let printed = crate::helpers::reencrypt(&url, &new, &old).await;
    assert!(printed.contains("re-sealed 1"));

    // Only the new key is needed now, and deliveries still verify with the same secret.
    let app = testkit::spawn_app_on(&url, &name, &["--encryption-key", &new]).await;
    app.ingest
        .clone()
        .publish_event(withdrawal_event(
            "reenc-1",
            "W-1",
            pb::Decision::Rejected,
            None,
        ))
        .await
        .unwrap();
    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 1);
    standardwebhooks::Webhook::new(&created.secret)
        .unwrap()
        .verify(&received[0].body, &received[0].headers)
        .expect("verifies");
}
