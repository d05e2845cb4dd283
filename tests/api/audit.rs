//! The audit trail: one row per admin mutation and system action, with the right actor and no
//! secrets, written in the change's own transaction; ListAuditEvents; the hash chain checked by
//! the real `webhooks audit verify` binary, with two instances writing at once and after a purge.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::Code;
use webhooks::proto::v1 as pb;
use webhooks::store::Store;

use testkit::{
    Receiver, Reply, TestApp, fresh_database_url, run_webhooks, spawn_app, spawn_app_on,
    wait_until, with_token, withdrawal_event, withdrawal_webhook,
};

const NAMED: &str = "console-token-0123456789";
const BARE: &str = "bare-admin-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const INGEST: &str = "ingest-token-0123456789";
/// A signing secret and a header value that must never reach the trail.
const SECRET: &str = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";
const HEADER_VALUE: &str = "header-credential-value-0001";
const NEW_HEADER_VALUE: &str = "header-credential-value-0002";

fn token_args() -> Vec<String> {
    vec![
        "--admin-token".into(),
        format!("console:{NAMED},{BARE}"),
        "--viewer-token".into(),
        VIEWER.into(),
        "--ingest-token".into(),
        INGEST.into(),
    ]
}

async fn spawn_with_tokens(url: &str, name: &str) -> TestApp {
    let args = token_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_app_on(url, name, &args).await
}

/// Every row, oldest first, as ListAuditEvents pages them (read with the viewer token).
async fn all_events(app: &TestApp, filter: pb::ListAuditEventsRequest) -> Vec<pb::AuditEvent> {
    let mut request = filter;
    request.page_size = 2;
    let mut events = Vec::new();
    loop {
        let page = app
            .admin
            .clone()
            .list_audit_events(with_token(request.clone(), Some(VIEWER)))
            .await
            .expect("viewers may list the trail")
            .into_inner();
        events.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    events.reverse();
    events
}

/// How many rows each action has.
fn actions(events: &[pb::AuditEvent]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.action.clone()).or_default() += 1;
    }
    counts
}

/// `message` sent with the named admin token.
fn by<T>(message: T) -> tonic::Request<T> {
    with_token(message, Some(NAMED))
}

/// `webhooks audit verify` on `url`: its success and output.
async fn verify(url: &str) -> (bool, String) {
    let (status, output) = run_webhooks(
        testkit::webhooks_bin!(),
        &["audit", "verify", "--database-url", url],
        Duration::from_secs(60),
    )
    .await;
    (status.success(), output)
}

#[tokio::test]
async fn every_admin_mutation_leaves_one_row_naming_its_actor_and_no_secret() {
    let (url, name) = fresh_database_url();
    let app = spawn_with_tokens(&url, &name).await;
    let rx = Receiver::start().await;
    let mut admin = app.admin.clone();

    let mut create = withdrawal_webhook("Audited", &rx.url("/audited"));
    create.secret = SECRET.into();
    if let Some(webhook) = create.webhook.as_mut() {
        webhook.headers = vec![pb::CustomHeader {
            name: "X-Api-Key".into(),
            value: HEADER_VALUE.into(),
            ..Default::default()
        }];
    }
    let hook = admin
        .create_webhook(by(create))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    let id = hook.id.clone();
    admin
        .update_webhook(by(pb::UpdateWebhookRequest {
            webhook: Some(pb::Webhook {
                id: id.clone(),
                name: "Audited, renamed".into(),
                headers: vec![pb::CustomHeader {
                    name: "X-Api-Key".into(),
                    value: NEW_HEADER_VALUE.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into(), "headers".into()],
            }),
            ..Default::default()
        }))
        .await
        .unwrap();
    let rotated = admin
        .rotate_webhook_secret(by(pb::RotateWebhookSecretRequest {
            id: id.clone(),
            secret: String::new(),
            grace_period: None,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let test = admin
        .send_test_event(by(pb::SendTestEventRequest {
            webhook_id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    admin
        .resend_delivery(by(pb::ResendDeliveryRequest {
            id: test.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    admin
        .recover_failed_deliveries(by(pb::RecoverFailedDeliveriesRequest {
            webhook_id: id.clone(),
            since: Some(prost_types::Timestamp::default()),
            ..Default::default()
        }))
        .await
        .unwrap();
    for enabled in [false, true] {
        admin
            .set_webhook_enabled(by(pb::SetWebhookEnabledRequest {
                id: id.clone(),
                enabled,
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    admin
        .delete_webhook(by(pb::DeleteWebhookRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();

    let events = all_events(&app, pb::ListAuditEventsRequest::default()).await;
    let expected: BTreeMap<String, usize> = [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.test_event_sent",
        "delivery.resent",
        "webhook.deliveries_recovered",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ]
    .into_iter()
    .map(|a| (a.to_owned(), 1))
    .collect();
    assert_eq!(actions(&events), expected, "{events:#?}");
    for event in &events {
        assert_eq!(
            (event.actor.as_str(), event.role.as_str()),
            ("console", "admin")
        );
        assert!(event.peer.starts_with("127.0.0.1:"), "{event:?}");
        assert!(event.user_agent.contains("tonic"), "{event:?}");
        let expected_kind = if event.action == "delivery.resent" {
            "delivery"
        } else {
            "webhook"
        };
        assert_eq!(event.target_kind, expected_kind);
    }
    let update = &events[1];
    let diff = format!("{:?}", update.diff);
    assert!(
        diff.contains("Audited, renamed") && diff.contains("changed"),
        "the update's diff shows the name and that header values changed: {diff}"
    );
    // No secret anywhere in the trail, as stored.
    let db = app.db().await;
    let stored: String = db
        .query_one("SELECT string_agg(diff::text, ' ') FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    for secret in [
        SECRET,
        "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
        HEADER_VALUE,
        NEW_HEADER_VALUE,
        &rotated.secret,
    ] {
        assert!(
            !stored.contains(secret),
            "a secret reached the trail: {stored}"
        );
    }
    assert!(
        stored.contains("X-Api-Key"),
        "header names are shown: {stored}"
    );

    // The bare token is named by its role and the end of its hash.
    admin
        .create_webhook(with_token(
            withdrawal_webhook("Bare", &rx.url("/bare")),
            Some(BARE),
        ))
        .await
        .unwrap();
    let hash = Sha256::digest(BARE.as_bytes());
    let bare_name = format!("admin-{:02x}{:02x}", hash[30], hash[31]);
    let by_bare = all_events(
        &app,
        pb::ListAuditEventsRequest {
            actor: bare_name.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&by_bare).get("webhook.created"), Some(&1));
    assert!(by_bare.iter().all(|e| e.actor == bare_name));
}

#[tokio::test]
async fn api_keys_the_keys_command_and_reencrypt_are_recorded_with_their_actors() {
    let (url, name) = fresh_database_url();
    let app = spawn_app_on(&url, &name, &["--require-auth", "true"]).await;
    let created = crate::helpers::webhooks_binary(&[
        "keys",
        "--database-url",
        &url,
        "create",
        "--name",
        "payments-svc",
        "--role",
        "admin",
    ])
    .await;
    let token = created.lines().last().unwrap().trim().to_owned();
    let key_id = created
        .split_whitespace()
        .nth(2)
        .expect("created key <id>")
        .to_owned();
    let rx = Receiver::start().await;
    app.admin
        .clone()
        .create_webhook(with_token(
            withdrawal_webhook("By key", &rx.url("/k")),
            Some(&token),
        ))
        .await
        .unwrap();
    let listed = app
        .admin
        .clone()
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest::default(),
            Some(&token),
        ))
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    assert_eq!(listed[0].action, "webhook.created");
    assert_eq!(listed[0].actor, "payments-svc");
    assert_eq!(listed[1].action, "api_key.created");
    assert_eq!(listed[1].target_id, key_id);
    assert!(listed[1].actor.starts_with("cli:"), "{:?}", listed[1]);
    assert_eq!(listed[1].role, "database");
    let text = format!("{listed:?}");
    assert!(!text.contains(&token), "the token never reaches the trail");

    crate::helpers::webhooks_binary(&["keys", "--database-url", &url, "revoke", &key_id]).await;
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [3u8; 32]);
    crate::helpers::webhooks_binary(&[
        "reencrypt",
        "--database-url",
        &url,
        "--encryption-key",
        &key,
    ])
    .await;
    let db = app.db().await;
    let rows = db
        .query(
            "SELECT action, actor FROM audit_events WHERE id > 2 ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "api_key.revoked");
    assert_eq!(rows[1].0, "secrets.reencrypted");
    assert!(rows.iter().all(|(_, actor)| actor.starts_with("cli:")));
}

#[tokio::test]
async fn without_authentication_the_actor_is_local() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.admin
        .clone()
        .create_webhook(withdrawal_webhook("Local", &rx.url("/l")))
        .await
        .unwrap();
    let events = events_unauthenticated(&app, pb::ListAuditEventsRequest::default()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor.as_str(), events[0].action.as_str()),
        ("local", "webhook.created")
    );
}

#[tokio::test]
async fn a_row_names_the_calls_request_id_and_its_retry_adds_no_row() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let request_id = "3f0c1a52-6b1e-4d2a-9a47-0c8d1e5f7b21";
    let mut create = withdrawal_webhook("Retried", &rx.url("/r"));
    create.request_id = request_id.into();
    for _ in 0..2 {
        app.admin
            .clone()
            .create_webhook(create.clone())
            .await
            .unwrap();
    }
    let events = events_unauthenticated(&app, pb::ListAuditEventsRequest::default()).await;
    let rows: Vec<_> = events
        .iter()
        .map(|e| (e.action.as_str(), e.request_id.as_str()))
        .collect();
    assert_eq!(rows, [("webhook.created", request_id)]);
}

#[tokio::test]
async fn a_410_from_a_real_receiver_leaves_a_system_row_with_the_reason() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    rx.script_when(
        |r| r.path == "/gone",
        [Reply::status(410).with_body("gone")],
    );
    let hook = app
        .admin
        .clone()
        .create_webhook(withdrawal_webhook("Gone", &rx.url("/gone")))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    app.publish(withdrawal_event(
        "gone-1",
        "W-1",
        pb::Decision::Approved,
        Some(1),
    ))
    .await;
    let events = wait_until("a system row", testkit::PATIENCE, || {
        let app = &app;
        let id = hook.id.clone();
        async move {
            let events = app
                .admin
                .clone()
                .list_audit_events(pb::ListAuditEventsRequest {
                    actor: "system".into(),
                    target_kind: "webhook".into(),
                    target_id: id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .audit_events;
            (!events.is_empty()).then_some(events)
        }
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.action, "webhook.disabled_gone");
    assert_eq!(event.role, "system");
    let diff = format!("{:?}", event.diff);
    assert!(diff.contains("410"), "the reason names the 410: {diff}");
    assert!(!app.get_webhook(&hook.id).await.enabled);
    let (valid, output) = verify(&app.database.url).await;
    assert!(valid, "{output}");
}

#[tokio::test]
async fn the_circuit_opening_and_closing_are_system_rows() {
    let app = testkit::spawn_app_with(&[
        "--circuit-breaker-threshold",
        "1",
        "--circuit-breaker-cooldown",
        "1s",
    ])
    .await;
    let rx = Receiver::start().await;
    rx.script_when(
        |r| r.path == "/flaky",
        [Reply::status(503), Reply::status(200)],
    );
    let hook = app
        .admin
        .clone()
        .create_webhook(withdrawal_webhook("Flaky", &rx.url("/flaky")))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    let published = app
        .publish(withdrawal_event(
            "flaky-1",
            "W-1",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    app.wait_for_delivery_status(&published.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let events = all_events_unauthenticated(&app, &hook.id).await;
    let system: Vec<&str> = events
        .iter()
        .filter(|e| e.actor == "system")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        system,
        ["webhook.circuit_opened", "webhook.circuit_closed"],
        "{events:?}"
    );
}

/// A webhook's rows, oldest first, from a service without authentication.
async fn all_events_unauthenticated(app: &TestApp, webhook_id: &str) -> Vec<pb::AuditEvent> {
    events_unauthenticated(
        app,
        pb::ListAuditEventsRequest {
            target_kind: "webhook".into(),
            target_id: webhook_id.into(),
            ..Default::default()
        },
    )
    .await
}

/// The first page of rows matching `filter`, oldest first, from a service without tokens.
async fn events_unauthenticated(
    app: &TestApp,
    filter: pb::ListAuditEventsRequest,
) -> Vec<pb::AuditEvent> {
    let mut events = app
        .admin
        .clone()
        .list_audit_events(filter)
        .await
        .unwrap()
        .into_inner()
        .audit_events;
    events.reverse();
    events
}

#[tokio::test]
async fn a_change_whose_transaction_fails_leaves_no_row_and_a_failed_append_leaves_no_change() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let db = app.db().await;
    // The webhook's insert fails at commit, after the audit row was written in the transaction.
    db.batch_execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON webhooks \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await
    .unwrap();
    let failed = app
        .admin
        .clone()
        .create_webhook(withdrawal_webhook("Refused", &rx.url("/r")))
        .await;
    assert!(failed.is_err(), "the commit was refused");
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM audit_events").await, 0);
    assert_eq!(count("SELECT count(*) FROM webhooks").await, 0);

    // And the other way round: an append that fails takes the change with it.
    db.batch_execute(
        "DROP TRIGGER refuse_at_commit ON webhooks; \
         CREATE TRIGGER refuse_append BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .await
    .unwrap();
    let failed = app
        .admin
        .clone()
        .create_webhook(withdrawal_webhook("Unrecorded", &rx.url("/u")))
        .await;
    assert!(failed.is_err(), "the append was refused");
    assert_eq!(count("SELECT count(*) FROM webhooks").await, 0);
    assert_eq!(count("SELECT last_id FROM audit_chain_head").await, 0);
}

/// How many audit rows the database holds.
async fn rows(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0)
}

/// Three webhook rows (created, disabled, enabled) on `app`.
async fn three_rows(app: &TestApp, rx: &Receiver) {
    let hook = app
        .admin
        .clone()
        .create_webhook(withdrawal_webhook("Chain", &rx.url("/c")))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    app.set_enabled(&hook.id, false).await;
    app.set_enabled(&hook.id, true).await;
}

#[tokio::test]
async fn editing_a_row_makes_verify_fail_naming_it() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    three_rows(&app, &rx).await;
    let (valid, output) = verify(&app.database.url).await;
    assert!(valid, "{output}");
    assert!(output.contains("3 row(s)"), "{output}");

    let db = app.db().await;
    let refused = db
        .execute(
            "UPDATE audit_events SET actor = 'mallory' WHERE id = 2",
            &[],
        )
        .await;
    assert!(refused.is_err(), "the table refuses updates");
    db.batch_execute(
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; \
         UPDATE audit_events SET actor = 'mallory' WHERE id = 2;",
    )
    .await
    .unwrap();
    let (valid, output) = verify(&app.database.url).await;
    assert!(!valid, "{output}");
    assert!(output.contains("broken at row 2"), "{output}");
    assert!(output.contains("altered"), "{output}");
}

#[tokio::test]
async fn deleting_a_row_makes_verify_fail_naming_it() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    three_rows(&app, &rx).await;
    let db = app.db().await;
    let refused = db
        .execute("DELETE FROM audit_events WHERE id = 2", &[])
        .await;
    assert!(refused.is_err(), "the table refuses deletes");
    db.batch_execute(
        "BEGIN; SET LOCAL webhooks.audit_purge = 'on'; \
         DELETE FROM audit_events WHERE id = 2; COMMIT;",
    )
    .await
    .unwrap();
    let (valid, output) = verify(&app.database.url).await;
    assert!(!valid, "{output}");
    assert!(output.contains("broken at row 2"), "{output}");
    assert!(output.contains("missing"), "{output}");
}

#[tokio::test]
async fn two_instances_writing_at_once_keep_the_chain_valid() {
    let (url, name) = fresh_database_url();
    let first = spawn_app_on(&url, &name, &[]).await;
    let second = spawn_app_on(&url, &name, &[]).await;
    let rx = Receiver::start().await;
    let create = |app: &TestApp, i: usize| {
        let mut admin = app.admin.clone();
        let request = withdrawal_webhook(&format!("Concurrent {i}"), &rx.url("/c"));
        async move { admin.create_webhook(request).await.map(|_| ()) }
    };
    let writes = (0..20).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        create(app, i)
    });
    for result in futures_util::future::join_all(writes).await {
        result.unwrap();
    }
    let (valid, output) = verify(&url).await;
    assert!(valid, "{output}");
    assert!(output.contains("20 row(s)"), "{output}");
}

#[tokio::test]
async fn purging_keeps_the_chain_verifiable_and_delivery_retention_never_touches_it() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    three_rows(&app, &rx).await;
    three_rows(&app, &rx).await;
    let db = app.db().await;
    let store = Store::connect(&app.database.url, 2).unwrap();
    let far_future = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    store.purge_history(far_future, 100).await.unwrap();
    assert_eq!(
        rows(&db).await,
        6,
        "delivery retention leaves the trail alone"
    );

    let fourth: time::OffsetDateTime = db
        .query_one("SELECT at FROM audit_events WHERE id = 4", &[])
        .await
        .unwrap()
        .get(0);
    let purged = store.purge_audit_events(fourth).await.unwrap();
    assert!(purged >= 1, "rows before the cutoff went");
    assert!(rows(&db).await < 6);
    let (valid, output) = verify(&app.database.url).await;
    assert!(valid, "{output}");

    // The anchor pins the new first row: deleting it is still detected.
    db.batch_execute(
        "BEGIN; SET LOCAL webhooks.audit_purge = 'on'; \
         DELETE FROM audit_events WHERE id = (SELECT min(id) FROM audit_events); COMMIT;",
    )
    .await
    .unwrap();
    let (valid, output) = verify(&app.database.url).await;
    assert!(!valid, "{output}");
}

#[tokio::test]
async fn list_audit_events_filters_pages_and_admits_viewers_but_not_ingest() {
    let (url, name) = fresh_database_url();
    let app = spawn_with_tokens(&url, &name).await;
    let rx = Receiver::start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let hook = app
            .admin
            .clone()
            .create_webhook(with_token(
                withdrawal_webhook(&format!("Listed {i}"), &rx.url("/l")),
                Some(NAMED),
            ))
            .await
            .unwrap()
            .into_inner()
            .webhook
            .unwrap();
        ids.push(hook.id);
    }
    app.admin
        .clone()
        .set_webhook_enabled(with_token(
            pb::SetWebhookEnabledRequest {
                id: ids[1].clone(),
                enabled: false,
                ..Default::default()
            },
            Some(NAMED),
        ))
        .await
        .unwrap();
    let all = all_events(&app, pb::ListAuditEventsRequest::default()).await;
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "every row once, across pages of two"
    );
    let of_second = all_events(
        &app,
        pb::ListAuditEventsRequest {
            target_kind: "webhook".into(),
            target_id: ids[1].clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        of_second
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["webhook.created", "webhook.disabled"]
    );
    let disables = all_events(
        &app,
        pb::ListAuditEventsRequest {
            action: "webhook.disabled".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(disables.len(), 1);
    let none_yet = all_events(
        &app,
        pb::ListAuditEventsRequest {
            time_before: all[0].time,
            ..Default::default()
        },
    )
    .await;
    assert!(none_yet.is_empty());

    let page = app
        .admin
        .clone()
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest {
                page_size: 1,
                ..Default::default()
            },
            Some(VIEWER),
        ))
        .await
        .unwrap()
        .into_inner();
    let other_filter = app
        .admin
        .clone()
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest {
                actor: "someone".into(),
                page_token: page.next_page_token,
                ..Default::default()
            },
            Some(VIEWER),
        ))
        .await;
    assert_eq!(other_filter.unwrap_err().code(), Code::InvalidArgument);
    let denied = app
        .admin
        .clone()
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest::default(),
            Some(INGEST),
        ))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let id_without_kind = app
        .admin
        .clone()
        .list_audit_events(with_token(
            pb::ListAuditEventsRequest {
                target_id: ids[0].clone(),
                ..Default::default()
            },
            Some(VIEWER),
        ))
        .await
        .unwrap_err();
    assert_eq!(id_without_kind.code(), Code::InvalidArgument);
    assert!(id_without_kind.message().contains("target_kind"));
}
