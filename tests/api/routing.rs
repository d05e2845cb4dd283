//! EventIngest end to end: which webhooks an event reaches, once-per-request webhooks, ordering
//! per request, idempotency, batch atomicity and input validation. Every test runs the real
//! service on its own database and real HTTP receivers on 127.0.0.1.

use std::collections::{BTreeMap, BTreeSet};
use tonic::Code;
use tonic_types::StatusExt;
use webhooks::proto::v1 as pb;

use testkit::{
    Receiver, Reply, TestApp, assert_status, event_for, event_prefix, spawn_app, spawn_app_with,
    webhook_spec, withdrawal_event,
};

const APPROVED: pb::Decision = pb::Decision::Approved;
const REJECTED: pb::Decision = pb::Decision::Rejected;

/// Rows in the events table: "nothing stored" checks that the API cannot answer by itself.
async fn stored_events(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("events counted")
        .get(0)
}

// ------------------------------------------------------------------------------------------
// Routing matrix
// ------------------------------------------------------------------------------------------

/// For one function: webhooks selecting various approval nodes and the rejection, one of another
/// function selecting everything, a disabled one and a deleted one selecting everything. Each
/// decision must reach exactly the enabled webhooks of its function that select it.
async fn decisions_reach_exactly_the_selecting_webhooks(function: pb::Function) {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let other_function = if function == pb::Function::Withdrawal {
        pb::Function::PropTradingLiveStage
    } else {
        pb::Function::Withdrawal
    };
    let hooks: Vec<(&str, pb::Function, &[u32], bool)> = vec![
        ("/node-1", function, &[1], false),
        ("/node-2", function, &[2], false),
        ("/nodes-1-2", function, &[1, 2], false),
        ("/node-3", function, &[3], false),
        ("/rejection", function, &[], true),
        ("/node-1-and-rejection", function, &[1], true),
        ("/other-function", other_function, &[1, 2, 3, 4], true),
        ("/disabled", function, &[1, 2, 3, 4], true),
        ("/deleted", function, &[1, 2, 3, 4], true),
    ];
    let mut ids = BTreeMap::new();
    for (path, f, nodes, rejection) in &hooks {
        let created = app
            .create_webhook(&rx.url(path), *f, nodes, *rejection)
            .await;
        ids.insert(*path, created.webhook.unwrap().id);
    }
    app.set_enabled(&ids["/disabled"], false).await;
    app.admin
        .clone()
        .delete_webhook(pb::DeleteWebhookRequest {
            id: ids["/deleted"].clone(),
            ..Default::default()
        })
        .await
        .expect("deleted");

    // (request id, decision, node, paths that must receive it)
    let cases: Vec<(&str, pb::Decision, Option<u32>, Vec<&str>)> = vec![
        (
            "R-node-1",
            APPROVED,
            Some(1),
            vec!["/node-1", "/nodes-1-2", "/node-1-and-rejection"],
        ),
        ("R-node-2", APPROVED, Some(2), vec!["/node-2", "/nodes-1-2"]),
        ("R-node-3", APPROVED, Some(3), vec!["/node-3"]),
        (
            "R-rejected",
            REJECTED,
            None,
            vec!["/rejection", "/node-1-and-rejection"],
        ),
        ("R-node-4", APPROVED, Some(4), vec![]),
    ];
    let mut expected: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut all_delivery_ids = Vec::new();
    for (request_id, decision, node, paths) in &cases {
        let published = app
            .publish(event_for(
                function,
                &format!("key-{request_id}"),
                request_id,
                *decision,
                *node,
            ))
            .await;
        let verb = if *decision == APPROVED {
            "approved"
        } else {
            "rejected"
        };
        let event_type = format!("{}.{verb}", event_prefix(function));
        assert_eq!(published.event_type, event_type);
        assert_eq!(
            published.delivery_ids.len(),
            paths.len(),
            "{request_id} should make one delivery per matching webhook: {paths:?}"
        );
        for path in paths {
            expected
                .entry(*path)
                .or_default()
                .insert((event_type.clone(), request_id.to_string()));
        }
        all_delivery_ids.extend(published.delivery_ids);
    }
    for id in &all_delivery_ids {
        app.wait_for_delivery_status(id, pb::DeliveryStatus::Succeeded)
            .await;
    }

    // Every delivery succeeded, so everything that will ever be sent has been sent.
    let received = rx.received();
    assert_eq!(
        received.len(),
        all_delivery_ids.len(),
        "one POST per delivery"
    );
    for (path, ..) in &hooks {
        let got: BTreeSet<(String, String)> = rx
            .received_at(path)
            .iter()
            .map(|r| (r.event_type(), r.request_id()))
            .collect();
        assert_eq!(
            got,
            expected.get(path).cloned().unwrap_or_default(),
            "what {path} received"
        );
        let history = app.deliveries_of(&ids[path]).await;
        assert_eq!(
            history.len(),
            expected.get(path).map_or(0, BTreeSet::len),
            "history of {path}"
        );
    }
}

#[tokio::test]
async fn withdrawal_decisions_reach_only_the_enabled_withdrawal_webhooks_selecting_them() {
    decisions_reach_exactly_the_selecting_webhooks(pb::Function::Withdrawal).await;
}

#[tokio::test]
async fn participation_decisions_reach_only_the_enabled_participation_webhooks_selecting_them() {
    decisions_reach_exactly_the_selecting_webhooks(pb::Function::PropTradingParticipation).await;
}

#[tokio::test]
async fn live_stage_decisions_reach_only_the_enabled_live_stage_webhooks_selecting_them() {
    decisions_reach_exactly_the_selecting_webhooks(pb::Function::PropTradingLiveStage).await;
}

#[tokio::test]
async fn withdrawal_approved_at_node_1_reaches_nodes_1_and_2_but_not_node_3() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let w = pb::Function::Withdrawal;
    app.create_webhook(&rx.url("/node-1"), w, &[1], false).await;
    app.create_webhook(&rx.url("/nodes-1-and-2"), w, &[1, 2], false)
        .await;
    app.create_webhook(&rx.url("/node-3"), w, &[3], true).await;

    let published = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    assert_eq!(published.delivery_ids.len(), 2);
    for id in &published.delivery_ids {
        app.wait_for_delivery_status(id, pb::DeliveryStatus::Succeeded)
            .await;
    }
    assert_eq!(rx.received_at("/node-1").len(), 1);
    assert_eq!(rx.received_at("/nodes-1-and-2").len(), 1);
    assert!(rx.received_at("/node-3").is_empty());
}

#[tokio::test]
async fn an_event_published_while_its_webhook_is_disabled_is_not_sent_after_re_enabling() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app
        .create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], true)
        .await
        .webhook
        .unwrap();
    app.set_enabled(&hook.id, false).await;
    let while_disabled = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    assert!(
        while_disabled.delivery_ids.is_empty(),
        "a disabled webhook is not routed to"
    );

    app.set_enabled(&hook.id, true).await;
    let after = app
        .publish(withdrawal_event("k2", "W-2", APPROVED, Some(1)))
        .await;
    app.wait_for_delivery_status(&after.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let received = rx.received();
    assert_eq!(received.len(), 1, "only the event published after enabling");
    assert_eq!(received[0].request_id(), "W-2");
    assert_eq!(app.deliveries_of(&hook.id).await.len(), 1);
}

// ------------------------------------------------------------------------------------------
// deliver_once_per_request
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_once_per_request_webhook_gets_the_first_matching_event_and_skips_the_rest_of_that_request()
 {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let once = app
        .create_webhook_from(
            pb::Webhook {
                deliver_once_per_request: true,
                ..webhook_spec(&rx.url("/once"), pb::Function::Withdrawal, &[1, 2], true)
            },
            "",
        )
        .await
        .webhook
        .unwrap();
    assert!(once.deliver_once_per_request);
    let every = app
        .create_webhook(&rx.url("/every"), pb::Function::Withdrawal, &[1, 2], true)
        .await
        .webhook
        .unwrap();

    let first = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let second = app
        .publish(withdrawal_event("k2", "W-1", APPROVED, Some(2)))
        .await;
    let third = app
        .publish(withdrawal_event("k3", "W-1", REJECTED, None))
        .await;
    let other_request = app
        .publish(withdrawal_event("k4", "W-2", APPROVED, Some(1)))
        .await;
    for published in [&first, &second, &third, &other_request] {
        assert_eq!(
            published.delivery_ids.len(),
            2,
            "skipped deliveries are listed too"
        );
    }

    // Wait until each delivery is settled: everything that will be sent has been sent.
    let mut by_status: BTreeMap<String, Vec<pb::Delivery>> = BTreeMap::new();
    for published in [&first, &second, &third, &other_request] {
        for id in &published.delivery_ids {
            let delivery = app
                .wait_for_delivery(id, "a final status", |d| {
                    d.status != pb::DeliveryStatus::Pending as i32
                })
                .await;
            by_status
                .entry(format!("{:?}", delivery.status()))
                .or_default()
                .push(delivery);
        }
    }

    let once_history = app.deliveries_of(&once.id).await;
    let summary: Vec<(String, String, pb::DeliveryStatus)> = once_history
        .iter()
        .map(|d| (d.request_id.clone(), d.event_type.clone(), d.status()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "W-2".into(),
                "withdrawal.approved".into(),
                pb::DeliveryStatus::Succeeded
            ),
            (
                "W-1".into(),
                "withdrawal.rejected".into(),
                pb::DeliveryStatus::Skipped
            ),
            (
                "W-1".into(),
                "withdrawal.approved".into(),
                pb::DeliveryStatus::Skipped
            ),
            (
                "W-1".into(),
                "withdrawal.approved".into(),
                pb::DeliveryStatus::Succeeded
            ),
        ],
        "history of the once-per-request webhook, newest first"
    );
    for skipped in once_history
        .iter()
        .filter(|d| d.status() == pb::DeliveryStatus::Skipped)
    {
        assert_eq!(skipped.attempt_count, 0);
        assert!(
            skipped.status_reason.contains("once"),
            "the skip says why: {}",
            skipped.status_reason
        );
        let full = app.get_delivery(&skipped.id).await;
        assert!(full.attempts.is_empty(), "a skipped delivery is never sent");
    }

    let sent_once: Vec<(String, Option<u64>)> = rx
        .received_at("/once")
        .iter()
        .map(|r| (r.request_id(), r.approval_node()))
        .collect();
    assert_eq!(sent_once.len(), 2, "POSTs to /once: {sent_once:?}");
    assert!(sent_once.contains(&("W-1".into(), Some(1))));
    assert!(sent_once.contains(&("W-2".into(), Some(1))));
    assert_eq!(
        rx.received_at("/every").len(),
        4,
        "the ordinary webhook gets every event"
    );
    assert_eq!(app.deliveries_of(&every.id).await.len(), 4);
    assert_eq!(by_status.get("Skipped").map_or(0, Vec::len), 2);
}

#[tokio::test]
async fn a_once_per_request_webhook_skips_the_second_event_of_a_request_within_one_batch() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let once = app
        .create_webhook_from(
            pb::Webhook {
                deliver_once_per_request: true,
                ..webhook_spec(&rx.url("/once"), pb::Function::Withdrawal, &[1, 2], false)
            },
            "",
        )
        .await
        .webhook
        .unwrap();
    let batch = app
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest {
            events: vec![
                withdrawal_event("k1", "W-1", APPROVED, Some(1)),
                withdrawal_event("k2", "W-1", APPROVED, Some(2)),
                withdrawal_event("k3", "W-2", APPROVED, Some(2)),
            ],
        })
        .await
        .expect("batch stored")
        .into_inner();
    let statuses: Vec<pb::DeliveryStatus> = {
        let mut statuses = Vec::new();
        for result in &batch.results {
            let delivery = app
                .wait_for_delivery(&result.delivery_ids[0], "a final status", |d| {
                    d.status != pb::DeliveryStatus::Pending as i32
                })
                .await;
            statuses.push(delivery.status());
        }
        statuses
    };
    assert_eq!(
        statuses,
        vec![
            pb::DeliveryStatus::Succeeded,
            pb::DeliveryStatus::Skipped,
            pb::DeliveryStatus::Succeeded
        ]
    );
    let sent: Vec<(String, Option<u64>)> = rx
        .received()
        .iter()
        .map(|r| (r.request_id(), r.approval_node()))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.contains(&("W-1".into(), Some(1))));
    assert!(sent.contains(&("W-2".into(), Some(2))));
    assert_eq!(app.deliveries_of(&once.id).await.len(), 3);
}

// ------------------------------------------------------------------------------------------
// Ordering per request
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rejection_waits_for_the_retried_approval_of_the_same_request_while_other_requests_flow()
{
    // Long enough retries that "not held up" has seconds of margin on a busy machine.
    let app = spawn_app_with(&["--retry-schedule", "1500ms,1500ms,1500ms"]).await;
    let rx = Receiver::start().await;
    rx.script_when(
        |r| r.request_id() == "W-1" && r.event_type() == "withdrawal.approved",
        [
            Reply::status(500).with_body("try later"),
            Reply::status(500).with_body("try later"),
        ],
    );
    app.create_webhook(&rx.url("/hook"), pb::Function::Withdrawal, &[1], true)
        .await;

    let approval = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    let rejection = app
        .publish(withdrawal_event("k2", "W-1", REJECTED, None))
        .await;
    let other = app
        .publish(withdrawal_event("k3", "W-2", APPROVED, Some(1)))
        .await;

    let rejection_done = app
        .wait_for_delivery_status(&rejection.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let approval_done = app
        .wait_for_delivery_status(&approval.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    app.wait_for_delivery_status(&other.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(
        approval_done.attempt_count, 3,
        "failed twice, then succeeded"
    );
    assert_eq!(
        rejection_done.attempt_count, 1,
        "the rejection was never sent early"
    );

    let received = rx.received();
    let order: Vec<(String, String)> = received
        .iter()
        .map(|r| (r.request_id(), r.event_type()))
        .collect();
    let w1: Vec<&str> = order
        .iter()
        .filter(|(request, _)| request == "W-1")
        .map(|(_, event_type)| event_type.as_str())
        .collect();
    assert_eq!(
        w1,
        vec![
            "withdrawal.approved",
            "withdrawal.approved",
            "withdrawal.approved",
            "withdrawal.rejected"
        ],
        "W-1 events arrive in publish order, the rejection only after the approval succeeded"
    );
    let approval_success = received
        .iter()
        .rposition(|r| r.request_id() == "W-1" && r.event_type() == "withdrawal.approved")
        .unwrap();
    let other_at = received
        .iter()
        .position(|r| r.request_id() == "W-2")
        .unwrap();
    assert!(
        other_at < approval_success,
        "W-2 must not wait for W-1's retries; arrival order: {order:?}"
    );
    let rejection_at = received
        .iter()
        .position(|r| r.event_type() == "withdrawal.rejected")
        .unwrap();
    assert!(received[rejection_at].at >= received[approval_success].at);
}

// ------------------------------------------------------------------------------------------
// Idempotency
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn republishing_the_same_key_and_content_repeats_the_answer_and_sends_nothing_new() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app
        .create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], false)
        .await
        .webhook
        .unwrap();
    let event = withdrawal_event("order-77", "W-1", APPROVED, Some(1));
    let original = app.publish(event.clone()).await;
    assert!(!original.duplicate);
    assert_eq!(original.delivery_ids.len(), 1);
    app.wait_for_delivery_status(&original.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;

    let repeat = app.publish(event.clone()).await;
    assert!(repeat.duplicate, "the repeat is flagged");
    assert_eq!(repeat.event_id, original.event_id);
    assert_eq!(repeat.delivery_ids, original.delivery_ids);
    assert_eq!(repeat.event_type, original.event_type);

    // The same key inside a batch is recognised too.
    let batch = app
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest {
            events: vec![event],
        })
        .await
        .expect("batch accepted")
        .into_inner();
    assert!(batch.results[0].duplicate);
    assert_eq!(batch.results[0].event_id, original.event_id);

    // A later event going through proves the worker has had every chance to send a repeat.
    let control = app
        .publish(withdrawal_event("order-78", "W-2", APPROVED, Some(1)))
        .await;
    app.wait_for_delivery_status(&control.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let requests: Vec<String> = rx.received().iter().map(|r| r.request_id()).collect();
    assert_eq!(requests, vec!["W-1", "W-2"], "W-1 is POSTed once");
    assert_eq!(app.deliveries_of(&hook.id).await.len(), 2);
    assert_eq!(stored_events(&app).await, 2);
}

#[tokio::test]
async fn reusing_a_key_for_different_content_is_already_exists_and_stores_nothing() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    let hook = app
        .create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], true)
        .await
        .webhook
        .unwrap();
    let original = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;

    let mut other_amount = withdrawal_event("k1", "W-1", APPROVED, Some(1));
    if let Some(pb::publish_event_request::Request::Withdrawal(w)) = &mut other_amount.request {
        w.amount = "99.00".into();
    }
    assert_status(
        app.ingest.clone().publish_event(other_amount).await,
        Code::AlreadyExists,
        "idempotency_key",
    );
    assert_status(
        app.ingest
            .clone()
            .publish_event(withdrawal_event("k1", "W-1", REJECTED, None))
            .await,
        Code::AlreadyExists,
        "k1",
    );

    app.wait_for_delivery_status(&original.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(stored_events(&app).await, 1);
    assert_eq!(app.deliveries_of(&hook.id).await.len(), 1);
    assert_eq!(rx.received().len(), 1);
}

// ------------------------------------------------------------------------------------------
// PublishEvents batches
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_with_one_invalid_event_is_refused_naming_it_and_stores_nothing() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1, 2], true)
        .await;
    let good = vec![
        withdrawal_event("b1", "W-1", APPROVED, Some(1)),
        withdrawal_event("b2", "W-2", APPROVED, Some(2)),
        withdrawal_event("b3", "W-3", REJECTED, None),
    ];
    let mut bad_currency = good.clone();
    if let Some(pb::publish_event_request::Request::Withdrawal(w)) = &mut bad_currency[2].request {
        w.currency = "usd".into();
    }
    let mut missing_node = good.clone();
    missing_node[1].approval_node = None;

    for (events, field) in [
        (bad_currency, "events[2].withdrawal.currency"),
        (missing_node, "events[1].approval_node"),
    ] {
        let result = app
            .ingest
            .clone()
            .publish_events(pb::PublishEventsRequest { events })
            .await;
        let status = result.as_ref().expect_err("the batch is refused").clone();
        assert_status(result, Code::InvalidArgument, field);
        let violations = status
            .get_details_bad_request()
            .expect("a BadRequest detail")
            .field_violations;
        assert_eq!(violations[0].field, field);
    }
    assert_eq!(stored_events(&app).await, 0, "nothing of a refused batch");
    assert!(
        app.all_deliveries(pb::ListDeliveriesRequest::default())
            .await
            .is_empty()
    );

    // The good events were not stored: publishing them now is new, not a repeat.
    let accepted = app
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest {
            events: good.clone(),
        })
        .await
        .expect("the good batch is stored")
        .into_inner();
    assert_eq!(accepted.results.len(), 3);
    let types: Vec<&str> = accepted
        .results
        .iter()
        .map(|r| r.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        vec![
            "withdrawal.approved",
            "withdrawal.approved",
            "withdrawal.rejected"
        ],
        "answers in request order"
    );
    for result in &accepted.results {
        assert!(!result.duplicate);
        assert_eq!(result.delivery_ids.len(), 1);
        app.wait_for_delivery_status(&result.delivery_ids[0], pb::DeliveryStatus::Succeeded)
            .await;
    }
    let mut requests: Vec<String> = rx.received().iter().map(|r| r.request_id()).collect();
    requests.sort();
    assert_eq!(requests, vec!["W-1", "W-2", "W-3"]);
}

#[tokio::test]
async fn a_batch_reusing_a_key_for_other_content_stores_none_of_its_events() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], true)
        .await;
    let first = app
        .publish(withdrawal_event("k1", "W-1", APPROVED, Some(1)))
        .await;
    app.wait_for_delivery_status(&first.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;

    let result = app
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest {
            events: vec![
                withdrawal_event("k2", "W-2", APPROVED, Some(1)),
                withdrawal_event("k1", "W-1", REJECTED, None),
            ],
        })
        .await;
    assert_status(result, Code::AlreadyExists, "k1");
    assert_eq!(stored_events(&app).await, 1, "k2 was rolled back");

    let k2 = app
        .publish(withdrawal_event("k2", "W-2", APPROVED, Some(1)))
        .await;
    assert!(!k2.duplicate, "k2 is new: the refused batch stored nothing");
    app.wait_for_delivery_status(&k2.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    let requests: Vec<String> = rx.received().iter().map(|r| r.request_id()).collect();
    assert_eq!(requests, vec!["W-1", "W-2"]);
}

#[tokio::test]
async fn a_batch_of_1000_events_is_stored_but_1001_or_none_is_refused() {
    let app = spawn_app().await;
    let batch = |n: usize, prefix: &str| pb::PublishEventsRequest {
        events: (0..n)
            .map(|i| withdrawal_event(&format!("{prefix}-{i}"), &format!("W-{i}"), REJECTED, None))
            .collect(),
    };
    assert_status(
        app.ingest.clone().publish_events(batch(1001, "big")).await,
        Code::InvalidArgument,
        "events",
    );
    assert_status(
        app.ingest.clone().publish_events(batch(0, "none")).await,
        Code::InvalidArgument,
        "events",
    );
    assert_eq!(stored_events(&app).await, 0);

    let accepted = app
        .ingest
        .clone()
        .publish_events(batch(1000, "full"))
        .await
        .expect("1000 events fit in one batch")
        .into_inner();
    assert_eq!(accepted.results.len(), 1000);
    assert_eq!(stored_events(&app).await, 1000);
}

// ------------------------------------------------------------------------------------------
// PublishEvent input validation
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn publish_event_refuses_each_bad_input_naming_the_field() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], true)
        .await;
    let good = || withdrawal_event("key-1", "W-1", APPROVED, Some(1));
    let with_withdrawal = |edit: fn(&mut pb::WithdrawalRequest)| {
        let mut event = good();
        if let Some(pb::publish_event_request::Request::Withdrawal(w)) = &mut event.request {
            edit(w);
        }
        event
    };
    let cases: Vec<(pb::PublishEventRequest, &str)> = vec![
        (
            pb::PublishEventRequest {
                idempotency_key: String::new(),
                ..good()
            },
            "idempotency_key",
        ),
        (
            pb::PublishEventRequest {
                idempotency_key: "x".repeat(201),
                ..good()
            },
            "idempotency_key",
        ),
        (
            pb::PublishEventRequest {
                decision: pb::Decision::Unspecified as i32,
                approval_node: None,
                ..good()
            },
            "decision",
        ),
        (
            pb::PublishEventRequest {
                approval_node: None,
                ..good()
            },
            "approval_node",
        ),
        (
            pb::PublishEventRequest {
                approval_node: Some(0),
                ..good()
            },
            "approval_node",
        ),
        (
            withdrawal_event("key-1", "W-1", REJECTED, Some(1)),
            "approval_node",
        ),
        (
            pb::PublishEventRequest {
                request: None,
                ..good()
            },
            "request",
        ),
        (
            with_withdrawal(|w| w.amount = "1e3".into()),
            "withdrawal.amount",
        ),
        (
            with_withdrawal(|w| w.amount = "-5".into()),
            "withdrawal.amount",
        ),
        (
            with_withdrawal(|w| w.amount = "0.00".into()),
            "withdrawal.amount",
        ),
        (
            with_withdrawal(|w| w.amount = String::new()),
            "withdrawal.amount",
        ),
        (
            with_withdrawal(|w| w.currency = "usd".into()),
            "withdrawal.currency",
        ),
        (with_withdrawal(|w| w.id = String::new()), "withdrawal.id"),
        (
            with_withdrawal(|w| w.client_id = " ".into()),
            "withdrawal.client_id",
        ),
    ];
    for (event, field) in cases {
        let result = app.ingest.clone().publish_event(event.clone()).await;
        let Err(status) = &result else {
            panic!("{event:?} was accepted; expected INVALID_ARGUMENT on {field}");
        };
        let violation = status
            .get_details_bad_request()
            .and_then(|b| b.field_violations.into_iter().next())
            .map(|v| v.field)
            .unwrap_or_default();
        assert_eq!(violation, field, "BadRequest names the field");
        assert_status(result, Code::InvalidArgument, field);
    }
    let mut bad_fee = event_for(
        pb::Function::PropTradingParticipation,
        "key-2",
        "P-1",
        APPROVED,
        Some(1),
    );
    if let Some(pb::publish_event_request::Request::PropTradingParticipation(p)) =
        &mut bad_fee.request
    {
        p.fee = "12,50".into();
    }
    assert_status(
        app.ingest.clone().publish_event(bad_fee).await,
        Code::InvalidArgument,
        "prop_trading_participation.fee",
    );
    assert_eq!(stored_events(&app).await, 0, "nothing invalid is stored");

    // The same key with valid content is then accepted and delivered.
    let accepted = app.publish(good()).await;
    app.wait_for_delivery_status(&accepted.delivery_ids[0], pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(rx.received().len(), 1);
}

#[tokio::test]
async fn a_key_repeated_within_one_batch_is_stored_once_and_answered_as_a_repeat() {
    let app = spawn_app().await;
    let rx = Receiver::start().await;
    app.create_webhook(&rx.url("/h"), pb::Function::Withdrawal, &[1], false)
        .await;
    let first = withdrawal_event("in-batch-1", "W-1", APPROVED, Some(1));
    let second = withdrawal_event("in-batch-2", "W-2", APPROVED, Some(1));
    let answer = app
        .ingest
        .clone()
        .publish_events(pb::PublishEventsRequest {
            events: vec![first.clone(), second, first],
        })
        .await
        .expect("batch accepted")
        .into_inner();
    let [a, b, repeat] = answer.results.as_slice() else {
        panic!("three answers, in request order: {:?}", answer.results);
    };
    assert!(!a.duplicate && !b.duplicate);
    assert!(
        repeat.duplicate,
        "the key's second use in the batch is a repeat"
    );
    assert_eq!(repeat.event_id, a.event_id);
    assert_eq!(repeat.delivery_ids, a.delivery_ids);
    assert_eq!(a.delivery_ids.len(), 1);
    assert_ne!(a.delivery_ids, b.delivery_ids);
    assert_eq!(stored_events(&app).await, 2);
    for id in [&a.delivery_ids[0], &b.delivery_ids[0]] {
        app.wait_for_delivery_status(id, pb::DeliveryStatus::Succeeded)
            .await;
    }
    let mut requests: Vec<String> = rx.received().iter().map(|r| r.request_id()).collect();
    requests.sort();
    assert_eq!(requests, vec!["W-1", "W-2"], "each stored event sent once");
}
