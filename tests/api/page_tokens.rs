//! Page tokens carry integrity: a token that was edited — a byte flipped, its position moved,
//! parts spliced from another listing's token — is INVALID_ARGUMENT naming `page_token`, while
//! an untouched one pages on any instance sharing the deployment's page-token key (derived
//! from the encryption key, or kept in the database without one).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tonic::Code;
use webhooks::proto::v1 as pb;

use testkit::{TestApp, fresh_database_url, server_url, spawn_app, spawn_app_on, withdrawal_event};

/// Creates `count` withdrawal webhooks; their ids in creation order (the listing's order).
async fn seed(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let created = app
            .create_webhook(
                "http://127.0.0.1:9/hook",
                pb::Function::Withdrawal,
                &[1],
                true,
            )
            .await;
        ids.push(created.webhook.expect("the webhook").id);
    }
    ids
}

/// One ListWebhooks page of one webhook after `token`.
async fn webhooks_page(
    app: &TestApp,
    token: &str,
) -> Result<pb::ListWebhooksResponse, tonic::Status> {
    app.admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            page_size: 1,
            page_token: token.to_owned(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// The id on a one-webhook page.
#[track_caller]
fn only_id(page: &pb::ListWebhooksResponse) -> &str {
    assert_eq!(page.webhooks.len(), 1, "{page:?}");
    &page.webhooks[0].id
}

/// Asserts INVALID_ARGUMENT whose message names `page_token`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, what: &str) {
    match result {
        Ok(value) => panic!("{what} must be refused, got {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
            assert!(
                status.message().starts_with("page_token: "),
                "{what}: {}",
                status.message()
            );
        }
    }
}

/// `token` decoded, changed by `edit`, encoded again.
fn edited(token: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("tokens are base64url");
    edit(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_page_token_with_any_byte_changed_is_refused_naming_page_token() {
    let app = spawn_app().await;
    let ids = seed(&app, 3).await;
    let first = webhooks_page(&app, "").await.expect("first page");
    let token = first.next_page_token;
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token} is URL-safe"
    );
    let length = URL_SAFE_NO_PAD.decode(&token).expect("base64url").len();
    for at in 0..length {
        for mask in [0x01u8, 0x80] {
            let flipped = edited(&token, |bytes| bytes[at] ^= mask);
            assert_refused(
                webhooks_page(&app, &flipped).await,
                &format!("byte {at} ^ {mask:#04x}"),
            );
        }
    }
    // The untouched token still reads the next page.
    let second = webhooks_page(&app, &token).await.expect("second page");
    assert_eq!(only_id(&second), ids[1]);
}

#[tokio::test]
async fn a_page_token_moved_to_another_position_is_refused() {
    let app = spawn_app().await;
    seed(&app, 4).await;
    let first = webhooks_page(&app, "").await.expect("first page");
    let token = first.next_page_token;
    let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
    let mut position = [0u8; 8];
    position.copy_from_slice(&bytes[1..9]);
    let seq = i64::from_be_bytes(position);
    for moved in [0, seq - 1, seq + 1, seq + 2, 1 << 40] {
        let forged = edited(&token, |bytes| {
            bytes[1..9].copy_from_slice(&moved.to_be_bytes());
        });
        assert_refused(
            webhooks_page(&app, &forged).await,
            &format!("position {seq} moved to {moved}"),
        );
    }
}

/// ListDeliveries of one webhook's deliveries, one a page, after `token`.
fn deliveries_of(webhook_id: &str, token: &str) -> pb::ListDeliveriesRequest {
    pb::ListDeliveriesRequest {
        webhook_id: webhook_id.to_owned(),
        page_size: 1,
        page_token: token.to_owned(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_page_token_moved_to_a_listing_with_other_filters_is_refused() {
    let app = spawn_app_with_workers_off().await;
    let ids = seed(&app, 2).await;
    for i in 0..3 {
        app.publish(withdrawal_event(
            &format!("pt-{i}"),
            &format!("W-PT-{i}"),
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    }
    let token_a = app
        .list_deliveries(deliveries_of(&ids[0], ""))
        .await
        .next_page_token;
    let token_b = app
        .list_deliveries(deliveries_of(&ids[1], ""))
        .await
        .next_page_token;
    assert!(!token_a.is_empty() && !token_b.is_empty());

    // Whole: A's token with B's filters.
    let listed = app
        .admin
        .clone()
        .list_deliveries(deliveries_of(&ids[1], &token_a))
        .await;
    assert_refused(listed, "webhook A's token for webhook B");
    // Spliced: A's position with B's filter digest, so the filters would match B.
    let b_digest = URL_SAFE_NO_PAD.decode(&token_b).expect("base64url");
    let spliced = edited(&token_a, |bytes| {
        bytes[9..25].copy_from_slice(&b_digest[9..25]);
    });
    let listed = app
        .admin
        .clone()
        .list_deliveries(deliveries_of(&ids[1], &spliced))
        .await;
    assert_refused(listed, "A's position with B's filter digest");
    // Each token still pages its own listing.
    let next = app.list_deliveries(deliveries_of(&ids[1], &token_b)).await;
    assert_eq!(next.deliveries.len(), 1);
    assert_eq!(next.deliveries[0].webhook_id, ids[1]);
}

/// An instance whose workers stay off, so deliveries stay put while they are listed.
async fn spawn_app_with_workers_off() -> TestApp {
    testkit::spawn_app_with(&["--disable-workers", "true"]).await
}

/// Pages through every webhook one at a time, asking `apps` in turn (each page's token is
/// presented to the next instance); the ids in order.
async fn page_across(apps: &[&TestApp]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    for turn in 0.. {
        let app = apps[turn % apps.len()];
        let page = webhooks_page(app, &token)
            .await
            .unwrap_or_else(|e| panic!("page {turn} on instance {}: {e:?}", turn % apps.len()));
        ids.extend(page.webhooks.into_iter().map(|w| w.id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
    unreachable!("the loop returns")
}

/// Creates the empty database `name` on the test server.
async fn create_database(name: &str) {
    let (client, connection) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .expect("the test server answers");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("database created");
}

/// Rows of the page-token key table.
async fn stored_keys(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one("SELECT count(*) FROM page_token_key", &[])
        .await
        .expect("the table exists")
        .get(0)
}

#[tokio::test]
async fn without_an_encryption_key_instances_on_one_database_share_its_page_token_key() {
    let (url, name) = fresh_database_url();
    // The database exists first (two concurrent CREATE DATABASE may collide in Postgres's
    // catalog, which is another matter); then both start at once and race to create its key.
    create_database(&name).await;
    let (a, b) = tokio::join!(
        spawn_app_on(&url, &name, &[]),
        spawn_app_on(&url, &name, &[])
    );
    let ids = seed(&a, 3).await;
    assert_eq!(page_across(&[&a, &b]).await, ids);
    assert_eq!(page_across(&[&b, &a]).await, ids);
    assert_eq!(stored_keys(&a).await, 1);

    // Another database has its own key: the token is not one of its tokens.
    let elsewhere = spawn_app().await;
    let token = webhooks_page(&a, "").await.expect("page").next_page_token;
    assert_refused(
        webhooks_page(&elsewhere, &token).await,
        "another database's token",
    );
}

#[tokio::test]
async fn instances_with_one_encryption_key_share_the_page_token_key_derived_from_it() {
    let key = STANDARD.encode([1u8; 32]);
    let other_key = STANDARD.encode([2u8; 32]);
    let (url, name) = fresh_database_url();
    let a = spawn_app_on(&url, &name, &["--encryption-key", &key]).await;
    let b = spawn_app_on(&url, &name, &["--encryption-key", &key]).await;
    let ids = seed(&a, 3).await;
    assert_eq!(page_across(&[&a, &b]).await, ids);
    assert_eq!(stored_keys(&a).await, 0, "derived, not stored");

    // An instance with another encryption key, on the same database, signs differently.
    let stranger = spawn_app_on(&url, &name, &["--encryption-key", &other_key]).await;
    let token = webhooks_page(&a, "").await.expect("page").next_page_token;
    assert_refused(
        webhooks_page(&stranger, &token).await,
        "another key's token",
    );
}
