//! Output of the client commands: the proto messages as JSON for scripts (`--output json`) and
//! aligned text for people (`--output table`).
//!
//! prost messages do not implement serde, so the JSON is written out field by field: proto field
//! names in snake_case, every field present (unset messages as `null`), enums by their proto
//! names (`"DELIVERY_STATUS_SUCCEEDED"`, or the number when unknown), timestamps in RFC 3339 and
//! durations as proto JSON does (`"1.500s"`).

use std::fmt::Write as _;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::proto::v1 as pb;

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

macro_rules! enum_json {
    ($name:ident, $ty:ty) => {
        /// The proto name of the enum value, or the number when this build does not know it.
        pub fn $name(value: i32) -> Value {
            match <$ty>::try_from(value) {
                Ok(known) => Value::from(known.as_str_name()),
                Err(_) => Value::from(value),
            }
        }
    };
}

enum_json!(function_json, pb::Function);
enum_json!(status_json, pb::DeliveryStatus);
enum_json!(error_kind_json, pb::AttemptErrorKind);
enum_json!(trigger_json, pb::AttemptTrigger);
enum_json!(update_kind_json, pb::UpdateKind);

/// A timestamp in RFC 3339 (UTC), or `null` when unset.
pub fn timestamp_json(ts: Option<&prost_types::Timestamp>) -> Value {
    ts.map_or(Value::Null, |ts| Value::from(rfc3339(ts)))
}

/// RFC 3339 text of a timestamp (UTC); the raw seconds when it is out of range.
pub fn rfc3339(ts: &prost_types::Timestamp) -> String {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{}s since the Unix epoch", ts.seconds))
}

/// A duration as proto JSON writes it (`"1.500s"`: 0, 3, 6 or 9 fractional digits), or `null`.
pub fn duration_json(duration: Option<&prost_types::Duration>) -> Value {
    duration.map_or(Value::Null, |d| {
        let negative = d.seconds < 0 || d.nanos < 0;
        let seconds = d.seconds.unsigned_abs();
        let nanos = d.nanos.unsigned_abs();
        let fraction = if nanos == 0 {
            String::new()
        } else if nanos % 1_000_000 == 0 {
            format!(".{:03}", nanos / 1_000_000)
        } else if nanos % 1_000 == 0 {
            format!(".{:06}", nanos / 1_000)
        } else {
            format!(".{nanos:09}")
        };
        Value::from(format!(
            "{}{seconds}{fraction}s",
            if negative { "-" } else { "" }
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Messages as JSON
// ---------------------------------------------------------------------------------------------

/// `EventSelection` as JSON.
pub fn events_json(events: Option<&pb::EventSelection>) -> Value {
    events.map_or(
        Value::Null,
        |e| json!({ "approval_nodes": e.approval_nodes, "rejection": e.rejection }),
    )
}

/// `Webhook` as JSON.
pub fn webhook_json(w: &pb::Webhook) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "destination_url": w.destination_url,
        "function": function_json(w.function),
        "events": events_json(w.events.as_ref()),
        "enabled": w.enabled,
        "description": w.description,
        "secret_hint": w.secret_hint,
        "deliver_once_per_request": w.deliver_once_per_request,
        "created_at": timestamp_json(w.created_at.as_ref()),
        "updated_at": timestamp_json(w.updated_at.as_ref()),
        "disabled_reason": w.disabled_reason,
        "disabled_at": timestamp_json(w.disabled_at.as_ref()),
        "headers": w
            .headers
            .iter()
            .map(|h| json!({ "name": h.name, "value_hint": h.value_hint }))
            .collect::<Vec<_>>(),
        "client_certificate": w.client_certificate.as_ref().map_or(Value::Null, certificate_json),
        "server_ca": w.server_ca.as_ref().map_or(Value::Null, certificate_json),
    })
}

/// `CertificateInfo` as JSON.
fn certificate_json(c: &pb::CertificateInfo) -> Value {
    json!({
        "subject": c.subject,
        "issuer": c.issuer,
        "not_after": timestamp_json(c.not_after.as_ref()),
    })
}

/// A certificate in one line: its subject and expiry.
fn certificate_label(c: &pb::CertificateInfo) -> String {
    format!(
        "{} (expires {})",
        c.subject,
        time_label(c.not_after.as_ref())
    )
}

/// `CreateWebhookResponse` as JSON.
pub fn create_response_json(r: &pb::CreateWebhookResponse) -> Value {
    json!({
        "webhook": r.webhook.as_ref().map_or(Value::Null, webhook_json),
        "secret": r.secret,
    })
}

/// `RotateWebhookSecretResponse` as JSON.
pub fn rotate_response_json(r: &pb::RotateWebhookSecretResponse) -> Value {
    json!({
        "webhook": r.webhook.as_ref().map_or(Value::Null, webhook_json),
        "secret": r.secret,
    })
}

/// `ListWebhooksResponse` as JSON.
pub fn list_webhooks_json(r: &pb::ListWebhooksResponse) -> Value {
    json!({
        "webhooks": r.webhooks.iter().map(webhook_json).collect::<Vec<_>>(),
        "next_page_token": r.next_page_token,
    })
}

/// `HttpHeader`s as JSON.
fn headers_json(headers: &[pb::HttpHeader]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!({ "name": h.name, "value": h.value }))
            .collect(),
    )
}

/// `DeliveryAttempt` as JSON.
pub fn attempt_json(a: &pb::DeliveryAttempt) -> Value {
    json!({
        "id": a.id,
        "attempt_number": a.attempt_number,
        "trigger": trigger_json(a.trigger),
        "started_at": timestamp_json(a.started_at.as_ref()),
        "duration": duration_json(a.duration.as_ref()),
        "request_url": a.request_url,
        "request_headers": headers_json(&a.request_headers),
        "request_body": a.request_body,
        "response_status": a.response_status,
        "response_headers": headers_json(&a.response_headers),
        "response_body": a.response_body,
        "response_body_truncated": a.response_body_truncated,
        "error_kind": error_kind_json(a.error_kind),
        "error_message": a.error_message,
        "succeeded": a.succeeded,
    })
}

/// `Delivery` as JSON (with its attempts, when the message has them).
pub fn delivery_json(d: &pb::Delivery) -> Value {
    json!({
        "id": d.id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "request_id": d.request_id,
        "function": function_json(d.function),
        "status": status_json(d.status),
        "status_reason": d.status_reason,
        "attempt_count": d.attempt_count,
        "next_attempt_at": timestamp_json(d.next_attempt_at.as_ref()),
        "last_response_status": d.last_response_status,
        "created_at": timestamp_json(d.created_at.as_ref()),
        "updated_at": timestamp_json(d.updated_at.as_ref()),
        "payload": d.payload,
        "attempts": d.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
        "message_id": d.message_id,
    })
}

/// `ListDeliveriesResponse` as JSON.
pub fn list_deliveries_json(r: &pb::ListDeliveriesResponse) -> Value {
    json!({
        "deliveries": r.deliveries.iter().map(delivery_json).collect::<Vec<_>>(),
        "next_page_token": r.next_page_token,
    })
}

/// `DeliveryUpdate` as JSON.
pub fn update_json(u: &pb::DeliveryUpdate) -> Value {
    json!({
        "cursor": u.cursor,
        "kind": update_kind_json(u.kind),
        "delivery": u.delivery.as_ref().map_or(Value::Null, delivery_json),
        "attempt": u.attempt.as_ref().map_or(Value::Null, attempt_json),
    })
}

/// `RecoverFailedDeliveriesResponse` as JSON.
pub fn recover_json(r: &pb::RecoverFailedDeliveriesResponse) -> Value {
    json!({ "recovered": r.recovered })
}

/// `PublishEventResponse` as JSON.
pub fn publish_response_json(r: &pb::PublishEventResponse) -> Value {
    json!({
        "event_id": r.event_id,
        "delivery_ids": r.delivery_ids,
        "duplicate": r.duplicate,
        "event_type": r.event_type,
    })
}

/// `google.protobuf.Empty` as JSON.
pub fn empty_json() -> Value {
    json!({})
}

/// Prints a JSON document on stdout (indented; `deliveries watch` prints compact lines itself).
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A Value always serialises; fall back to the compact form all the same.
        Err(_) => println!("{value}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Text for people
// ---------------------------------------------------------------------------------------------

/// A proto enum name without its prefix, lower-case with dashes: `DELIVERY_STATUS_SUCCEEDED`
/// with prefix `DELIVERY_STATUS_` is `succeeded`.
fn label(value: &Value, prefix: &str) -> String {
    match value {
        Value::String(name) => name
            .strip_prefix(prefix)
            .unwrap_or(name)
            .to_ascii_lowercase()
            .replace('_', "-"),
        other => other.to_string(),
    }
}

/// `withdrawal`, `prop-trading-participation`, ... (the `--function` values).
pub fn function_label(value: i32) -> String {
    label(&function_json(value), "FUNCTION_")
}

/// `pending`, `succeeded`, ...
pub fn status_label(value: i32) -> String {
    label(&status_json(value), "DELIVERY_STATUS_")
}

/// `scheduled`, `resend`, `recover`.
pub fn trigger_label(value: i32) -> String {
    label(&trigger_json(value), "ATTEMPT_TRIGGER_")
}

/// `timeout`, `connect`, `status`, ...
pub fn error_kind_label(value: i32) -> String {
    label(&error_kind_json(value), "ATTEMPT_ERROR_KIND_")
}

/// `created`, `attempt-succeeded`, ...
pub fn update_kind_label(value: i32) -> String {
    label(&update_kind_json(value), "UPDATE_KIND_")
}

/// RFC 3339 text or `-`.
pub fn time_label(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| "-".to_owned(), rfc3339)
}

/// `12ms`, `1.52s` or `-`.
pub fn duration_label(duration: Option<&prost_types::Duration>) -> String {
    match duration {
        None => "-".to_owned(),
        Some(d) => {
            let millis = d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1_000_000.0;
            if millis < 1000.0 {
                format!("{millis:.0}ms")
            } else {
                format!("{:.2}s", millis / 1000.0)
            }
        }
    }
}

/// `node 1, node 2, rejection`.
pub fn events_label(events: Option<&pb::EventSelection>) -> String {
    let Some(events) = events else {
        return "-".to_owned();
    };
    let mut parts: Vec<String> = events
        .approval_nodes
        .iter()
        .map(|n| format!("node {n}"))
        .collect();
    if events.rejection {
        parts.push("rejection".to_owned());
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `yes`/`no`.
pub fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// Columns padded to their widest cell; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate().take(columns) {
            if i + 1 == columns {
                text.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `key: value` lines with the values aligned.
pub fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let pad = width - key.chars().count();
        let _ = writeln!(out, "{key}:{}  {value}", " ".repeat(pad));
    }
    out
}

/// A webhook as `key: value` lines.
pub fn webhook_details(w: &pb::Webhook) -> String {
    let mut pairs = vec![
        ("id", w.id.clone()),
        ("name", w.name.clone()),
        ("url", w.destination_url.clone()),
        ("function", function_label(w.function)),
        ("events", events_label(w.events.as_ref())),
        ("enabled", yes_no(w.enabled).to_owned()),
    ];
    if !w.enabled && !w.disabled_reason.is_empty() {
        pairs.push((
            "disabled",
            format!(
                "{} (at {})",
                w.disabled_reason,
                time_label(w.disabled_at.as_ref())
            ),
        ));
    }
    pairs.extend([
        (
            "once per request",
            yes_no(w.deliver_once_per_request).to_owned(),
        ),
        ("description", w.description.clone()),
        ("secret", w.secret_hint.clone()),
    ]);
    if !w.headers.is_empty() {
        let headers: Vec<String> = w
            .headers
            .iter()
            .map(|h| format!("{}: {}", h.name, h.value_hint))
            .collect();
        pairs.push(("headers", headers.join(", ")));
    }
    if let Some(certificate) = &w.client_certificate {
        pairs.push(("client cert", certificate_label(certificate)));
    }
    if let Some(ca) = &w.server_ca {
        pairs.push(("server CA", certificate_label(ca)));
    }
    pairs.extend([
        ("created", time_label(w.created_at.as_ref())),
        ("updated", time_label(w.updated_at.as_ref())),
    ]);
    details(&pairs)
}

/// A table of webhooks.
pub fn webhooks_table(webhooks: &[pb::Webhook]) -> String {
    let rows: Vec<Vec<String>> = webhooks
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.name.clone(),
                function_label(w.function),
                events_label(w.events.as_ref()),
                yes_no(w.enabled).to_owned(),
                w.destination_url.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "FUNCTION", "EVENTS", "ENABLED", "URL"],
        &rows,
    )
}

/// A table of deliveries.
pub fn deliveries_table(deliveries: &[pb::Delivery]) -> String {
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                status_label(d.status),
                d.event_type.clone(),
                or_dash(&d.request_id),
                d.attempt_count.to_string(),
                http_label(d.last_response_status),
                time_label(d.created_at.as_ref()),
                d.webhook_id.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "EVENT TYPE",
            "REQUEST",
            "ATTEMPTS",
            "LAST HTTP",
            "CREATED",
            "WEBHOOK",
        ],
        &rows,
    )
}

fn or_dash(value: &str) -> String {
    if value.is_empty() {
        "-".to_owned()
    } else {
        value.to_owned()
    }
}

fn http_label(status: u32) -> String {
    if status == 0 {
        "-".to_owned()
    } else {
        status.to_string()
    }
}

/// A delivery as `key: value` lines, without its attempts.
pub fn delivery_details(d: &pb::Delivery) -> String {
    let mut pairs = vec![
        ("id", d.id.clone()),
        ("webhook-id header", d.message_id.clone()),
        ("webhook", d.webhook_id.clone()),
        ("event", format!("{} ({})", d.event_type, d.event_id)),
        ("request", or_dash(&d.request_id)),
        ("function", function_label(d.function)),
        ("status", status_label(d.status)),
    ];
    if !d.status_reason.is_empty() {
        pairs.push(("reason", d.status_reason.clone()));
    }
    pairs.extend([
        ("attempts", d.attempt_count.to_string()),
        ("last HTTP status", http_label(d.last_response_status)),
    ]);
    if d.next_attempt_at.is_some() {
        pairs.push(("next attempt", time_label(d.next_attempt_at.as_ref())));
    }
    pairs.extend([
        ("created", time_label(d.created_at.as_ref())),
        ("updated", time_label(d.updated_at.as_ref())),
    ]);
    details(&pairs)
}

/// A body for reading: pretty JSON when it is JSON, else as is.
pub fn pretty_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| body.to_owned()),
        Err(_) => body.to_owned(),
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|line| format!("{by}{line}\n"))
        .collect::<String>()
}

/// A delivery with its payload and every attempt's request and response.
pub fn delivery_report(d: &pb::Delivery) -> String {
    let mut out = delivery_details(d);
    let _ = writeln!(
        out,
        "\npayload:\n{}",
        indent(&pretty_body(&d.payload), "  ")
    );
    if d.attempts.is_empty() {
        out.push_str("no attempts yet\n");
    }
    for a in &d.attempts {
        let outcome = if a.succeeded {
            "succeeded".to_owned()
        } else {
            format!("failed ({})", error_kind_label(a.error_kind))
        };
        let _ = writeln!(
            out,
            "attempt {} ({}) at {}, took {}: {outcome}",
            a.attempt_number,
            trigger_label(a.trigger),
            time_label(a.started_at.as_ref()),
            duration_label(a.duration.as_ref()),
        );
        let _ = writeln!(out, "  request: POST {}", a.request_url);
        for h in &a.request_headers {
            let _ = writeln!(out, "    {}: {}", h.name, h.value);
        }
        if !a.request_body.is_empty() {
            out.push_str(&indent(&pretty_body(&a.request_body), "    "));
        }
        if a.response_status == 0 {
            out.push_str("  response: none\n");
        } else {
            let _ = writeln!(out, "  response: HTTP {}", a.response_status);
            for h in &a.response_headers {
                let _ = writeln!(out, "    {}: {}", h.name, h.value);
            }
            if !a.response_body.is_empty() {
                out.push_str(&indent(&pretty_body(&a.response_body), "    "));
                if a.response_body_truncated {
                    out.push_str("    (body truncated)\n");
                }
            }
        }
        if !a.error_message.is_empty() {
            let _ = writeln!(out, "  error: {}", a.error_message);
        }
    }
    out
}

/// One line per delivery update, for `deliveries watch`.
pub fn update_line(u: &pb::DeliveryUpdate) -> String {
    let mut line = String::new();
    let default = pb::Delivery::default();
    let d = u.delivery.as_ref().unwrap_or(&default);
    let at = u
        .attempt
        .as_ref()
        .and_then(|a| a.started_at.as_ref())
        .or(d.updated_at.as_ref());
    let _ = write!(
        line,
        "{}  cursor={}  {}  delivery={}  {}  status={}  attempts={}",
        time_label(at),
        u.cursor,
        update_kind_label(u.kind),
        d.id,
        d.event_type,
        status_label(d.status),
        d.attempt_count,
    );
    if !d.request_id.is_empty() {
        let _ = write!(line, "  request={}", d.request_id);
    }
    if let Some(a) = &u.attempt {
        if a.response_status != 0 {
            let _ = write!(line, "  http={}", a.response_status);
        }
        if a.duration.is_some() {
            let _ = write!(line, "  took={}", duration_label(a.duration.as_ref()));
        }
        if !a.error_message.is_empty() {
            let _ = write!(line, "  error=\"{}\"", a.error_message);
        }
    }
    let _ = write!(line, "  webhook={}", d.webhook_id);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_times_and_durations_look_like_proto_json() {
        assert_eq!(
            status_json(pb::DeliveryStatus::Succeeded as i32),
            "DELIVERY_STATUS_SUCCEEDED"
        );
        assert_eq!(status_json(99), 99);
        assert_eq!(
            function_label(pb::Function::PropTradingLiveStage as i32),
            "prop-trading-live-stage"
        );
        let ts = prost_types::Timestamp {
            seconds: 1_748_772_000,
            nanos: 0,
        };
        assert_eq!(timestamp_json(Some(&ts)), "2025-06-01T10:00:00Z");
        assert_eq!(timestamp_json(None), Value::Null);
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration_json(Some(&d(1, 500_000_000))), "1.500s");
        assert_eq!(duration_json(Some(&d(0, 1_000))), "0.000001s");
        assert_eq!(duration_json(Some(&d(3, 0))), "3s");
        assert_eq!(duration_label(Some(&d(0, 12_000_000))), "12ms");
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "short".into()],
                vec!["22222".into(), "x".into()],
            ],
        );
        assert_eq!(text, "ID     NAME\n1      short\n22222  x\n");
    }
}
