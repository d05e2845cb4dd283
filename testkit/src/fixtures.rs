//! Events and webhooks as the back office sends them, with realistic field values, so each test
//! names only what it is about.

use tonic::transport::Channel;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

/// A withdrawal decision for request `request_id`.
pub fn withdrawal_event(
    key: &str,
    request_id: &str,
    decision: pb::Decision,
    node: Option<u32>,
) -> pb::PublishEventRequest {
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: decision as i32,
        approval_node: node,
        occurred_at: None,
        request: Some(pb::publish_event_request::Request::Withdrawal(
            pb::WithdrawalRequest {
                id: request_id.into(),
                client_id: "C-100".into(),
                client_name: "Ada Lovelace".into(),
                client_email: "ada@example.com".into(),
                trading_account: "MT5-123456".into(),
                amount: "1250.00".into(),
                currency: "USD".into(),
                payment_method: "bank_transfer".into(),
                beneficiary: Some(pb::Beneficiary {
                    account_holder: "Ada Lovelace".into(),
                    bank_name: "Example Bank".into(),
                    iban: "GB33BUKB20201555555555".into(),
                    swift_code: "BUKBGB22".into(),
                    ..Default::default()
                }),
                submitted_at: None,
                status: "approved".into(),
                remarks: String::new(),
            },
        )),
    }
}

/// A withdrawal approved at node 1, for request `request_id`.
pub fn withdrawal_approved(key: &str, request_id: &str) -> pb::PublishEventRequest {
    withdrawal_event(key, request_id, pb::Decision::Approved, Some(1))
}

/// A decision on a request of `function` (a withdrawal, participation or live stage).
pub fn event_for(
    function: pb::Function,
    key: &str,
    request_id: &str,
    decision: pb::Decision,
    node: Option<u32>,
) -> pb::PublishEventRequest {
    use pb::publish_event_request::Request;
    let request = match function {
        pb::Function::Withdrawal | pb::Function::Unspecified => {
            return withdrawal_event(key, request_id, decision, node);
        }
        pb::Function::PropTradingParticipation => {
            Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
                id: request_id.into(),
                client_id: "C-200".into(),
                client_name: "Grace Hopper".into(),
                client_email: "grace@example.com".into(),
                program: "Pro Trader".into(),
                challenge: "Phase 1".into(),
                account_size: "100000".into(),
                fee: "499.00".into(),
                currency: "USD".into(),
                evaluation_account: "EVAL-1".into(),
                ..Default::default()
            })
        }
        pb::Function::PropTradingLiveStage => {
            Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
                id: request_id.into(),
                client_id: "C-300".into(),
                client_name: "Alan Turing".into(),
                client_email: "alan@example.com".into(),
                program: "Pro Trader".into(),
                challenge: "Phase 2".into(),
                account_size: "200000".into(),
                currency: "EUR".into(),
                evaluation_account: "EVAL-2".into(),
                live_account: "LIVE-2".into(),
                ..Default::default()
            })
        }
    };
    pb::PublishEventRequest {
        idempotency_key: key.into(),
        decision: decision as i32,
        approval_node: node,
        occurred_at: None,
        request: Some(request),
    }
}

/// The event-type prefix of a function, as in `withdrawal.approved`.
pub fn event_prefix(function: pb::Function) -> &'static str {
    match function {
        pb::Function::Withdrawal | pb::Function::Unspecified => "withdrawal",
        pb::Function::PropTradingParticipation => "prop_trading.participation",
        pb::Function::PropTradingLiveStage => "prop_trading.live_stage",
    }
}

/// A webhook to create, enabled, named "Engine test hook".
pub fn webhook_spec(
    url: &str,
    function: pb::Function,
    nodes: &[u32],
    rejection: bool,
) -> pb::Webhook {
    pb::Webhook {
        name: "Engine test hook".into(),
        destination_url: url.into(),
        function: function as i32,
        events: Some(pb::EventSelection {
            approval_nodes: nodes.to_vec(),
            rejection,
        }),
        ..Default::default()
    }
}

/// A withdrawal webhook fired by approvals at node 1, sending to `destination_url`.
pub fn withdrawal_webhook(name: &str, destination_url: &str) -> pb::CreateWebhookRequest {
    let mut webhook = webhook_spec(destination_url, pb::Function::Withdrawal, &[1], false);
    webhook.name = name.into();
    pb::CreateWebhookRequest {
        webhook: Some(webhook),
        secret: String::new(),
        ..Default::default()
    }
}

/// Every delivery of a webhook as `admin` reads it, all pages.
pub async fn all_deliveries(
    admin: &mut WebhookAdminClient<Channel>,
    webhook_id: &str,
) -> Vec<pb::Delivery> {
    let mut deliveries = Vec::new();
    let mut page_token = String::new();
    for _ in 0..1000 {
        let page = admin
            .list_deliveries(pb::ListDeliveriesRequest {
                webhook_id: webhook_id.to_owned(),
                page_size: 200,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .expect("ListDeliveries answers")
            .into_inner();
        deliveries.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            return deliveries;
        }
        page_token = page.next_page_token;
    }
    panic!("ListDeliveries never returned a last page");
}
