//! A published decision, checked and turned into the exact JSON body every delivery sends.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::event_input::{
    DecisionKind, EventInput, LiveStageInput, ParticipationInput, RequestInput, WithdrawalInput,
};
use super::timestamps::UnixTime;
use super::{
    EventId, Function, ValidationError, WebhookId, check_max_chars, check_required, timestamps,
};

/// The decision an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved at this approver level (1-based).
    Approved {
        /// The approver level.
        node: u32,
    },
    /// Rejected.
    Rejected,
}

/// The event type of a test ping.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// A valid event, ready to be stored and routed.
#[derive(Debug, Clone)]
pub struct PublishedEvent {
    /// The event's id.
    pub id: EventId,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// SHA-256 of the request as published, to tell a true repeat from a key reused.
    pub content_hash: Vec<u8>,
    /// The function, from the kind of request.
    pub function: Function,
    /// The decision.
    pub decision: Decision,
    /// The client request's id.
    pub request_id: String,
    /// E.g. `withdrawal.approved`.
    pub event_type: String,
    /// When the decision was taken.
    pub occurred_at: OffsetDateTime,
    /// The JSON body, signed and sent byte for byte.
    pub body: String,
}

/// Maximum length of free-text request fields.
const MAX_TEXT: usize = 1000;
/// Maximum length of ids and keys.
const MAX_ID: usize = 200;

impl PublishedEvent {
    /// Checks a PublishEvent request; `field_prefix` is `""` or `events[i].` for batches.
    pub fn parse(request: &EventInput, field_prefix: &str) -> Result<Self, ValidationError> {
        let f = |name: &str| format!("{field_prefix}{name}");
        check_required(&f("idempotency_key"), &request.idempotency_key, MAX_ID)?;
        let decision = match (request.decision, request.approval_node) {
            (Some(DecisionKind::Approved), Some(node))
                if (1..=super::webhook::MAX_APPROVAL_NODE).contains(&node) =>
            {
                Decision::Approved { node }
            }
            (Some(DecisionKind::Approved), Some(node)) => {
                return Err(ValidationError::new(
                    f("approval_node"),
                    format!(
                        "node {node} is out of range: approver levels are 1 to {}",
                        super::webhook::MAX_APPROVAL_NODE
                    ),
                ));
            }
            (Some(DecisionKind::Approved), None) => {
                return Err(ValidationError::new(
                    f("approval_node"),
                    "is required (1 or more) when decision is DECISION_APPROVED",
                ));
            }
            (Some(DecisionKind::Rejected), None) => Decision::Rejected,
            (Some(DecisionKind::Rejected), Some(_)) => {
                return Err(ValidationError::new(
                    f("approval_node"),
                    "must be absent when decision is DECISION_REJECTED",
                ));
            }
            (None, _) => {
                return Err(ValidationError::new(
                    f("decision"),
                    "is required: DECISION_APPROVED or DECISION_REJECTED",
                ));
            }
        };
        let occurred_at = match request.occurred_at {
            Some(ts) => timestamps::from_unix(&f("occurred_at"), ts)?,
            None => OffsetDateTime::now_utc(),
        };
        let Some(inner) = &request.request else {
            return Err(ValidationError::new(
                f("request"),
                "is required: set one of withdrawal, prop_trading_participation, prop_trading_live_stage",
            ));
        };
        let (function, request_id, key, request_json) = match inner {
            RequestInput::Withdrawal(w) => (
                Function::Withdrawal,
                w.id.clone(),
                "withdrawal",
                withdrawal_json(w, &f("withdrawal"))?,
            ),
            RequestInput::PropTradingParticipation(p) => (
                Function::PropTradingParticipation,
                p.id.clone(),
                "prop_trading_participation",
                participation_json(p, &f("prop_trading_participation"))?,
            ),
            RequestInput::PropTradingLiveStage(l) => (
                Function::PropTradingLiveStage,
                l.id.clone(),
                "prop_trading_live_stage",
                live_stage_json(l, &f("prop_trading_live_stage"))?,
            ),
        };
        let event_type = format!(
            "{}.{}",
            function.event_prefix(),
            match decision {
                Decision::Approved { .. } => "approved",
                Decision::Rejected => "rejected",
            }
        );
        let id = EventId::now_v7();
        let approval_node = match decision {
            Decision::Approved { node } => json!(node),
            Decision::Rejected => Value::Null,
        };
        let body = json!({
            "type": event_type,
            "timestamp": timestamps::rfc3339(occurred_at),
            "data": {
                "event_id": id.to_string(),
                "decision": match decision { Decision::Approved { .. } => "approved", Decision::Rejected => "rejected" },
                "approval_node": approval_node,
                "occurred_at": timestamps::rfc3339(occurred_at),
                key: request_json,
            }
        })
        .to_string();
        Ok(Self {
            id,
            idempotency_key: request.idempotency_key.clone(),
            content_hash: Sha256::digest(&request.content).to_vec(),
            function,
            decision,
            request_id: request_id.trim().to_owned(),
            event_type,
            occurred_at,
            body,
        })
    }

    /// A signed `webhook.test` ping for one webhook, so an admin can check an endpoint.
    pub fn test_ping(webhook_id: WebhookId, function: Function) -> Self {
        let id = EventId::now_v7();
        let now = OffsetDateTime::now_utc();
        let body = json!({
            "type": TEST_EVENT_TYPE,
            "timestamp": timestamps::rfc3339(now),
            "data": {
                "event_id": id.to_string(),
                "webhook_id": webhook_id.to_string(),
                "function": function.as_str(),
                "message": "Test event sent from the back office to check this endpoint.",
            }
        })
        .to_string();
        Self {
            id,
            idempotency_key: format!("test:{id}"),
            content_hash: Sha256::digest(body.as_bytes()).to_vec(),
            function,
            decision: Decision::Rejected,
            request_id: String::new(),
            event_type: TEST_EVENT_TYPE.to_owned(),
            occurred_at: now,
            body,
        }
    }
}

fn text(field: &str, value: &str) -> Result<Value, ValidationError> {
    check_max_chars(field, value, MAX_TEXT)?;
    Ok(Value::String(value.to_owned()))
}

fn email(field: &str, value: &str) -> Result<Value, ValidationError> {
    check_max_chars(field, value, 320)?;
    if !value.is_empty() && !value.contains('@') {
        return Err(ValidationError::new(field, "must be an email address"));
    }
    Ok(Value::String(value.to_owned()))
}

fn time_value(field: &str, ts: Option<UnixTime>) -> Result<Value, ValidationError> {
    match ts {
        Some(ts) => Ok(Value::String(timestamps::rfc3339(timestamps::from_unix(
            field, ts,
        )?))),
        None => Ok(Value::Null),
    }
}

/// A decimal amount as text: digits, optionally a point and more digits; never a float.
fn decimal(
    field: &str,
    value: &str,
    required: bool,
    positive: bool,
) -> Result<Value, ValidationError> {
    if value.is_empty() {
        if required {
            return Err(ValidationError::new(
                field,
                "is required: a decimal string like \"1250.00\"",
            ));
        }
        return Ok(Value::String(String::new()));
    }
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits_only(whole)
        && digits_only(fraction)
        && (fraction.len() <= 18)
        && whole.len() <= 30
        && (!value.contains('.') || !fraction.is_empty());
    if !well_formed {
        return Err(ValidationError::new(
            field,
            "must be a non-negative decimal string like \"1250.00\" (digits, optional point and digits)",
        ));
    }
    if positive && value.bytes().all(|b| b == b'0' || b == b'.') {
        return Err(ValidationError::new(field, "must be greater than zero"));
    }
    Ok(Value::String(value.to_owned()))
}

fn currency(field: &str, value: &str, required: bool) -> Result<Value, ValidationError> {
    if value.is_empty() && !required {
        return Ok(Value::String(String::new()));
    }
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ValidationError::new(
            field,
            "must be an ISO-4217 code of three upper-case letters, e.g. USD",
        ));
    }
    Ok(Value::String(value.to_owned()))
}

fn ids(field: &str, id: &str, client_id: &str) -> Result<(), ValidationError> {
    check_required(&format!("{field}.id"), id, MAX_ID)?;
    check_required(&format!("{field}.client_id"), client_id, MAX_ID)
}

fn withdrawal_json(w: &WithdrawalInput, field: &str) -> Result<Value, ValidationError> {
    ids(field, &w.id, &w.client_id)?;
    let sub = |name: &str| format!("{field}.{name}");
    let beneficiary = match &w.beneficiary {
        None => Value::Null,
        Some(b) => {
            let bf = |name: &str| format!("{field}.beneficiary.{name}");
            json!({
                "account_holder": text(&bf("account_holder"), &b.account_holder)?,
                "bank_name": text(&bf("bank_name"), &b.bank_name)?,
                "iban": text(&bf("iban"), &b.iban)?,
                "account_number": text(&bf("account_number"), &b.account_number)?,
                "swift_code": text(&bf("swift_code"), &b.swift_code)?,
                "wallet_address": text(&bf("wallet_address"), &b.wallet_address)?,
                "network": text(&bf("network"), &b.network)?,
            })
        }
    };
    Ok(json!({
        "id": w.id.trim(),
        "client_id": w.client_id,
        "client_name": text(&sub("client_name"), &w.client_name)?,
        "client_email": email(&sub("client_email"), &w.client_email)?,
        "trading_account": text(&sub("trading_account"), &w.trading_account)?,
        "amount": decimal(&sub("amount"), &w.amount, true, true)?,
        "currency": currency(&sub("currency"), &w.currency, true)?,
        "payment_method": text(&sub("payment_method"), &w.payment_method)?,
        "beneficiary": beneficiary,
        "submitted_at": time_value(&sub("submitted_at"), w.submitted_at)?,
        "status": text(&sub("status"), &w.status)?,
        "remarks": text(&sub("remarks"), &w.remarks)?,
    }))
}

fn participation_json(p: &ParticipationInput, field: &str) -> Result<Value, ValidationError> {
    ids(field, &p.id, &p.client_id)?;
    let sub = |name: &str| format!("{field}.{name}");
    let needs_currency = !p.account_size.is_empty() || !p.fee.is_empty();
    Ok(json!({
        "id": p.id.trim(),
        "client_id": p.client_id,
        "client_name": text(&sub("client_name"), &p.client_name)?,
        "client_email": email(&sub("client_email"), &p.client_email)?,
        "program": text(&sub("program"), &p.program)?,
        "challenge": text(&sub("challenge"), &p.challenge)?,
        "account_size": decimal(&sub("account_size"), &p.account_size, false, false)?,
        "fee": decimal(&sub("fee"), &p.fee, false, false)?,
        "currency": currency(&sub("currency"), &p.currency, needs_currency)?,
        "evaluation_account": text(&sub("evaluation_account"), &p.evaluation_account)?,
        "submitted_at": time_value(&sub("submitted_at"), p.submitted_at)?,
        "status": text(&sub("status"), &p.status)?,
        "remarks": text(&sub("remarks"), &p.remarks)?,
    }))
}

fn live_stage_json(l: &LiveStageInput, field: &str) -> Result<Value, ValidationError> {
    ids(field, &l.id, &l.client_id)?;
    let sub = |name: &str| format!("{field}.{name}");
    Ok(json!({
        "id": l.id.trim(),
        "client_id": l.client_id,
        "client_name": text(&sub("client_name"), &l.client_name)?,
        "client_email": email(&sub("client_email"), &l.client_email)?,
        "program": text(&sub("program"), &l.program)?,
        "challenge": text(&sub("challenge"), &l.challenge)?,
        "account_size": decimal(&sub("account_size"), &l.account_size, false, false)?,
        "currency": currency(&sub("currency"), &l.currency, !l.account_size.is_empty())?,
        "evaluation_account": text(&sub("evaluation_account"), &l.evaluation_account)?,
        "live_account": text(&sub("live_account"), &l.live_account)?,
        "submitted_at": time_value(&sub("submitted_at"), l.submitted_at)?,
        "status": text(&sub("status"), &l.status)?,
        "remarks": text(&sub("remarks"), &l.remarks)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn withdrawal(decision: Option<DecisionKind>, node: Option<u32>) -> EventInput {
        EventInput {
            idempotency_key: "k1".into(),
            decision,
            approval_node: node,
            occurred_at: None,
            content: Vec::new(),
            request: Some(RequestInput::Withdrawal(WithdrawalInput {
                id: "W-1".into(),
                client_id: "C-1".into(),
                amount: "100.50".into(),
                currency: "USD".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn approved_withdrawal_builds_the_standard_body() {
        let event =
            PublishedEvent::parse(&withdrawal(Some(DecisionKind::Approved), Some(1)), "").unwrap();
        assert_eq!(event.event_type, "withdrawal.approved");
        assert_eq!(event.request_id, "W-1");
        let body: Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["type"], "withdrawal.approved");
        assert_eq!(body["data"]["approval_node"], 1);
        assert_eq!(body["data"]["withdrawal"]["amount"], "100.50");
    }

    #[test]
    fn decision_and_node_must_agree() {
        let err =
            PublishedEvent::parse(&withdrawal(Some(DecisionKind::Approved), None), "").unwrap_err();
        assert_eq!(err.field, "approval_node");
        let err = PublishedEvent::parse(&withdrawal(Some(DecisionKind::Rejected), Some(1)), "")
            .unwrap_err();
        assert_eq!(err.field, "approval_node");
        let err = PublishedEvent::parse(&withdrawal(None, None), "events[3].").unwrap_err();
        assert_eq!(err.field, "events[3].decision");
        let err = PublishedEvent::parse(&withdrawal(Some(DecisionKind::Approved), Some(0)), "")
            .unwrap_err();
        assert_eq!(err.field, "approval_node");
    }

    #[test]
    fn amounts_are_decimal_strings() {
        for bad in ["", "1e5", "-1", "1.", ".5", "0.00", "1,5", "NaN"] {
            let mut req = withdrawal(Some(DecisionKind::Rejected), None);
            if let Some(RequestInput::Withdrawal(w)) = &mut req.request {
                w.amount = bad.into();
            }
            let err = PublishedEvent::parse(&req, "").unwrap_err();
            assert_eq!(err.field, "withdrawal.amount", "{bad}");
        }
    }
}
