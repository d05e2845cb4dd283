//! Properties of the validation of PublishEvent requests (all three kinds of client request):
//! `PublishedEvent::parse` never panics; it accepts a request exactly when every field keeps the
//! documented rules (written out independently below); an accepted event's body is JSON whose
//! `type` matches the decision, with amounts as decimal strings; and a refusal names a field
//! that really is wrong, under the batch prefix when there is one.

use proptest::prelude::*;
use serde_json::Value;
use webhooks::api::convert;
use webhooks::domain::{Decision, PublishedEvent};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::publish_event_request::Request;

use crate::strategies::{
    amount, currency, email, enum_value, hostile_text, hostile_text_bounded, id_text, mostly, node,
    rarely, timestamp,
};

// ----- generators ------------------------------------------------------------------------------

/// How each kind of field is generated.
#[derive(Clone)]
struct Fields {
    key: BoxedStrategy<String>,
    id: BoxedStrategy<String>,
    text: BoxedStrategy<String>,
    email: BoxedStrategy<String>,
    amount: BoxedStrategy<String>,
    currency: BoxedStrategy<String>,
    decision: BoxedStrategy<(i32, Option<u32>)>,
    time: BoxedStrategy<Option<prost_types::Timestamp>>,
}

impl Fields {
    /// Hostile everywhere, strings up to tens of thousands of characters: for the parser alone.
    fn hostile() -> Self {
        Self {
            key: mostly("[a-z0-9-]{1,12}".boxed(), hostile_text()),
            id: id_text(),
            text: mostly("[a-zA-Z0-9 ]{0,20}".boxed(), hostile_text()),
            email: email(),
            amount: amount(),
            currency: currency(),
            decision: (enum_value(2), prop::option::weighted(0.6, node())).boxed(),
            time: prop::option::weighted(0.5, timestamp()).boxed(),
        }
    }

    /// Mostly valid, with the odd hostile or poisoned field, and no string longer than a few
    /// thousand characters: for the running service, so that requests get past validation and
    /// hostile values reach the store.
    fn mostly_valid() -> Self {
        let ts = (0i64..4_000_000_000, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos }));
        Self {
            key: rarely("[a-z0-9-]{1,12}".boxed(), hostile_text_bounded()),
            id: rarely("[A-Z]{1,3}-[0-9]{1,6}".boxed(), hostile_text_bounded()),
            text: rarely("[a-zA-Z0-9 ]{0,20}".boxed(), hostile_text_bounded()),
            email: rarely("[a-z]{1,10}@[a-z]{1,10}\\.com".boxed(), email()),
            amount: rarely("[1-9][0-9]{0,5}(\\.[0-9]{1,2})?".boxed(), amount()),
            currency: rarely("[A-Z]{3}".boxed(), currency()),
            decision: prop_oneof![
                6 => (Just(1), (1u32..=1000).prop_map(Some)),
                6 => (Just(2), Just(None)),
                1 => (enum_value(2), prop::option::of(node())),
            ]
            .boxed(),
            time: prop_oneof![
                8 => Just(None),
                4 => ts,
                1 => timestamp().prop_map(Some),
            ]
            .boxed(),
        }
    }
}

fn beneficiary(f: &Fields) -> impl Strategy<Value = pb::Beneficiary> + use<> {
    prop::collection::vec(f.text.clone(), 7).prop_map(|mut v| pb::Beneficiary {
        network: v.pop().unwrap_or_default(),
        wallet_address: v.pop().unwrap_or_default(),
        swift_code: v.pop().unwrap_or_default(),
        account_number: v.pop().unwrap_or_default(),
        iban: v.pop().unwrap_or_default(),
        bank_name: v.pop().unwrap_or_default(),
        account_holder: v.pop().unwrap_or_default(),
    })
}

fn withdrawal(f: &Fields) -> impl Strategy<Value = Request> + use<> {
    let t = || f.text.clone();
    (
        (f.id.clone(), f.id.clone(), t(), f.email.clone(), t()),
        (f.amount.clone(), f.currency.clone(), t()),
        (prop::option::weighted(0.5, beneficiary(f)), f.time.clone()),
        (t(), t()),
    )
        .prop_map(
            |(
                (id, client_id, client_name, client_email, trading_account),
                (amount, currency, payment_method),
                (beneficiary, submitted_at),
                (status, remarks),
            )| {
                Request::Withdrawal(pb::WithdrawalRequest {
                    id,
                    client_id,
                    client_name,
                    client_email,
                    trading_account,
                    amount,
                    currency,
                    payment_method,
                    beneficiary,
                    submitted_at,
                    status,
                    remarks,
                })
            },
        )
}

fn participation(f: &Fields) -> impl Strategy<Value = Request> + use<> {
    let t = || f.text.clone();
    let optional_amount = prop_oneof![1 => Just(String::new()), 2 => f.amount.clone()];
    (
        (f.id.clone(), f.id.clone(), t(), f.email.clone()),
        (
            t(),
            t(),
            optional_amount.clone(),
            optional_amount,
            f.currency.clone(),
        ),
        (t(), f.time.clone(), t(), t()),
    )
        .prop_map(
            |(
                (id, client_id, client_name, client_email),
                (program, challenge, account_size, fee, currency),
                (evaluation_account, submitted_at, status, remarks),
            )| {
                Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
                    id,
                    client_id,
                    client_name,
                    client_email,
                    program,
                    challenge,
                    account_size,
                    fee,
                    currency,
                    evaluation_account,
                    submitted_at,
                    status,
                    remarks,
                })
            },
        )
}

fn live_stage(f: &Fields) -> impl Strategy<Value = Request> + use<> {
    let t = || f.text.clone();
    let optional_amount = prop_oneof![1 => Just(String::new()), 2 => f.amount.clone()];
    (
        (f.id.clone(), f.id.clone(), t(), f.email.clone()),
        (t(), t(), optional_amount, f.currency.clone()),
        (t(), t(), f.time.clone()),
        (t(), t()),
    )
        .prop_map(
            |(
                (id, client_id, client_name, client_email),
                (program, challenge, account_size, currency),
                (evaluation_account, live_account, submitted_at),
                (status, remarks),
            )| {
                Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
                    id,
                    client_id,
                    client_name,
                    client_email,
                    program,
                    challenge,
                    account_size,
                    currency,
                    evaluation_account,
                    live_account,
                    submitted_at,
                    status,
                    remarks,
                })
            },
        )
}

/// A PublishEvent request of any kind. `for_service` makes it mostly valid with the odd hostile
/// field and strings of at most a few thousand characters (for the running service); otherwise
/// every field is often hostile and some strings are tens of thousands of characters long.
pub fn publish_request(for_service: bool) -> BoxedStrategy<pb::PublishEventRequest> {
    let f = if for_service {
        Fields::mostly_valid()
    } else {
        Fields::hostile()
    };
    let request = prop::option::weighted(
        0.97,
        prop_oneof![withdrawal(&f), participation(&f), live_stage(&f)],
    );
    (f.key.clone(), f.decision.clone(), f.time.clone(), request)
        .prop_map(
            |(idempotency_key, (decision, approval_node), occurred_at, request)| {
                pb::PublishEventRequest {
                    idempotency_key,
                    decision,
                    approval_node,
                    occurred_at,
                    request,
                }
            },
        )
        .boxed()
}

// ----- the rules, written independently of the parser ------------------------------------------

fn chars(value: &str) -> usize {
    value.chars().count()
}

fn required(value: &str, max: usize) -> bool {
    !value.trim().is_empty() && chars(value) <= max
}

/// Digits, optionally a point and at least one more digit; at most 30 and 18 digits.
fn decimal(value: &str) -> bool {
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (1..=30).contains(&whole.len())
        && digits(whole)
        && fraction.is_none_or(|f| (1..=18).contains(&f.len()) && digits(f))
}

fn positive(value: &str) -> bool {
    value.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

fn currency_code(value: &str) -> bool {
    value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase())
}

fn email_ok(value: &str) -> bool {
    chars(value) <= 320 && (value.is_empty() || value.contains('@'))
}

fn time_ok(ts: Option<&prost_types::Timestamp>) -> bool {
    let Some(ts) = ts else { return true };
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return false;
    }
    // 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z
    (0..=253_402_300_799).contains(&ts.seconds)
}

/// Every field path of `request` that breaks a rule (without the batch prefix).
pub fn invalid_fields(request: &pb::PublishEventRequest) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |ok: bool, field: &str| {
        if !ok {
            bad.push(field.to_owned());
        }
    };
    check(required(&request.idempotency_key, 200), "idempotency_key");
    match request.decision {
        1 => check(
            request
                .approval_node
                .is_some_and(|n| (1..=1000).contains(&n)),
            "approval_node",
        ),
        2 => check(request.approval_node.is_none(), "approval_node"),
        _ => check(false, "decision"),
    }
    check(time_ok(request.occurred_at.as_ref()), "occurred_at");
    let text = |value: &str| chars(value) <= 1000;
    match &request.request {
        None => check(false, "request"),
        Some(Request::Withdrawal(w)) => {
            let f = |name: &str| format!("withdrawal.{name}");
            check(required(&w.id, 200), &f("id"));
            check(required(&w.client_id, 200), &f("client_id"));
            check(text(&w.client_name), &f("client_name"));
            check(email_ok(&w.client_email), &f("client_email"));
            check(text(&w.trading_account), &f("trading_account"));
            check(decimal(&w.amount) && positive(&w.amount), &f("amount"));
            check(currency_code(&w.currency), &f("currency"));
            check(text(&w.payment_method), &f("payment_method"));
            if let Some(b) = &w.beneficiary {
                for (name, value) in [
                    ("account_holder", &b.account_holder),
                    ("bank_name", &b.bank_name),
                    ("iban", &b.iban),
                    ("account_number", &b.account_number),
                    ("swift_code", &b.swift_code),
                    ("wallet_address", &b.wallet_address),
                    ("network", &b.network),
                ] {
                    check(text(value), &f(&format!("beneficiary.{name}")));
                }
            }
            check(time_ok(w.submitted_at.as_ref()), &f("submitted_at"));
            check(text(&w.status), &f("status"));
            check(text(&w.remarks), &f("remarks"));
        }
        Some(Request::PropTradingParticipation(p)) => {
            let f = |name: &str| format!("prop_trading_participation.{name}");
            check(required(&p.id, 200), &f("id"));
            check(required(&p.client_id, 200), &f("client_id"));
            check(text(&p.client_name), &f("client_name"));
            check(email_ok(&p.client_email), &f("client_email"));
            check(text(&p.program), &f("program"));
            check(text(&p.challenge), &f("challenge"));
            check(
                p.account_size.is_empty() || decimal(&p.account_size),
                &f("account_size"),
            );
            check(p.fee.is_empty() || decimal(&p.fee), &f("fee"));
            let needs = !p.account_size.is_empty() || !p.fee.is_empty();
            check(
                currency_code(&p.currency) || (!needs && p.currency.is_empty()),
                &f("currency"),
            );
            check(text(&p.evaluation_account), &f("evaluation_account"));
            check(time_ok(p.submitted_at.as_ref()), &f("submitted_at"));
            check(text(&p.status), &f("status"));
            check(text(&p.remarks), &f("remarks"));
        }
        Some(Request::PropTradingLiveStage(l)) => {
            let f = |name: &str| format!("prop_trading_live_stage.{name}");
            check(required(&l.id, 200), &f("id"));
            check(required(&l.client_id, 200), &f("client_id"));
            check(text(&l.client_name), &f("client_name"));
            check(email_ok(&l.client_email), &f("client_email"));
            check(text(&l.program), &f("program"));
            check(text(&l.challenge), &f("challenge"));
            check(
                l.account_size.is_empty() || decimal(&l.account_size),
                &f("account_size"),
            );
            let needs = !l.account_size.is_empty();
            check(
                currency_code(&l.currency) || (!needs && l.currency.is_empty()),
                &f("currency"),
            );
            check(text(&l.evaluation_account), &f("evaluation_account"));
            check(text(&l.live_account), &f("live_account"));
            check(time_ok(l.submitted_at.as_ref()), &f("submitted_at"));
            check(text(&l.status), &f("status"));
            check(text(&l.remarks), &f("remarks"));
        }
    }
    bad
}

/// Every string field of `request` with its path (without the batch prefix).
fn string_fields(request: &pb::PublishEventRequest) -> Vec<(String, &str)> {
    fn add<'a>(fields: &mut Vec<(String, &'a str)>, prefix: &str, pairs: &[(&str, &'a str)]) {
        for (name, value) in pairs {
            fields.push((format!("{prefix}.{name}"), value));
        }
    }
    let mut fields = vec![(
        "idempotency_key".to_owned(),
        request.idempotency_key.as_str(),
    )];
    match &request.request {
        None => {}
        Some(Request::Withdrawal(w)) => {
            add(
                &mut fields,
                "withdrawal",
                &[
                    ("id", &w.id),
                    ("client_id", &w.client_id),
                    ("client_name", &w.client_name),
                    ("client_email", &w.client_email),
                    ("trading_account", &w.trading_account),
                    ("amount", &w.amount),
                    ("currency", &w.currency),
                    ("payment_method", &w.payment_method),
                    ("status", &w.status),
                    ("remarks", &w.remarks),
                ],
            );
            if let Some(b) = &w.beneficiary {
                add(
                    &mut fields,
                    "withdrawal.beneficiary",
                    &[
                        ("account_holder", &b.account_holder),
                        ("bank_name", &b.bank_name),
                        ("iban", &b.iban),
                        ("account_number", &b.account_number),
                        ("swift_code", &b.swift_code),
                        ("wallet_address", &b.wallet_address),
                        ("network", &b.network),
                    ],
                );
            }
        }
        Some(Request::PropTradingParticipation(p)) => add(
            &mut fields,
            "prop_trading_participation",
            &[
                ("id", &p.id),
                ("client_id", &p.client_id),
                ("client_name", &p.client_name),
                ("client_email", &p.client_email),
                ("program", &p.program),
                ("challenge", &p.challenge),
                ("account_size", &p.account_size),
                ("fee", &p.fee),
                ("currency", &p.currency),
                ("evaluation_account", &p.evaluation_account),
                ("status", &p.status),
                ("remarks", &p.remarks),
            ],
        ),
        Some(Request::PropTradingLiveStage(l)) => add(
            &mut fields,
            "prop_trading_live_stage",
            &[
                ("id", &l.id),
                ("client_id", &l.client_id),
                ("client_name", &l.client_name),
                ("client_email", &l.client_email),
                ("program", &l.program),
                ("challenge", &l.challenge),
                ("account_size", &l.account_size),
                ("currency", &l.currency),
                ("evaluation_account", &l.evaluation_account),
                ("live_account", &l.live_account),
                ("status", &l.status),
                ("remarks", &l.remarks),
            ],
        ),
    }
    fields
}

/// The fields holding a NUL character. A parser may accept those (JSON escapes NUL) or refuse
/// them (Postgres text cannot hold NUL), so a refusal may name them; the end-to-end test checks
/// that the service never turns them into an internal error.
pub fn fields_with_nul(request: &pb::PublishEventRequest) -> Vec<String> {
    string_fields(request)
        .into_iter()
        .filter(|(_, value)| value.contains('\0'))
        .map(|(field, _)| field)
        .collect()
}

/// Checks an accepted event against its request.
fn check_accepted(
    request: &pb::PublishEventRequest,
    event: &PublishedEvent,
) -> Result<(), TestCaseError> {
    let body: Value = serde_json::from_str(&event.body)
        .map_err(|e| TestCaseError::fail(format!("the body is not JSON: {e}")))?;
    prop_assert_eq!(&body["type"], &Value::from(event.event_type.as_str()));
    let (verb, node) = match (request.decision, request.approval_node) {
        (1, Some(node)) => ("approved", Value::from(node)),
        _ => ("rejected", Value::Null),
    };
    prop_assert_eq!(
        event.decision,
        match request.approval_node {
            Some(node) if request.decision == 1 => Decision::Approved { node },
            _ => Decision::Rejected,
        }
    );
    let (key, prefix, id) = match &request.request {
        Some(Request::Withdrawal(w)) => ("withdrawal", "withdrawal", &w.id),
        Some(Request::PropTradingParticipation(p)) => (
            "prop_trading_participation",
            "prop_trading.participation",
            &p.id,
        ),
        Some(Request::PropTradingLiveStage(l)) => {
            ("prop_trading_live_stage", "prop_trading.live_stage", &l.id)
        }
        None => return Err(TestCaseError::fail("accepted without a request")),
    };
    prop_assert_eq!(&event.event_type, &format!("{prefix}.{verb}"));
    prop_assert_eq!(&body["data"]["decision"], &Value::from(verb));
    prop_assert_eq!(&body["data"]["approval_node"], &node);
    prop_assert_eq!(
        &body["data"]["event_id"],
        &Value::from(event.id.to_string())
    );
    prop_assert_eq!(&event.idempotency_key, &request.idempotency_key);
    prop_assert_eq!(event.request_id.as_str(), id.trim());
    let inner = &body["data"][key];
    prop_assert_eq!(&inner["id"], &Value::from(id.trim()));
    for amount in ["amount", "account_size", "fee"] {
        if let Some(value) = inner.get(amount) {
            let text = value.as_str().unwrap_or("not a string");
            prop_assert!(
                text.is_empty() || decimal(text),
                "{} is not a decimal string: {}",
                amount,
                value
            );
        }
    }
    if let Some(currency) = inner.get("currency").and_then(Value::as_str) {
        prop_assert!(currency.is_empty() || currency_code(currency));
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::strategies::config(768))]

    #[test]
    fn publish_requests_are_accepted_exactly_when_every_field_keeps_its_rule(
        request in publish_request(false),
        batch_index in prop::option::of(0usize..1000),
    ) {
        let prefix = batch_index.map(|i| format!("events[{i}].")).unwrap_or_default();
        let invalid = invalid_fields(&request);
        let with_nul = fields_with_nul(&request);
        match convert::published_event(&request, &prefix) {
            Ok(event) => {
                prop_assert!(invalid.is_empty(), "accepted although {invalid:?} are invalid");
                check_accepted(&request, &event)?;
            }
            Err(error) => {
                let field = error.field.strip_prefix(prefix.as_str());
                prop_assert!(field.is_some(), "{} lacks the prefix {prefix}", error.field);
                let field = field.unwrap_or_default();
                prop_assert!(
                    invalid.iter().chain(&with_nul).any(|f| f == field),
                    "refused naming {field} ({}), but the invalid fields are {invalid:?}",
                    error.rule
                );
            }
        }
    }

    #[test]
    fn equal_requests_hash_equal_and_any_change_shows(
        request in publish_request(true),
        other_key in "[a-z]{1,8}",
    ) {
        if let Ok(a) = convert::published_event(&request, "") {
            let b = convert::published_event(&request, "").expect("the same request parses");
            prop_assert_eq!(&a.content_hash, &b.content_hash);
            prop_assert_ne!(a.id, b.id, "every parse gets a fresh event id");
            let mut changed = request.clone();
            changed.idempotency_key = format!("{}{other_key}", request.idempotency_key);
            if let Ok(c) = convert::published_event(&changed, "") {
                prop_assert_ne!(&a.content_hash, &c.content_hash);
            }
        }
    }
}

/// `hostile_text` is used through `unbounded_text`; this keeps the generators honest: they do
/// produce accepted requests of every kind, or the properties above would check little.
#[test]
fn the_generators_produce_accepted_events_of_every_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = publish_request(false);
    let mut accepted = std::collections::HashSet::new();
    for _ in 0..2000 {
        let request = strategy
            .new_tree(&mut runner)
            .expect("a request is generated")
            .current();
        if let Ok(event) = convert::published_event(&request, "") {
            accepted.insert(event.event_type);
        }
    }
    assert_eq!(accepted.len(), 6, "accepted kinds: {accepted:?}");
}
