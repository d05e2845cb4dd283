//! End to end: random, often hostile CreateWebhook, UpdateWebhook, PublishEvent(s) and
//! ListDeliveries requests sent to the real service over a real socket. Every answer must be OK or
//! a refusal of the caller's input (INVALID_ARGUMENT naming the same field the domain parsers
//! name, ALREADY_EXISTS for a reused idempotency key, NOT_FOUND for an unknown webhook) — never
//! INTERNAL, UNKNOWN or a dropped connection. And page tokens cannot be replayed against other
//! filters.
//!
//! The service runs without delivery workers: generated destinations are never contacted.

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use webhooks::api::convert;
use webhooks::domain::{parse_id, parse_update_mask};
use webhooks::proto::v1 as pb;

use crate::events::publish_request;
use crate::strategies::{boundary_text, enum_value, hostile_text_bounded, nasty_text, rarely};
use crate::webhooks::{WRITABLE, mask_paths, secret_text, selection, validate_create};
use testkit::TestApp;

/// Flags of the service under test: no workers, so no destination is ever contacted.
const FLAGS: &[&str] = &["--disable-workers", "true"];

/// One request to the running service.
#[derive(Debug, Clone)]
enum Call {
    Create(pb::CreateWebhookRequest),
    Update(pb::UpdateWebhookRequest),
    Publish(pb::PublishEventRequest),
    PublishBatch(pb::PublishEventsRequest),
    List(pb::ListDeliveriesRequest),
}

/// Destinations on loopback or names that cannot resolve, with hostile parts around them.
fn local_url() -> BoxedStrategy<String> {
    let scheme = prop::sample::select(vec!["http", "https", "ftp", "HTTP", ""]);
    let userinfo = prop::sample::select(vec!["", "", "", "user:pass@"]);
    let host = prop_oneof![
        3 => prop::sample::select(vec![
            "127.0.0.1",
            "localhost",
            "[::1]",
            "127.1",
            "0x7f000001",
            "hooks.invalid",
            "",
        ])
        .prop_map(str::to_owned),
        1 => nasty_text(8).prop_map(|name| format!("{name}.invalid")),
    ];
    let port = prop_oneof![
        2 => Just(":9".to_owned()),
        1 => Just(String::new()),
        1 => (0u32..70_000).prop_map(|p| format!(":{p}")),
    ];
    let path = prop_oneof![
        2 => "/[a-z/?=&]{0,20}",
        1 => nasty_text(16).prop_map(|p| format!("/{p}")),
        1 => boundary_text().prop_map(|p| format!("/{p}")),
    ];
    (scheme, userinfo, host, port, path)
        .prop_map(|(s, u, h, p, path)| format!("{s}://{u}{h}{p}{path}"))
        .boxed()
}

/// A valid selection most of the time.
fn mostly_valid_selection() -> impl Strategy<Value = Option<pb::EventSelection>> {
    let valid = (
        prop::collection::btree_set(1u32..=1000, 0..4),
        any::<bool>(),
    )
        .prop_map(|(nodes, rejection)| {
            Some(pb::EventSelection {
                rejection: rejection || nodes.is_empty(),
                approval_nodes: nodes.into_iter().collect(),
            })
        });
    prop_oneof![6 => valid, 1 => selection()]
}

/// A webhook that is mostly valid, with the odd hostile or poisoned field.
fn local_webhook() -> impl Strategy<Value = pb::Webhook> {
    let destination = prop_oneof![
        4 => rarely("/[a-z]{0,10}".boxed(), nasty_text(12).boxed())
            .prop_map(|path| format!("http://127.0.0.1:9{path}")),
        1 => local_url(),
    ];
    (
        rarely("[A-Za-z][A-Za-z0-9 ]{0,30}".boxed(), hostile_text_bounded()),
        destination,
        prop_oneof![6 => 1..=3, 1 => enum_value(3)],
        mostly_valid_selection(),
        rarely("[A-Za-z0-9 .]{0,40}".boxed(), hostile_text_bounded()),
        any::<bool>(),
    )
        .prop_map(
            |(name, destination_url, function, events, description, once)| pb::Webhook {
                name,
                destination_url,
                function,
                events,
                description,
                deliver_once_per_request: once,
                ..Default::default()
            },
        )
}

fn call(existing: String) -> impl Strategy<Value = Call> {
    let create = (
        prop::option::weighted(0.95, local_webhook()),
        prop_oneof![1 => Just(String::new()), 1 => secret_text()],
    )
        .prop_map(|(webhook, secret)| {
            Call::Create(pb::CreateWebhookRequest {
                webhook,
                secret,
                ..Default::default()
            })
        });
    let id = prop_oneof![
        4 => Just(existing),
        1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => hostile_text_bounded(),
    ];
    let update = (
        prop::option::weighted(0.95, (local_webhook(), id)),
        prop::option::weighted(0.95, mask_paths()),
    )
        .prop_map(|(webhook, paths)| {
            Call::Update(pb::UpdateWebhookRequest {
                webhook: webhook.map(|(webhook, id)| pb::Webhook { id, ..webhook }),
                update_mask: paths.map(|paths| prost_types::FieldMask { paths }),
                ..Default::default()
            })
        });
    let publish = publish_request(true).prop_map(Call::Publish);
    let batch = prop::collection::vec(publish_request(true), 0..4)
        .prop_map(|events| Call::PublishBatch(pb::PublishEventsRequest { events }));
    let list = (
        prop_oneof![Just(String::new()), hostile_text_bounded()],
        prop::collection::vec(enum_value(5), 0..3),
        prop_oneof![Just(String::new()), hostile_text_bounded()],
        any::<i32>(),
        prop_oneof![Just(String::new()), hostile_text_bounded()],
    )
        .prop_map(
            |(webhook_id, statuses, event_type, page_size, page_token)| {
                Call::List(pb::ListDeliveriesRequest {
                    webhook_id,
                    statuses,
                    event_type,
                    page_size,
                    page_token,
                    ..Default::default()
                })
            },
        );
    prop_oneof![
        3 => create,
        2 => update,
        3 => publish,
        1 => batch,
        1 => list,
    ]
}

/// The field a refusal names, from its `BadRequest` detail.
fn refused_field(status: &Status) -> Option<String> {
    status
        .get_details_bad_request()
        .and_then(|details| details.field_violations.into_iter().next())
        .map(|violation| violation.field)
}

/// Fails unless `status` is a clean refusal (never INTERNAL, UNKNOWN, UNAVAILABLE, ...).
fn expect_refusal(status: &Status, allowed: &[Code]) -> Result<(), TestCaseError> {
    if allowed.contains(&status.code()) {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "answered {:?}: {} (allowed: {allowed:?})",
            status.code(),
            status.message()
        )))
    }
}

/// INVALID_ARGUMENT naming exactly `field`.
fn expect_invalid(status: &Status, field: &str) -> Result<(), TestCaseError> {
    expect_refusal(status, &[Code::InvalidArgument])?;
    let named = refused_field(status);
    prop_assert_eq!(named.as_deref(), Some(field), "{}", status.message());
    Ok(())
}

async fn check(app: &TestApp, call: Call) -> Result<(), TestCaseError> {
    match call {
        Call::Create(request) => {
            let expected = validate_create(&request, true);
            let answer = app.admin.clone().create_webhook(request.clone()).await;
            match (answer, expected) {
                (Ok(response), Ok(())) => {
                    let response = response.into_inner();
                    prop_assert!(response.secret.starts_with("whsec_"));
                    let webhook = response.webhook.unwrap_or_default();
                    let sent = request.webhook.unwrap_or_default();
                    prop_assert_eq!(webhook.name.as_str(), sent.name.trim());
                    prop_assert!(parse_id("id", &webhook.id).is_ok());
                }
                (Ok(_), Err(error)) => {
                    prop_assert!(false, "created although {error}");
                }
                (Err(status), Ok(())) => {
                    prop_assert!(
                        false,
                        "valid webhook refused: {:?} {}",
                        status.code(),
                        status.message()
                    );
                }
                (Err(status), Err(error)) => expect_invalid(&status, &error.field)?,
            }
        }
        Call::Update(request) => {
            let answer = app.admin.clone().update_webhook(request.clone()).await;
            let Err(status) = answer else { return Ok(()) };
            let Some(webhook) = &request.webhook else {
                return expect_invalid(&status, "webhook");
            };
            if let Err(error) = parse_id("webhook.id", &webhook.id) {
                return expect_invalid(&status, &error.field);
            }
            let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
            if let Err(error) = parse_update_mask(&paths) {
                return expect_invalid(&status, &error.field);
            }
            expect_refusal(&status, &[Code::InvalidArgument, Code::NotFound])?;
            if status.code() == Code::InvalidArgument {
                let field = refused_field(&status).unwrap_or_default();
                let known = field == "webhook.events.approval_nodes"
                    || WRITABLE
                        .iter()
                        .any(|path| field == format!("webhook.{path}"));
                prop_assert!(known, "refused naming {field:?}: {}", status.message());
            }
        }
        Call::Publish(request) => {
            let expected = convert::published_event(&request, "");
            let answer = app.ingest.clone().publish_event(request).await;
            match (answer, expected) {
                (Ok(response), Ok(event)) => {
                    prop_assert_eq!(response.into_inner().event_type, event.event_type);
                }
                (Ok(_), Err(error)) => prop_assert!(false, "published although {error}"),
                (Err(status), Ok(_)) => expect_refusal(&status, &[Code::AlreadyExists])?,
                (Err(status), Err(error)) => expect_invalid(&status, &error.field)?,
            }
        }
        Call::PublishBatch(request) => {
            let expected = if request.events.is_empty() {
                Err("events".to_owned())
            } else {
                request
                    .events
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, event)| {
                        convert::published_event(event, &format!("events[{i}]."))
                            .map(drop)
                            .map_err(|e| e.field)
                    })
            };
            let answer = app.ingest.clone().publish_events(request.clone()).await;
            match (answer, expected) {
                (Ok(response), Ok(())) => {
                    prop_assert_eq!(response.into_inner().results.len(), request.events.len());
                }
                (Ok(_), Err(field)) => prop_assert!(false, "published although {field} is bad"),
                (Err(status), Ok(())) => expect_refusal(&status, &[Code::AlreadyExists])?,
                (Err(status), Err(field)) => expect_invalid(&status, &field)?,
            }
        }
        Call::List(request) => {
            if let Err(status) = app.admin.clone().list_deliveries(request).await {
                expect_refusal(&status, &[Code::InvalidArgument])?;
                let field = refused_field(&status).unwrap_or_default();
                prop_assert!(
                    [
                        "webhook_id",
                        "statuses",
                        "event_type",
                        "request_id",
                        "page_size",
                        "page_token",
                    ]
                    .contains(&field.as_str()),
                    "refused naming {field:?}: {}",
                    status.message()
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_service_answers_hostile_requests_with_ok_or_a_named_refusal() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(testkit::spawn_app_with(FLAGS));
    let existing = runtime
        .block_on(app.create_webhook(
            "http://127.0.0.1:9/hook",
            pb::Function::Withdrawal,
            &[1],
            true,
        ))
        .webhook
        .expect("a webhook")
        .id;
    let mut runner = TestRunner::new(crate::strategies::config(128));
    let result = runner.run(&call(existing), |call| runtime.block_on(check(&app, call)));
    // The service must still be up and answering after all that.
    let still_up = runtime.block_on(
        app.admin
            .clone()
            .list_webhooks(pb::ListWebhooksRequest::default()),
    );
    runtime.block_on(app.stop());
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert!(
        still_up.is_ok(),
        "the service stopped answering: {still_up:?}"
    );
}

/// A withdrawal decision for request `id`, approved at level 1.
fn decision(key: &str, id: &str) -> pb::PublishEventRequest {
    testkit::withdrawal_event(key, id, pb::Decision::Approved, Some(1))
}

#[tokio::test]
async fn page_tokens_cannot_be_replayed_against_other_filters() {
    let app = testkit::spawn_app_with(FLAGS).await;
    let mut webhooks = Vec::new();
    for _ in 0..2 {
        let created = app
            .create_webhook(
                "http://127.0.0.1:9/hook",
                pb::Function::Withdrawal,
                &[1],
                true,
            )
            .await;
        webhooks.push(created.webhook.expect("a webhook").id);
    }
    for i in 0..3 {
        app.ingest
            .clone()
            .publish_event(decision(&format!("k{i}"), &format!("W-{i}")))
            .await
            .expect("published");
    }
    let list = |webhook_id: &str, statuses: Vec<i32>, page_token: &str| pb::ListDeliveriesRequest {
        webhook_id: webhook_id.to_owned(),
        statuses,
        page_size: 1,
        page_token: page_token.to_owned(),
        ..Default::default()
    };
    let pending = vec![pb::DeliveryStatus::Pending as i32];
    let first = app
        .admin
        .clone()
        .list_deliveries(list(&webhooks[0], pending.clone(), ""))
        .await
        .expect("first page")
        .into_inner();
    let token = first.next_page_token;
    assert!(
        !token.is_empty(),
        "three deliveries make more than one page"
    );

    // The same filters (statuses in any order and repeated) follow on.
    let doubled = vec![pending[0], pending[0]];
    let second = app
        .admin
        .clone()
        .list_deliveries(list(&webhooks[0], doubled, &token))
        .await
        .expect("the token works with its own filters")
        .into_inner();
    assert_eq!(second.deliveries.len(), 1);
    assert_ne!(second.deliveries[0].id, first.deliveries[0].id);

    // Any other filter is refused, naming page_token.
    for (webhook, statuses) in [
        (webhooks[1].as_str(), pending.clone()),
        (
            webhooks[0].as_str(),
            vec![pb::DeliveryStatus::Failed as i32],
        ),
        (webhooks[0].as_str(), vec![]),
        ("", pending.clone()),
    ] {
        let status = app
            .admin
            .clone()
            .list_deliveries(list(webhook, statuses.clone(), &token))
            .await
            .expect_err("a token for other filters is refused");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{webhook} {statuses:?}"
        );
        assert_eq!(refused_field(&status).as_deref(), Some("page_token"));
        assert!(
            status
                .message()
                .contains("was issued for different filters"),
            "{}",
            status.message()
        );
    }
    let mut with_event_type = list(&webhooks[0], pending.clone(), &token);
    with_event_type.event_type = "withdrawal.approved".into();
    let status = app
        .admin
        .clone()
        .list_deliveries(with_event_type)
        .await
        .expect_err("adding a filter changes the filters");
    assert_eq!(refused_field(&status).as_deref(), Some("page_token"));

    // ListWebhooks tokens are bound to their filters too, and do not work on ListDeliveries.
    let webhooks_page = app
        .admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            page_size: 1,
            function: pb::Function::Withdrawal as i32,
            ..Default::default()
        })
        .await
        .expect("webhooks listed")
        .into_inner();
    let webhooks_token = webhooks_page.next_page_token;
    assert!(!webhooks_token.is_empty());
    let status = app
        .admin
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            page_size: 1,
            function: pb::Function::Withdrawal as i32,
            enabled: Some(true),
            page_token: webhooks_token.clone(),
        })
        .await
        .expect_err("a ListWebhooks token with another filter");
    assert_eq!(refused_field(&status).as_deref(), Some("page_token"));
    let status = app
        .admin
        .clone()
        .list_deliveries(list("", vec![], &webhooks_token))
        .await
        .expect_err("a ListWebhooks token on ListDeliveries");
    assert_eq!(refused_field(&status).as_deref(), Some("page_token"));
    app.stop().await;
}

/// Postgres refuses NUL in text. A NUL in any stored text field or filter must be refused as the
/// caller's mistake, naming the field, not surface as a database error.
#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let app = testkit::spawn_app_with(FLAGS).await;
    let status = app
        .ingest
        .clone()
        .publish_event(decision("key\0", "W-1"))
        .await
        .expect_err("a NUL in the idempotency key");
    expect_invalid(&status, "idempotency_key").unwrap_or_else(|e| panic!("{e}"));
    let status = app
        .ingest
        .clone()
        .publish_event(decision("key", "W\0-1"))
        .await
        .expect_err("a NUL in the request id");
    expect_invalid(&status, "withdrawal.id").unwrap_or_else(|e| panic!("{e}"));
    let status = app
        .admin
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(pb::Webhook {
                name: "Payouts".into(),
                destination_url: "http://127.0.0.1:9/hook".into(),
                function: pb::Function::Withdrawal as i32,
                events: Some(pb::EventSelection {
                    approval_nodes: vec![1],
                    rejection: false,
                }),
                description: "line\0".into(),
                ..Default::default()
            }),
            secret: String::new(),
            ..Default::default()
        })
        .await
        .expect_err("a NUL in the description");
    expect_invalid(&status, "webhook.description").unwrap_or_else(|e| panic!("{e}"));
    let status = app
        .admin
        .clone()
        .list_deliveries(pb::ListDeliveriesRequest {
            request_id: "W\0".into(),
            ..Default::default()
        })
        .await
        .expect_err("a NUL in a filter");
    expect_invalid(&status, "request_id").unwrap_or_else(|e| panic!("{e}"));
    app.stop().await;
}
