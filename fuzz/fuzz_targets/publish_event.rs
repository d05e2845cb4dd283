//! The PublishEvent decoder and validator: arbitrary bytes decoded as a `PublishEventRequest`
//! (as tonic would), then `api::convert::published_event` (`PublishedEvent::parse` on its plain
//! input). An accepted event must carry a JSON body whose
//! `type` matches its decision and function, and amounts must be decimal strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::Value;
use webhooks::api::convert;
use webhooks::domain::Decision;
use webhooks::proto::v1 as pb;

fn is_decimal(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    if text.is_empty() {
        return true;
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = pb::PublishEventRequest::decode(data) else {
        return;
    };
    let prefix = if data.len() % 2 == 0 {
        ""
    } else {
        "events[7]."
    };
    let event = match convert::published_event(&request, prefix) {
        Ok(event) => event,
        Err(error) => {
            assert!(error.field.starts_with(prefix), "{error:?}");
            return;
        }
    };
    let body: Value = serde_json::from_str(&event.body).expect("the body is JSON");
    assert_eq!(body["type"], event.event_type.as_str());
    let (verb, node) = match event.decision {
        Decision::Approved { node } => ("approved", Value::from(node)),
        Decision::Rejected => ("rejected", Value::Null),
    };
    assert_eq!(request.decision, if verb == "approved" { 1 } else { 2 });
    assert_eq!(
        event.event_type,
        format!("{}.{verb}", event.function.event_prefix())
    );
    assert_eq!(body["data"]["decision"], verb);
    assert_eq!(body["data"]["approval_node"], node);
    assert_eq!(event.idempotency_key, request.idempotency_key);
    let data = &body["data"];
    let inner = [
        "withdrawal",
        "prop_trading_participation",
        "prop_trading_live_stage",
    ]
    .iter()
    .find_map(|key| data.get(*key))
    .expect("the body carries the request");
    assert_eq!(inner["id"], event.request_id.as_str());
    assert!(!event.request_id.is_empty());
    for amount in ["amount", "account_size", "fee"] {
        if let Some(value) = inner.get(amount) {
            assert!(is_decimal(value), "{amount} = {value}");
        }
    }
});
