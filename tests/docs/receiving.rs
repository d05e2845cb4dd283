//! `docs/receiving-webhooks.md`: the example bodies are what the service builds, the headers and
//! the test vector are what it sends, the stated defaults are the service's, and the
//! verification snippets (Python, Node.js, Rust, and the `standardwebhooks` crate) accept what
//! the service signs and reject every tampered variant, first on requests signed by the
//! service's own signing code, then on real deliveries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use uuid::Uuid;
use webhooks::api::convert;
use webhooks::delivery::signature::sign;
use webhooks::domain::{
    Alert, AlertType, AlertedDelivery, AlertedWebhook, Function, PublishedEvent, Secret,
};
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::publish_event_request::Request;

use crate::markdown::{self, Block, Doc, unquote};
use testkit::{Receiver, Reply};

use crate::support::{self, TestApp, serve_default};
use crate::{library_snippet, verify_snippet};

const PAGE: &str = "receiving-webhooks.md";

/// The event types a receiver can get.
const EVENT_TYPES: &[&str] = &[
    "withdrawal.approved",
    "withdrawal.rejected",
    "prop_trading.participation.approved",
    "prop_trading.participation.rejected",
    "prop_trading.live_stage.approved",
    "prop_trading.live_stage.rejected",
    "webhook.test",
];

/// The operational webhooks' event types (`WEBHOOKS_OPERATIONAL_WEBHOOK_URL`).
const OPERATIONAL_TYPES: &[&str] = &[
    "webhook.disabled",
    "webhook.circuit_opened",
    "webhook.circuit_closed",
    "delivery.exhausted",
];

/// The secret of the page's test vector.
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Headers any HTTP client adds, which the page mentions but does not list in its table.
const TRANSPORT_HEADERS: &[&str] = &["host", "content-length"];

fn page() -> Doc {
    markdown::load(PAGE)
}

/// The only block of `doc` with the info string `lang marker`.
fn only_block<'a>(doc: &'a Doc, lang: &str, marker: &str) -> &'a Block {
    let found: Vec<&Block> = doc
        .blocks
        .iter()
        .filter(|b| b.lang == lang && b.marker() == marker)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{PAGE} should have exactly one ```{lang} {marker} block, it has {}",
        found.len()
    );
    found[0]
}

/// The JSON example of an event type.
fn example(doc: &Doc, event_type: &str) -> Value {
    let block = only_block(doc, "json", &format!("example-{event_type}"));
    serde_json::from_str(&block.code).unwrap_or_else(|e| panic!("{}: not JSON: {e}", block.at(doc)))
}

// ---------------------------------------------------------------------------------------------
// Every fenced block of every page is checked by some test.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_code_block_of_the_docs_is_checked() {
    let kinds: &[(&str, &[(&str, &str)])] = &[
        (
            "receiving-webhooks.md",
            &[
                ("http", "example-request"),
                ("python", "verify"),
                ("js", "verify"),
                ("rust", "verify"),
                ("python", "library"),
                ("js", "library"),
                ("rust", "library"),
            ],
        ),
        (
            "grpc-api.md",
            &[("sh", "grpcurl"), ("json", "response"), ("text", "output")],
        ),
        (
            "operations.md",
            &[
                ("sh", "grpcurl"),
                ("sh", "webhooks"),
                ("json", "response"),
                ("text", "output"),
                ("yaml", "prometheus-rules"),
            ],
        ),
        (crate::clients::PAGE, crate::clients::BLOCK_KINDS),
    ];
    for (name, allowed) in kinds {
        let doc = markdown::load(name);
        assert!(!doc.blocks.is_empty(), "docs/{name} has no examples");
        for block in &doc.blocks {
            let is_event_example = *name == PAGE
                && block.lang == "json"
                && block
                    .marker()
                    .strip_prefix("example-")
                    .is_some_and(|t| EVENT_TYPES.contains(&t) || OPERATIONAL_TYPES.contains(&t));
            let known = allowed
                .iter()
                .any(|(lang, marker)| block.lang == *lang && block.marker() == *marker);
            assert!(
                known || is_event_example,
                "{}: ```{} {} is not a kind of block the tests run or check; use one of \
                 {allowed:?} (or json example-<event type>)",
                block.at(&doc),
                block.lang,
                block.attrs.join(" ")
            );
        }
        // Result blocks must follow an example (this panics otherwise).
        crate::examples::examples(&doc);
    }
    // The other pages exist in docs/ and nothing else is there unchecked.
    let mut pages: Vec<String> = std::fs::read_dir(markdown::root().join("docs"))
        .expect("docs/ is readable")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    pages.sort();
    let checked: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
    for page in &pages {
        assert!(
            checked.contains(&page.as_str()),
            "docs/{page} is not covered by tests/docs: add its code blocks to the checks"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Example bodies.
// ---------------------------------------------------------------------------------------------

fn text(object: &Value, field: &str) -> String {
    match &object[field] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => panic!("`{field}` should be a string, the example has {other}"),
    }
}

fn timestamp(value: &Value, field: &str) -> Option<prost_types::Timestamp> {
    let text = value.as_str()?;
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("`{field}` = {text} is not RFC 3339: {e}"));
    Some(webhooks::api::convert::timestamps::to_proto(at))
}

/// The PublishEvent request a back-office service would send for the decision in `example`.
fn request_from_example(example: &Value) -> pb::PublishEventRequest {
    let data = &example["data"];
    let decision = match data["decision"].as_str() {
        Some("approved") => pb::Decision::Approved,
        Some("rejected") => pb::Decision::Rejected,
        other => panic!("data.decision should be approved or rejected, not {other:?}"),
    };
    let request = if let Some(w) = data.get("withdrawal") {
        let beneficiary = (!w["beneficiary"].is_null()).then(|| {
            let b = &w["beneficiary"];
            pb::Beneficiary {
                account_holder: text(b, "account_holder"),
                bank_name: text(b, "bank_name"),
                iban: text(b, "iban"),
                account_number: text(b, "account_number"),
                swift_code: text(b, "swift_code"),
                wallet_address: text(b, "wallet_address"),
                network: text(b, "network"),
            }
        });
        Request::Withdrawal(pb::WithdrawalRequest {
            id: text(w, "id"),
            client_id: text(w, "client_id"),
            client_name: text(w, "client_name"),
            client_email: text(w, "client_email"),
            trading_account: text(w, "trading_account"),
            amount: text(w, "amount"),
            currency: text(w, "currency"),
            payment_method: text(w, "payment_method"),
            beneficiary,
            submitted_at: timestamp(&w["submitted_at"], "submitted_at"),
            status: text(w, "status"),
            remarks: text(w, "remarks"),
        })
    } else if let Some(p) = data.get("prop_trading_participation") {
        Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
            id: text(p, "id"),
            client_id: text(p, "client_id"),
            client_name: text(p, "client_name"),
            client_email: text(p, "client_email"),
            program: text(p, "program"),
            challenge: text(p, "challenge"),
            account_size: text(p, "account_size"),
            fee: text(p, "fee"),
            currency: text(p, "currency"),
            evaluation_account: text(p, "evaluation_account"),
            submitted_at: timestamp(&p["submitted_at"], "submitted_at"),
            status: text(p, "status"),
            remarks: text(p, "remarks"),
        })
    } else if let Some(l) = data.get("prop_trading_live_stage") {
        Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
            id: text(l, "id"),
            client_id: text(l, "client_id"),
            client_name: text(l, "client_name"),
            client_email: text(l, "client_email"),
            program: text(l, "program"),
            challenge: text(l, "challenge"),
            account_size: text(l, "account_size"),
            currency: text(l, "currency"),
            evaluation_account: text(l, "evaluation_account"),
            live_account: text(l, "live_account"),
            submitted_at: timestamp(&l["submitted_at"], "submitted_at"),
            status: text(l, "status"),
            remarks: text(l, "remarks"),
        })
    } else {
        panic!(
            "data holds none of withdrawal, prop_trading_participation, prop_trading_live_stage: {data}"
        );
    };
    pb::PublishEventRequest {
        idempotency_key: format!("docs-{}", Uuid::new_v4()),
        decision: decision as i32,
        approval_node: data["approval_node"].as_u64().map(|n| n as u32),
        occurred_at: timestamp(&data["occurred_at"], "occurred_at"),
        request: Some(request),
    }
}

/// The body the service builds for the decision of a page example, with the example's
/// (random) event id.
fn real_body(example: &Value) -> (PublishedEvent, Value) {
    let event = convert::published_event(&request_from_example(example), "")
        .unwrap_or_else(|e| panic!("the service refuses the example's decision: {e}"));
    let mut body: Value = serde_json::from_str(&event.body).expect("the service sends JSON");
    let example_id = example["data"]["event_id"].as_str().unwrap_or_default();
    assert!(
        Uuid::try_parse(example_id).is_ok(),
        "data.event_id of the example should be a UUID, not {example_id:?}"
    );
    body["data"]["event_id"] = json!(example_id);
    (event, body)
}

#[test]
fn every_event_type_has_an_example_body_the_service_really_builds() {
    let doc = page();
    let documented: BTreeSet<String> = doc
        .blocks
        .iter()
        .filter(|b| b.lang == "json")
        .filter_map(|b| b.marker().strip_prefix("example-").map(str::to_owned))
        .filter(|t| !OPERATIONAL_TYPES.contains(&t.as_str()))
        .collect();
    let expected: BTreeSet<String> = EVENT_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        documented, expected,
        "{PAGE}: one example body per event type"
    );
    let mut keys = BTreeSet::new();
    for event_type in EVENT_TYPES.iter().filter(|t| **t != "webhook.test") {
        let example = example(&doc, event_type);
        assert_eq!(example["type"], *event_type, "example-{event_type}: type");
        let (event, real) = real_body(&example);
        assert_eq!(event.event_type, *event_type);
        assert_eq!(
            real,
            example,
            "{PAGE}: example-{event_type} differs from what the service sends for the same \
             decision:\n{}",
            serde_json::to_string_pretty(&real).unwrap_or_default()
        );
        collect_keys(&real, &mut keys);
        // The table of event types names it too.
        assert!(
            doc.text.contains(&format!("| `{event_type}` |"))
                || doc.text.contains(&format!("`{event_type}` |")),
            "{PAGE}: the event type table lacks {event_type}"
        );
    }

    // The test ping: same envelope, its own data.
    let example = example(&doc, "webhook.test");
    let webhook_id = Uuid::try_parse(example["data"]["webhook_id"].as_str().unwrap_or_default())
        .expect("data.webhook_id of the test ping is a UUID");
    let function = Function::from_db(example["data"]["function"].as_str().unwrap_or_default())
        .expect("data.function of the test ping is a function name");
    let ping = PublishedEvent::test_ping(webhook_id.into(), function);
    assert_eq!(ping.event_type, "webhook.test");
    let mut real: Value = serde_json::from_str(&ping.body).expect("JSON");
    collect_keys(&real, &mut keys);
    timestamp(&example["timestamp"], "timestamp").expect("the ping has a timestamp");
    Uuid::try_parse(example["data"]["event_id"].as_str().unwrap_or_default())
        .expect("data.event_id of the ping is a UUID");
    real["timestamp"] = example["timestamp"].clone();
    real["data"]["event_id"] = example["data"]["event_id"].clone();
    assert_eq!(
        real, example,
        "{PAGE}: example-webhook.test differs from the service's test ping"
    );

    // Every field the service sends is named on the page.
    for key in keys {
        assert!(
            doc.text.contains(&format!("`{key}`")) || doc.text.contains(&format!("`data.{key}`")),
            "{PAGE} never names the body field `{key}`"
        );
    }
}

fn example_time(value: &Value, field: &str) -> Option<time::OffsetDateTime> {
    let text = value.as_str()?;
    Some(
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("`{field}` = {text} is not RFC 3339: {e}")),
    )
}

/// The alert the service would raise for the facts an operational example shows.
fn alert_from_example(example: &Value) -> Alert {
    let data = &example["data"];
    let w = &data["webhook"];
    let alert_type = AlertType::ALL
        .into_iter()
        .find(|t| example["type"] == t.as_str())
        .unwrap_or_else(|| panic!("{} is not an operational type", example["type"]));
    let number = |v: &Value| v.as_i64().map(|n| n as i32);
    Alert {
        alert_type,
        cursor: 1,
        occurred_at: example_time(&data["occurred_at"], "data.occurred_at")
            .expect("data.occurred_at is set"),
        webhook: AlertedWebhook {
            id: Uuid::try_parse(w["id"].as_str().unwrap_or_default())
                .expect("data.webhook.id is a UUID")
                .into(),
            name: text(w, "name"),
            function: Function::from_db(w["function"].as_str().unwrap_or_default())
                .expect("data.webhook.function is a function name"),
            destination_url: text(w, "destination_url"),
            enabled: w["enabled"]
                .as_bool()
                .expect("data.webhook.enabled is a bool"),
            disabled_reason: w["disabled_reason"].as_str().map(str::to_owned),
            disabled_at: example_time(&w["disabled_at"], "disabled_at"),
            consecutive_failures: number(&w["consecutive_failures"]).unwrap_or(-1),
            circuit_open_until: example_time(&w["circuit_open_until"], "circuit_open_until"),
            failing_since: example_time(&w["failing_since"], "failing_since"),
            last_error: text(w, "last_error"),
        },
        delivery: data.get("delivery").map(|d| AlertedDelivery {
            id: text(d, "id"),
            message_id: text(d, "message_id"),
            event_id: text(d, "event_id"),
            event_type: text(d, "event_type"),
            attempt_count: number(&d["attempt_count"]).unwrap_or(-1),
            last_response_status: number(&d["last_response_status"]),
            status_reason: text(d, "status_reason"),
        }),
    }
}

#[test]
fn every_operational_event_type_has_an_example_body_the_service_really_builds() {
    let doc = page();
    let mut keys = BTreeSet::new();
    for event_type in OPERATIONAL_TYPES {
        let example = example(&doc, event_type);
        assert_eq!(example["type"], *event_type, "example-{event_type}: type");
        let event = alert_from_example(&example).to_event();
        assert_eq!(event.event_type, *event_type);
        let mut real: Value = serde_json::from_str(&event.body).expect("JSON");
        real["data"]["event_id"] = example["data"]["event_id"].clone();
        assert_eq!(
            real,
            example,
            "{PAGE}: example-{event_type} differs from what the service sends:\n{}",
            serde_json::to_string_pretty(&real).unwrap_or_default()
        );
        collect_keys(&real, &mut keys);
        assert!(
            doc.text.contains(&format!("| `{event_type}` |")),
            "{PAGE}: the operational type table lacks {event_type}"
        );
    }
    for key in keys {
        assert!(
            doc.text.contains(&format!("`{key}`")) || doc.text.contains(&format!("`data.{key}`")),
            "{PAGE} never names the body field `{key}`"
        );
    }
}

fn collect_keys(value: &Value, keys: &mut BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            keys.insert(key.clone());
            collect_keys(child, keys);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headers, test vector and stated defaults.
// ---------------------------------------------------------------------------------------------

/// The header names of the page's header table.
fn documented_headers(doc: &Doc) -> BTreeSet<String> {
    markdown::table(doc, "| header | value |")
        .iter()
        .map(|row| unquote(&row[0]).to_owned())
        .collect()
}

/// The user agent the service sends.
fn user_agent() -> String {
    format!("backoffice-webhooks/{}", env!("CARGO_PKG_VERSION"))
}

/// `msg_` and 32 lower-case hex digits.
fn is_message_id(id: &str) -> bool {
    id.strip_prefix("msg_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[test]
fn the_test_vector_is_signed_as_the_service_signs() {
    let doc = page();
    assert!(
        doc.text.contains(VECTOR_SECRET),
        "{PAGE} does not show the vector's secret"
    );
    let block = only_block(&doc, "http", "example-request");
    let (head, body) = block
        .code
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("{}: no blank line before the body", block.at(&doc)));
    let body = body.trim_end_matches('\n');
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    assert!(
        request_line.starts_with("POST /") && request_line.ends_with(" HTTP/1.1"),
        "{}: `{request_line}` is not a POST request line",
        block.at(&doc)
    );
    let headers: BTreeMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("`name: value` header lines");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let names: BTreeSet<String> = headers
        .keys()
        .filter(|n| !TRANSPORT_HEADERS.contains(&n.as_str()))
        .cloned()
        .collect();
    assert_eq!(
        names,
        documented_headers(&doc),
        "the vector's headers are the table's"
    );
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["user-agent"].starts_with("backoffice-webhooks/"),
        "user-agent {}",
        headers["user-agent"]
    );
    assert_eq!(headers["content-length"], body.len().to_string());
    assert!(
        is_message_id(&headers["webhook-id"]),
        "webhook-id {}",
        headers["webhook-id"]
    );
    let secret = Secret::parse_or_generate(VECTOR_SECRET).expect("a valid secret");
    let timestamp: i64 = headers["webhook-timestamp"].parse().expect("unix seconds");
    assert_eq!(
        headers["webhook-signature"],
        sign(
            &headers["webhook-id"],
            timestamp,
            body.as_bytes(),
            &[secret]
        ),
        "{}: the vector's signature is not what the service computes",
        block.at(&doc)
    );
    // The body is a test ping as the page shows it.
    let body: Value = serde_json::from_str(body).expect("the vector's body is JSON");
    assert_eq!(body, example(&doc, "webhook.test"));
}

/// Renders a duration as the page's retry table does: `5 s`, `2 h 35 min 5 s`.
fn human(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return "0".to_owned();
    }
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

#[test]
fn the_stated_defaults_are_the_services() {
    let doc = page();
    let text = markdown::normalized(&doc.text);
    let schedule = serve_default("retry_schedule");
    assert!(
        text.contains(&format!("`{schedule}`")),
        "{PAGE} does not state the default retry schedule `{schedule}`"
    );
    let delays: Vec<Duration> = schedule
        .split(',')
        .map(|d| webhooks::domain::parse_duration(d).expect("a duration"))
        .collect();
    let mut table = String::from(
        "| attempt | after the previous one | after the first one (without jitter) |\n| --- | --- | --- |\n| 1 | immediately | 0 |\n",
    );
    let mut since_first = Duration::ZERO;
    for (i, delay) in delays.iter().enumerate() {
        since_first += *delay;
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            i + 2,
            human(*delay),
            human(since_first)
        ));
    }
    assert!(
        doc.text.contains(&table),
        "{PAGE}: the retry table should read, for the default schedule:\n{table}"
    );
    let timeout = webhooks::domain::parse_duration(&serve_default("request_timeout"))
        .expect("a duration")
        .as_secs();
    assert!(
        text.contains(&format!("**{timeout} seconds**"))
            && text.contains(&format!("within {timeout} seconds")),
        "{PAGE} should state the {timeout}-second request timeout"
    );
    let connect = webhooks::domain::parse_duration(&serve_default("connect_timeout"))
        .expect("a duration")
        .as_secs();
    assert!(
        doc.text
            .contains(&format!("at most {connect} seconds to connect")),
        "{PAGE} should state the {connect}-second connect timeout"
    );
    let cap_kib = webhooks::delivery::RESPONSE_BODY_CAP / 1024;
    assert!(
        text.contains(&format!("up to {cap_kib} KiB")),
        "{PAGE} should state the {cap_kib} KiB response capture"
    );
    let retry_after_hours = webhooks::delivery::RETRY_AFTER_CAP.as_secs() / 3600;
    assert!(
        doc.text
            .contains(&format!("at most {retry_after_hours} hours")),
        "{PAGE} should state the {retry_after_hours}-hour Retry-After cap"
    );
    let number = |id: &str| serve_default(id);
    let seconds = |id: &str| {
        webhooks::domain::parse_duration(&serve_default(id))
            .expect("a duration")
            .as_secs()
    };
    for phrase in [
        format!(
            "After {} consecutive failed attempts",
            number("circuit_breaker_threshold")
        ),
        format!(
            "held back for {} seconds",
            seconds("circuit_breaker_cooldown")
        ),
        format!(
            "has failed for {} days",
            seconds("auto_disable_after") / 86400
        ),
        format!(
            "At most {} requests are in flight",
            number("max_in_flight_per_webhook")
        ),
    ] {
        assert!(
            text.contains(&phrase),
            "{PAGE} should say `{phrase}` (the service's default)"
        );
    }
    let retention_days = seconds("retention") / 86400;
    assert!(
        text.contains(&format!(
            "keeps its history ({retention_days} days by default)"
        )),
        "{PAGE} should state the {retention_days}-day history retention"
    );
    assert!(text.contains("`WEBHOOKS_RETRY_SCHEDULE`"));
    assert!(text.contains("backoffice-webhooks/<version>"));
}

// ---------------------------------------------------------------------------------------------
// The verification snippets.
// ---------------------------------------------------------------------------------------------

/// One request to verify and what the snippets must answer.
#[derive(Clone)]
struct Case {
    name: String,
    secret: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    valid: bool,
}

impl Case {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        json!({
            "secret": self.secret,
            "headers": self.headers,
            "body": STANDARD.encode(&self.body),
        })
    }

    fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(value).expect("header value"),
            );
        }
        map
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn signed(
    name: &str,
    verify_with: &Secret,
    signers: &[Secret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
    valid: bool,
) -> Case {
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_owned(), "application/json".to_owned());
    headers.insert("user-agent".to_owned(), user_agent());
    headers.insert("webhook-id".to_owned(), message_id.to_owned());
    headers.insert("webhook-timestamp".to_owned(), timestamp.to_string());
    headers.insert(
        "webhook-signature".to_owned(),
        sign(message_id, timestamp, body, signers),
    );
    Case {
        name: name.to_owned(),
        secret: verify_with.to_whsec(),
        headers,
        body: body.to_vec(),
        valid,
    }
}

/// Requests signed by the service's own code, genuine and tampered. The body is the page's
/// `withdrawal.rejected` example as the service builds it (non-ASCII included).
fn signature_cases() -> Vec<Case> {
    let doc = page();
    let (event, _) = real_body(&example(&doc, "withdrawal.rejected"));
    let body = event.body.as_bytes().to_vec();
    assert!(
        !event.body.is_ascii(),
        "the signed body should hold non-ASCII text, to catch str/bytes mix-ups"
    );
    let current = Secret::generate();
    let old = Secret::generate();
    let id = format!("msg_{}", Uuid::new_v4().simple());
    let t = now();
    let only = [current.clone()];
    let both = [current.clone(), old.clone()];
    let case = |name: &str, verify_with: &Secret, signers: &[Secret], timestamp: i64, valid| {
        signed(name, verify_with, signers, &id, timestamp, &body, valid)
    };
    let mut cases = vec![
        case("genuine", &current, &only, t, true),
        case("a minute old", &current, &only, t - 60, true),
        case(
            "rotation, receiver on the new secret",
            &current,
            &both,
            t,
            true,
        ),
        case("rotation, receiver on the old secret", &old, &both, t, true),
        case("wrong secret", &old, &only, t, false),
        case("ten minutes old", &current, &only, t - 600, false),
        case("ten minutes ahead", &current, &only, t + 600, false),
    ];
    let genuine = cases[0].clone();
    let mut tampered = genuine.clone();
    tampered.name = "tampered body".into();
    tampered.valid = false;
    let text = String::from_utf8(tampered.body.clone()).expect("UTF-8");
    assert!(text.contains("\"300.00\""));
    tampered.body = text.replace("\"300.00\"", "\"900.00\"").into_bytes();
    cases.push(tampered);
    let mut other_id = genuine.clone();
    other_id.name = "webhook-id changed".into();
    other_id.valid = false;
    other_id.headers.insert(
        "webhook-id".into(),
        format!("msg_{}", Uuid::new_v4().simple()),
    );
    cases.push(other_id);
    let mut retimed = genuine.clone();
    retimed.name = "webhook-timestamp changed".into();
    retimed.valid = false;
    retimed
        .headers
        .insert("webhook-timestamp".into(), (t - 1).to_string());
    cases.push(retimed);
    let mut other_scheme = genuine.clone();
    other_scheme.name = "only a signature of another scheme".into();
    other_scheme.valid = false;
    let signature = genuine.header("webhook-signature").replace("v1,", "v1a,");
    other_scheme
        .headers
        .insert("webhook-signature".into(), signature);
    cases.push(other_scheme);
    let mut garbage_first = genuine.clone();
    garbage_first.name = "garbage before a valid signature".into();
    let signature = format!("v1,not*base64! {}", genuine.header("webhook-signature"));
    garbage_first
        .headers
        .insert("webhook-signature".into(), signature);
    cases.push(garbage_first);
    let mut unsigned = genuine.clone();
    unsigned.name = "no webhook-signature header".into();
    unsigned.valid = false;
    unsigned.headers.remove("webhook-signature");
    cases.push(unsigned);
    let mut empty_body = genuine;
    empty_body.name = "empty body".into();
    empty_body.valid = false;
    empty_body.body = Vec::new();
    cases.push(empty_body);
    cases
}

fn assert_verdicts(who: &str, cases: &[Case], verdicts: &[bool]) {
    assert_eq!(
        verdicts.len(),
        cases.len(),
        "{who} answered {} verdicts for {} requests",
        verdicts.len(),
        cases.len()
    );
    for (case, verdict) in cases.iter().zip(verdicts) {
        assert_eq!(
            *verdict,
            case.valid,
            "{who}: `{}` should be {}",
            case.name,
            if case.valid { "accepted" } else { "rejected" }
        );
    }
}

const PYTHON_HARNESS: &str = r#"
import base64, json, sys
sys.path.insert(0, sys.argv[1])
from verify_snippet import verify_webhook
verdicts = []
for case in json.load(sys.stdin):
    verdict = verify_webhook(case["secret"], case["headers"], base64.b64decode(case["body"]))
    if not isinstance(verdict, bool):
        raise SystemExit("verify_webhook returned %r, not a bool" % (verdict,))
    verdicts.append(verdict)
print(json.dumps(verdicts))
"#;

const NODE_HARNESS: &str = r#"
const path = require("node:path");
const { verifyWebhook } = require(path.resolve(process.argv[2]));
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const verdicts = JSON.parse(input).map((c) => {
    const verdict = verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "base64"));
    if (typeof verdict !== "boolean") {
      throw new Error(`verifyWebhook returned ${verdict}, not a boolean`);
    }
    return verdict;
  });
  console.log(JSON.stringify(verdicts));
});
"#;

/// Runs the page's Python snippet on every case.
async fn python_verdicts(cases: &[Case]) -> Vec<bool> {
    let doc = page();
    let snippet = only_block(&doc, "python", "verify");
    let dir = support::scratch_dir("python");
    support::write(&dir, "verify_snippet.py", &snippet.code);
    let harness = support::write(&dir, "harness.py", PYTHON_HARNESS);
    run_harness("python3", &harness, &dir, cases).await
}

/// Runs the page's Node.js snippet on every case.
async fn node_verdicts(cases: &[Case]) -> Vec<bool> {
    let doc = page();
    let snippet = only_block(&doc, "js", "verify");
    let dir = support::scratch_dir("node");
    let module = support::write(&dir, "verify_snippet.js", &snippet.code);
    let harness = support::write(&dir, "harness.js", NODE_HARNESS);
    run_harness("node", &harness, &module, cases).await
}

async fn run_harness(program: &str, harness: &Path, arg: &Path, cases: &[Case]) -> Vec<bool> {
    let input = Value::Array(cases.iter().map(Case::to_json).collect()).to_string();
    let run = support::run(
        program,
        &[&harness.display().to_string(), &arg.display().to_string()],
        input.as_bytes(),
        &[],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "the {program} snippet failed: {}",
        run.describe()
    );
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the {program} harness printed no verdicts ({e}): {}",
            run.describe()
        )
    })
}

fn rust_verdicts(cases: &[Case]) -> Vec<bool> {
    cases
        .iter()
        .map(|case| {
            verify_snippet::verify_webhook(
                &case.secret,
                case.header("webhook-id"),
                case.header("webhook-timestamp"),
                case.header("webhook-signature"),
                &case.body,
            )
            .is_ok()
        })
        .collect()
}

fn library_verdicts(cases: &[Case]) -> Vec<bool> {
    cases
        .iter()
        .map(|case| {
            library_snippet::verify_with_library(&case.secret, &case.header_map(), &case.body)
                .is_ok()
        })
        .collect()
}

#[tokio::test]
async fn the_python_snippet_accepts_genuine_requests_and_rejects_tampered_ones() {
    support::require_tool("python3", &["--version"]).await;
    let cases = signature_cases();
    assert_verdicts("the Python snippet", &cases, &python_verdicts(&cases).await);
}

#[tokio::test]
async fn the_node_snippet_accepts_genuine_requests_and_rejects_tampered_ones() {
    support::require_tool("node", &["--version"]).await;
    let cases = signature_cases();
    assert_verdicts("the Node.js snippet", &cases, &node_verdicts(&cases).await);
}

/// The Rust blocks of the page are the files this test binary compiles, byte for byte.
#[test]
fn the_rust_snippets_are_the_compiled_files() {
    let doc = page();
    for (marker, file, source) in [
        (
            "verify",
            "verify_snippet.rs",
            include_str!("verify_snippet.rs"),
        ),
        (
            "library",
            "library_snippet.rs",
            include_str!("library_snippet.rs"),
        ),
    ] {
        let block = only_block(&doc, "rust", marker);
        assert!(
            block.code == source,
            "{}: the ```rust {marker} block must be exactly tests/docs/{file} (which the tests \
             compile and run); copy the file into the page",
            block.at(&doc)
        );
    }
}

#[test]
fn the_rust_snippets_accept_genuine_requests_and_reject_tampered_ones() {
    let cases = signature_cases();
    assert_verdicts("the Rust snippet", &cases, &rust_verdicts(&cases));
    // The library has no header-less mode to test and treats an empty body like any other.
    assert_verdicts(
        "the standardwebhooks crate",
        &cases,
        &library_verdicts(&cases),
    );
}

/// The Python and Node.js library snippets need packages the build machines do not install:
/// they are compiled (syntax-checked) only.
#[tokio::test]
async fn the_library_snippets_for_python_and_node_are_valid_code() {
    support::require_tool("python3", &["--version"]).await;
    support::require_tool("node", &["--version"]).await;
    let doc = page();
    let dir = support::scratch_dir("library");
    let python = support::write(
        &dir,
        "library.py",
        &only_block(&doc, "python", "library").code,
    );
    let run = support::run(
        "python3",
        &["-m", "py_compile", &python.display().to_string()],
        b"",
        &[],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "the Python library snippet does not compile: {}",
        run.describe()
    );
    let node = support::write(&dir, "library.mjs", &only_block(&doc, "js", "library").code);
    let run = support::run(
        "node",
        &["--check", &node.display().to_string()],
        b"",
        &[],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "the Node.js library snippet does not parse: {}",
        run.describe()
    );
    // And they call the libraries as the table says.
    for (lang, call) in [
        ("python", "Webhook(secret).verify(body, headers)"),
        ("js", "new Webhook(secret).verify(rawBody, headers)"),
    ] {
        assert!(
            only_block(&doc, lang, "library").code.contains(call),
            "the {lang} library snippet should call `{call}`"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Real deliveries.
// ---------------------------------------------------------------------------------------------

/// A delivery a receiver got, as a case the snippets must accept with `secret`.
fn case_from(received: &testkit::Received, secret: &str, name: &str) -> Case {
    let headers = received
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    Case {
        name: name.to_owned(),
        secret: secret.to_owned(),
        headers,
        body: received.body.to_vec(),
        valid: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_deliveries_carry_the_documented_headers_and_verify_with_every_snippet() {
    support::require_tool("python3", &["--version"]).await;
    support::require_tool("node", &["--version"]).await;
    let doc = page();
    // The first attempt fails, so the delivery is retried.
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500)]);
    let app = TestApp::spawn(&[]).await;
    let created = app
        .admin
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(pb::Webhook {
                name: "Docs receiver".into(),
                destination_url: format!("{}/hooks/withdrawals", receiver.url("")),
                function: pb::Function::Withdrawal as i32,
                events: Some(pb::EventSelection {
                    approval_nodes: vec![1],
                    rejection: true,
                }),
                ..Default::default()
            }),
            secret: String::new(),
            ..Default::default()
        })
        .await
        .expect("webhook created")
        .into_inner();
    let secret = created.secret.clone();
    let webhook_id = created.webhook.expect("a webhook").id;

    // The page's withdrawal.rejected example, published for real.
    let example = example(&doc, "withdrawal.rejected");
    let published = app
        .ingest
        .clone()
        .publish_event(request_from_example(&example))
        .await
        .expect("published")
        .into_inner();
    assert_eq!(published.delivery_ids.len(), 1, "{published:?}");
    let delivery_id = Uuid::try_parse(&published.delivery_ids[0]).expect("a UUID");
    let received = receiver
        .wait_until("2 requests", |all| all.len() >= 2)
        .await;
    let (first, second) = (&received[0], &received[1]);

    // Headers: the table's, with the documented values.
    let documented = documented_headers(&doc);
    let sent: BTreeSet<String> = first
        .headers
        .keys()
        .map(|n| n.as_str().to_owned())
        .filter(|n| !TRANSPORT_HEADERS.contains(&n.as_str()))
        .collect();
    assert_eq!(
        sent, documented,
        "{PAGE}: the header table is not what the service sends"
    );
    for attempt in [first, second] {
        assert_eq!(attempt.header("content-type"), "application/json");
        assert_eq!(attempt.header("user-agent"), user_agent());
        assert_eq!(
            attempt.header("webhook-id"),
            format!("msg_{}", delivery_id.simple()),
            "webhook-id is msg_ + the delivery id without hyphens"
        );
        assert!(is_message_id(&attempt.header("webhook-id")));
        let timestamp: i64 = attempt
            .header("webhook-timestamp")
            .parse()
            .expect("seconds");
        assert!(
            (now() - timestamp).abs() < 120,
            "webhook-timestamp {timestamp} is not now"
        );
        let signatures = attempt.header("webhook-signature");
        assert!(
            signatures.starts_with("v1,") && !signatures.contains(' '),
            "one v1 signature outside a rotation: {signatures}"
        );
    }
    assert_eq!(first.body, second.body, "a retry sends the same body");
    let body: Value = serde_json::from_slice(&first.body).expect("JSON");
    let mut expected = example.clone();
    expected["data"]["event_id"] = body["data"]["event_id"].clone();
    assert_eq!(body, expected, "the delivered body is the page's example");

    // A rotation: the test ping carries both signatures; both secrets verify it.
    let rotated = app
        .admin
        .clone()
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id: webhook_id.clone(),
            secret: String::new(),
            grace_period: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("rotated")
        .into_inner();
    app.admin
        .clone()
        .send_test_event(pb::SendTestEventRequest {
            webhook_id: webhook_id.clone(),
            ..Default::default()
        })
        .await
        .expect("test event sent");
    let received = receiver
        .wait_until("3 requests", |all| all.len() >= 3)
        .await;
    let ping = &received[2];
    assert_eq!(
        ping.header("webhook-signature").split(' ').count(),
        2,
        "two signatures during the grace period: {}",
        ping.header("webhook-signature")
    );
    let ping_body: Value = serde_json::from_slice(&ping.body).expect("JSON");
    assert_eq!(ping_body["type"], "webhook.test");
    assert_eq!(ping_body["data"]["webhook_id"], webhook_id.as_str());

    let cases = vec![
        case_from(first, &secret, "first attempt"),
        case_from(second, &secret, "retry"),
        case_from(ping, &rotated.secret, "ping, new secret"),
        case_from(ping, &secret, "ping, old secret"),
    ];
    assert_verdicts("the Python snippet", &cases, &python_verdicts(&cases).await);
    assert_verdicts("the Node.js snippet", &cases, &node_verdicts(&cases).await);
    assert_verdicts("the Rust snippet", &cases, &rust_verdicts(&cases));
    assert_verdicts(
        "the standardwebhooks crate",
        &cases,
        &library_verdicts(&cases),
    );
    app.stop().await;
}
