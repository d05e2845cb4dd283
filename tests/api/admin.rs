//! WebhookAdmin: configuration RPCs, their bad-input rules and their errors.

use tonic::Code;
use webhooks::proto::v1 as pb;

use testkit::{assert_status, spawn_app};

/// `testkit::webhook_spec` under another name.
fn webhook(
    name: &str,
    url: &str,
    function: pb::Function,
    nodes: &[u32],
    rejection: bool,
) -> pb::Webhook {
    pb::Webhook {
        name: name.into(),
        ..testkit::webhook_spec(url, function, nodes, rejection)
    }
}

fn create(webhook: pb::Webhook, secret: &str) -> pb::CreateWebhookRequest {
    pb::CreateWebhookRequest {
        webhook: Some(webhook),
        secret: secret.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_returns_the_secret_once_and_get_never_does() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let created = admin
        .create_webhook(create(
            webhook(
                "Payouts",
                "https://payments.example.com/hook",
                pb::Function::Withdrawal,
                &[2, 1],
                true,
            ),
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    let hook = created.webhook.unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(hook.name, "Payouts");
    assert!(hook.enabled);
    assert_eq!(
        hook.events.as_ref().unwrap().approval_nodes,
        vec![1, 2],
        "nodes come back sorted"
    );
    let tail = &created.secret[created.secret.len() - 4..];
    assert!(hook.secret_hint.ends_with(tail));

    let fetched = admin
        .get_webhook(pb::GetWebhookRequest {
            id: hook.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, hook);
    let listed = admin
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.webhooks, vec![hook]);
    let secret_body = &created.secret["whsec_".len()..];
    assert!(
        !format!("{fetched:?}{listed:?}").contains(secret_body),
        "secret leaked"
    );
}

#[tokio::test]
async fn a_plain_secret_comes_back_in_whsec_form_and_short_ones_are_refused() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let hook = webhook(
        "H",
        "https://example.com/h",
        pb::Function::Withdrawal,
        &[1],
        false,
    );
    let created = admin
        .create_webhook(create(hook.clone(), "my-plain-secret-value"))
        .await
        .unwrap()
        .into_inner();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&created.secret["whsec_".len()..])
        .unwrap();
    assert_eq!(decoded, b"my-plain-secret-value");

    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([9u8; 32])
    );
    let created = admin
        .create_webhook(create(hook.clone(), &whsec))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.secret, whsec);

    assert_status(
        admin
            .create_webhook(create(hook.clone(), "too-short"))
            .await,
        Code::InvalidArgument,
        "secret",
    );
    let tiny = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([1u8; 8])
    );
    assert_status(
        admin.create_webhook(create(hook, &tiny)).await,
        Code::InvalidArgument,
        "secret",
    );
}

/// INVALID_ARGUMENT naming `secret` and the NUL rule, without echoing the secret (whose text
/// in these tests contains "value").
fn assert_nul_secret_refused(status: &tonic::Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("secret: "),
        "{}",
        status.message()
    );
    assert!(status.message().contains("NUL"), "{}", status.message());
    assert!(
        !status.message().contains("value"),
        "the secret is not echoed"
    );
}

#[tokio::test]
async fn a_secret_containing_nul_is_refused_at_create_naming_the_secret() {
    let app = spawn_app().await;
    let hook = webhook(
        "H",
        "https://example.com/h",
        pb::Function::Withdrawal,
        &[1],
        false,
    );
    for secret in ["my-plain-secret\0value", "\0my-plain-secret-value"] {
        let result = app
            .admin
            .clone()
            .create_webhook(create(hook.clone(), secret))
            .await;
        assert_nul_secret_refused(&result.expect_err("a NUL in the secret is refused"));
    }
}

#[tokio::test]
async fn a_secret_containing_nul_is_refused_at_rotation_naming_the_secret() {
    let app = spawn_app().await;
    let hook = webhook(
        "H",
        "https://example.com/h",
        pb::Function::Withdrawal,
        &[1],
        false,
    );
    let created = app.create_webhook_from(hook, "").await;
    let id = created.webhook.expect("the webhook").id;
    let before = app.get_webhook(&id).await.secret_hint;
    let status = app
        .admin
        .clone()
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id: id.clone(),
            secret: "my-plain-secret\0value".into(),
            grace_period: None,
            ..Default::default()
        })
        .await
        .expect_err("a NUL in the secret is refused");
    assert_nul_secret_refused(&status);
    assert_eq!(
        app.get_webhook(&id).await.secret_hint,
        before,
        "not rotated"
    );
}

#[tokio::test]
async fn create_refuses_each_bad_input_naming_the_field() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let good = webhook(
        "Good",
        "https://example.com/hook",
        pb::Function::Withdrawal,
        &[1],
        false,
    );
    let cases: Vec<(pb::Webhook, &str)> = vec![
        (
            pb::Webhook {
                name: String::new(),
                ..good.clone()
            },
            "webhook.name",
        ),
        (
            pb::Webhook {
                name: "x".repeat(201),
                ..good.clone()
            },
            "webhook.name",
        ),
        (
            pb::Webhook {
                destination_url: "/relative".into(),
                ..good.clone()
            },
            "webhook.destination_url",
        ),
        (
            pb::Webhook {
                destination_url: "ftp://example.com/x".into(),
                ..good.clone()
            },
            "webhook.destination_url",
        ),
        (
            pb::Webhook {
                destination_url: "http://10.0.0.1/x".into(),
                ..good.clone()
            },
            "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS",
        ),
        (
            pb::Webhook {
                function: pb::Function::Unspecified as i32,
                ..good.clone()
            },
            "webhook.function",
        ),
        (
            pb::Webhook {
                events: None,
                ..good.clone()
            },
            "webhook.events",
        ),
        (
            pb::Webhook {
                events: Some(pb::EventSelection {
                    approval_nodes: vec![],
                    rejection: false,
                }),
                ..good.clone()
            },
            "webhook.events",
        ),
        (
            pb::Webhook {
                events: Some(pb::EventSelection {
                    approval_nodes: vec![0],
                    rejection: false,
                }),
                ..good.clone()
            },
            "webhook.events.approval_nodes",
        ),
        (
            pb::Webhook {
                events: Some(pb::EventSelection {
                    approval_nodes: vec![1, 1],
                    rejection: false,
                }),
                ..good.clone()
            },
            "webhook.events.approval_nodes",
        ),
        (
            pb::Webhook {
                description: "d".repeat(1001),
                ..good.clone()
            },
            "webhook.description",
        ),
    ];
    // The private-address case needs the guard on: this app allows loopback, so check it on a
    // fresh app without the setting below; here it must pass.
    for (hook, field) in cases {
        let result = admin.create_webhook(create(hook.clone(), "")).await;
        if field == "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS" {
            assert!(
                result.is_ok(),
                "private destinations are allowed in this app"
            );
            continue;
        }
        assert_status(result, Code::InvalidArgument, field);
    }
    assert_status(
        admin
            .create_webhook(pb::CreateWebhookRequest {
                webhook: None,
                secret: String::new(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "webhook",
    );
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let app = testkit::spawn_app_with(&["--allow-private-destinations", "false"]).await;
    let mut admin = app.admin.clone();
    for url in [
        "http://127.0.0.1:8080/h",
        "http://169.254.169.254/latest",
        "http://localhost/h",
        "http://[::1]/h",
    ] {
        let hook = webhook("H", url, pb::Function::Withdrawal, &[1], false);
        assert_status(
            admin.create_webhook(create(hook, "")).await,
            Code::InvalidArgument,
            "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS",
        );
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ids_are_invalid() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_status(
        admin
            .get_webhook(pb::GetWebhookRequest {
                id: unknown.clone(),
            })
            .await,
        Code::NotFound,
        &unknown,
    );
    assert_status(
        admin
            .get_webhook(pb::GetWebhookRequest { id: "abc".into() })
            .await,
        Code::InvalidArgument,
        "id",
    );
    assert_status(
        admin
            .delete_webhook(pb::DeleteWebhookRequest {
                id: unknown.clone(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        &unknown,
    );
    assert_status(
        admin
            .set_webhook_enabled(pb::SetWebhookEnabledRequest {
                id: unknown.clone(),
                enabled: false,
                ..Default::default()
            })
            .await,
        Code::NotFound,
        &unknown,
    );
    assert_status(
        admin
            .get_delivery(pb::GetDeliveryRequest {
                id: unknown.clone(),
            })
            .await,
        Code::NotFound,
        &unknown,
    );
    assert_status(
        admin
            .get_delivery(pb::GetDeliveryRequest { id: "1".into() })
            .await,
        Code::InvalidArgument,
        "id",
    );
}

#[tokio::test]
async fn list_pages_through_everything_and_filters() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let mut ids = Vec::new();
    for i in 0..5 {
        let function = if i % 2 == 0 {
            pb::Function::Withdrawal
        } else {
            pb::Function::PropTradingLiveStage
        };
        let hook = webhook(
            &format!("Hook {i}"),
            "https://example.com/h",
            function,
            &[1],
            false,
        );
        ids.push(
            admin
                .create_webhook(create(hook, ""))
                .await
                .unwrap()
                .into_inner()
                .webhook
                .unwrap()
                .id,
        );
    }
    admin
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id: ids[0].clone(),
            enabled: false,
            ..Default::default()
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_webhooks(pb::ListWebhooksRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.webhooks.len() <= 2);
        seen.extend(page.webhooks.into_iter().map(|w| w.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "every webhook once, in creation order");

    let withdrawals = admin
        .list_webhooks(pb::ListWebhooksRequest {
            function: pb::Function::Withdrawal as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(withdrawals.webhooks.len(), 3);
    let enabled_withdrawals = admin
        .list_webhooks(pb::ListWebhooksRequest {
            function: pb::Function::Withdrawal as i32,
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled_withdrawals.webhooks.len(), 2);

    assert_status(
        admin
            .list_webhooks(pb::ListWebhooksRequest {
                page_size: 5000,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "page_size",
    );
    assert_status(
        admin
            .list_webhooks(pb::ListWebhooksRequest {
                page_token: "nonsense".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "page_token",
    );
}

#[tokio::test]
async fn update_changes_only_the_masked_fields() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let original = admin
        .create_webhook(create(
            webhook(
                "Old",
                "https://example.com/old",
                pb::Function::Withdrawal,
                &[1],
                true,
            ),
            "",
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap();
    let edit = pb::Webhook {
        id: original.id.clone(),
        name: "New name".into(),
        destination_url: "https://example.com/ignored".into(),
        events: Some(pb::EventSelection {
            approval_nodes: vec![3],
            rejection: false,
        }),
        ..Default::default()
    };
    let updated = admin
        .update_webhook(pb::UpdateWebhookRequest {
            webhook: Some(edit.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into(), "events.approval_nodes".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "New name");
    assert_eq!(
        updated.destination_url, original.destination_url,
        "not in the mask"
    );
    assert_eq!(
        updated.events,
        Some(pb::EventSelection {
            approval_nodes: vec![3],
            rejection: true
        })
    );
    assert_eq!(updated.secret_hint, original.secret_hint);

    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        })
    };
    for (paths, needle) in [
        (vec![], "update_mask"),
        (vec!["enabled"], "SetWebhookEnabled"),
        (vec!["created_at"], "output only"),
        (vec!["colour"], "unknown field `colour`"),
    ] {
        assert_status(
            admin
                .update_webhook(pb::UpdateWebhookRequest {
                    webhook: Some(edit.clone()),
                    update_mask: mask(&paths),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
            needle,
        );
    }
    // Clearing both the nodes and the rejection would leave nothing selected.
    let nothing = pb::Webhook {
        events: Some(pb::EventSelection::default()),
        ..edit.clone()
    };
    assert_status(
        admin
            .update_webhook(pb::UpdateWebhookRequest {
                webhook: Some(nothing),
                update_mask: mask(&["events"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "webhook.events",
    );
    let bad_url = pb::Webhook {
        destination_url: "nope".into(),
        ..edit.clone()
    };
    assert_status(
        admin
            .update_webhook(pb::UpdateWebhookRequest {
                webhook: Some(bad_url),
                update_mask: mask(&["destination_url"]),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "webhook.destination_url",
    );
    let unknown = pb::Webhook {
        id: uuid::Uuid::new_v4().to_string(),
        ..edit
    };
    assert_status(
        admin
            .update_webhook(pb::UpdateWebhookRequest {
                webhook: Some(unknown),
                update_mask: mask(&["name"]),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "not found",
    );
    let unchanged = admin
        .get_webhook(pb::GetWebhookRequest { id: original.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.name, "New name", "failed edits change nothing");
}

#[tokio::test]
async fn disable_records_a_reason_and_enable_clears_it() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let id = admin
        .create_webhook(create(
            webhook(
                "H",
                "https://example.com/h",
                pb::Function::Withdrawal,
                &[1],
                false,
            ),
            "",
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap()
        .id;
    let disabled = admin
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id: id.clone(),
            enabled: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason, "disabled by an admin");
    assert!(disabled.disabled_at.is_some());
    let enabled = admin
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id: id.clone(),
            enabled: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(enabled.enabled);
    assert!(enabled.disabled_reason.is_empty());
    assert!(enabled.disabled_at.is_none());
}

#[tokio::test]
async fn delete_hides_the_webhook_everywhere() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let id = admin
        .create_webhook(create(
            webhook(
                "H",
                "https://example.com/h",
                pb::Function::Withdrawal,
                &[1],
                false,
            ),
            "",
        ))
        .await
        .unwrap()
        .into_inner()
        .webhook
        .unwrap()
        .id;
    admin
        .delete_webhook(pb::DeleteWebhookRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_status(
        admin
            .get_webhook(pb::GetWebhookRequest { id: id.clone() })
            .await,
        Code::NotFound,
        &id,
    );
    assert!(
        admin
            .list_webhooks(pb::ListWebhooksRequest::default())
            .await
            .unwrap()
            .into_inner()
            .webhooks
            .is_empty()
    );
    assert_status(
        admin
            .delete_webhook(pb::DeleteWebhookRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        &id,
    );
}

#[tokio::test]
async fn rotate_returns_a_new_secret_once() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    let created = admin
        .create_webhook(create(
            webhook(
                "H",
                "https://example.com/h",
                pb::Function::Withdrawal,
                &[1],
                false,
            ),
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    let id = created.webhook.unwrap().id;
    let rotated = admin
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id: id.clone(),
            secret: String::new(),
            grace_period: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.secret.starts_with("whsec_"));
    assert_ne!(rotated.secret, created.secret);
    assert!(
        rotated
            .webhook
            .unwrap()
            .secret_hint
            .ends_with(&rotated.secret[rotated.secret.len() - 4..])
    );
    assert_status(
        admin
            .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
                id,
                secret: String::new(),
                grace_period: Some(prost_types::Duration {
                    seconds: 30 * 86400,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "grace_period",
    );
}

#[tokio::test]
async fn a_lost_database_is_unavailable_without_leaking_sql() {
    let app = spawn_app().await;
    let mut admin = app.admin.clone();
    admin
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .unwrap();
    // Cut the service off from its database, as an outage would.
    let (admin_db, connection) = tokio_postgres::connect(
        &format!("{}/postgres", testkit::server_url()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let name = &app.database.name;
    admin_db
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin_db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[name],
        )
        .await
        .unwrap();
    let result = admin
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await;
    admin_db
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    let status = result.expect_err("the database is gone");
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Internal),
        "{status:?}"
    );
    assert!(
        !status.message().to_lowercase().contains("select"),
        "{}",
        status.message()
    );
    // And it recovers by itself.
    let mut recovered = false;
    for _ in 0..50 {
        if admin
            .list_webhooks(pb::ListWebhooksRequest::default())
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the service reconnects once the database is back"
    );
}
