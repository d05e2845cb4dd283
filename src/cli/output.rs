//! Output of the client commands: the proto messages as JSON for scripts (`--output json`) and
//! aligned text for people (`--output table`).
//!
//! The JSON is the canonical proto3 JSON mapping, exactly as grpcurl prints it: lowerCamelCase
//! field names, enums by their proto names (the number when this build does not know the value),
//! timestamps in RFC 3339, durations as `"1.500s"`, 64-bit integers as strings, and fields that
//! hold their default value (empty strings, zeros, `false`, empty lists, unset messages) left out.
//! It is not written field by field: each prost message is re-read as a
//! [`DynamicMessage`] over the descriptor set the build embeds
//! ([`webhooks_client::FILE_DESCRIPTOR_SET`], of the same files reflection serves to grpcurl) and serialised
//! by prost-reflect, so a field added to a `.proto` file shows up here without a code change.
//! The same mapping parses `events publish --file` (see [`message_from_json`]).

use std::fmt::Write as _;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CliError;
use webhooks_client::v1 as pb;

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

/// RFC 3339 text of a timestamp (UTC); the raw seconds when it is out of range.
pub fn rfc3339(ts: &prost_types::Timestamp) -> String {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{}s since the Unix epoch", ts.seconds))
}

// ---------------------------------------------------------------------------------------------
// Messages as proto3 JSON
// ---------------------------------------------------------------------------------------------

/// The descriptors of every message of the API, decoded once from the embedded descriptor set.
fn pool() -> Result<&'static DescriptorPool, CliError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(webhooks_client::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        CliError::Other(format!(
            "this build's protobuf descriptors are unreadable: {e}"
        ))
    })
}

/// The options grpcurl prints with (without `-emit-defaults`): lowerCamelCase names, enums by
/// name, default values left out.
fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(false)
        .use_enum_numbers(false)
        .skip_default_fields(true)
        .stringify_64_bit_integers(true)
}

/// A prost message re-read as a dynamic message of the same type (encoded, then decoded with
/// its descriptor).
fn dynamic<M: prost::Message + prost::Name>(message: &M) -> Result<DynamicMessage, CliError> {
    let name = M::full_name();
    let descriptor = pool()?
        .get_message_by_name(&name)
        .ok_or_else(|| CliError::Other(format!("no descriptor for {name} in this build")))?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| CliError::Other(format!("re-reading a {name} failed: {e}")))
}

/// A message as proto3 JSON text, in the field order of its `.proto` file: indented (as grpcurl
/// prints it) or on one line.
pub fn json_text<M: prost::Message + prost::Name>(
    message: &M,
    pretty: bool,
) -> Result<String, CliError> {
    let message = dynamic(message)?;
    let mut out = Vec::new();
    let written = if pretty {
        let mut serializer = serde_json::Serializer::pretty(&mut out);
        message.serialize_with_options(&mut serializer, &serialize_options())
    } else {
        let mut serializer = serde_json::Serializer::new(&mut out);
        message.serialize_with_options(&mut serializer, &serialize_options())
    };
    written
        .map_err(|e| CliError::Other(format!("writing {} as JSON failed: {e}", M::full_name())))?;
    String::from_utf8(out).map_err(|e| CliError::Other(format!("JSON that is not UTF-8: {e}")))
}

/// A message as a proto3 JSON value (object keys sorted: for checks, not for printing).
pub fn message_json<M: prost::Message + prost::Name>(message: &M) -> Result<Value, CliError> {
    let text = json_text(message, false)?;
    serde_json::from_str(&text).map_err(|e| CliError::Other(format!("unreadable JSON: {e}")))
}

/// Prints a message on stdout as indented proto3 JSON (`deliveries watch` prints one
/// [`json_text`] line per update instead).
pub fn print_json<M: prost::Message + prost::Name>(message: &M) -> Result<(), CliError> {
    println!("{}", json_text(message, true)?);
    Ok(())
}

/// Prints `google.protobuf.Empty` as JSON (`{}`, as grpcurl does).
pub fn print_empty_json() {
    println!("{{}}");
}

/// Parses proto3 JSON into a prost message, through its descriptor: field names in
/// lowerCamelCase or as in the `.proto` file (snake_case), enums by name or number, timestamps
/// in RFC 3339, 64-bit integers as numbers or strings. Unknown fields are refused, so a typo
/// does not silently drop data.
pub fn message_from_json<M: prost::Message + prost::Name + Default>(
    text: &str,
) -> Result<M, String> {
    let name = M::full_name();
    let descriptor = pool()
        .map_err(|e| e.message())?
        .get_message_by_name(&name)
        .ok_or_else(|| format!("no descriptor for {name} in this build"))?;
    let mut json = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let parsed = DynamicMessage::deserialize_with_options(
        descriptor,
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &options,
    );
    let message = parsed.map_err(|e| {
        let path = track.path().to_string();
        if path.is_empty() || path == "." {
            e.to_string()
        } else {
            format!("{path}: {e}")
        }
    })?;
    json.end().map_err(|e| e.to_string())?;
    message.transcode_to::<M>().map_err(|e| e.to_string())
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

/// A certificate in one line: its subject and expiry.
fn certificate_label(c: &pb::CertificateInfo) -> String {
    format!(
        "{} (expires {})",
        c.subject,
        time_label(c.not_after.as_ref())
    )
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

/// A webhook's statistics as `key: value` lines.
pub fn stats_details(s: &pb::WebhookStats) -> String {
    let rate = if s.attempts == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", s.success_rate * 100.0)
    };
    details(&[
        ("webhook", s.webhook_id.clone()),
        ("since", time_label(s.since.as_ref())),
        ("attempts", s.attempts.to_string()),
        ("succeeded", s.succeeded_attempts.to_string()),
        ("success rate", rate),
        ("latency p50", duration_label(s.latency_p50.as_ref())),
        ("latency p90", duration_label(s.latency_p90.as_ref())),
        ("latency p99", duration_label(s.latency_p99.as_ref())),
        ("last success", time_label(s.last_success_at.as_ref())),
        ("last failure", time_label(s.last_failure_at.as_ref())),
        ("pending", s.pending_deliveries.to_string()),
        ("failed", s.failed_deliveries.to_string()),
    ])
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
    // A webhook-level update without a delivery: the webhook's state change.
    if let (None, Some(w)) = (&u.delivery, &u.webhook) {
        let _ = write!(
            line,
            "{}  cursor={}  {}  webhook={}  name=\"{}\"  enabled={}  failures={}",
            time_label(w.updated_at.as_ref()),
            u.cursor,
            update_kind_label(u.kind),
            w.id,
            w.name,
            w.enabled,
            w.consecutive_failures,
        );
        if !w.disabled_reason.is_empty() {
            let _ = write!(line, "  reason=\"{}\"", w.disabled_reason);
        }
        if !w.last_error.is_empty() {
            let _ = write!(line, "  error=\"{}\"", w.last_error);
        }
        return line;
    }
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
    fn a_webhook_level_update_prints_the_webhook_and_its_reason() {
        let update = pb::DeliveryUpdate {
            cursor: "7".into(),
            kind: pb::UpdateKind::WebhookDisabled as i32,
            webhook: Some(pb::Webhook {
                id: "w".into(),
                name: "payments".into(),
                disabled_reason: "endpoint answered 410 Gone".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let line = update_line(&update);
        assert!(
            line.contains("cursor=7  webhook-disabled  webhook=w"),
            "{line}"
        );
        assert!(
            line.contains("reason=\"endpoint answered 410 Gone\""),
            "{line}"
        );
        assert!(!line.contains("delivery="), "{line}");
    }

    #[test]
    fn messages_print_as_grpcurl_does() {
        let update = pb::DeliveryUpdate {
            cursor: "42".into(),
            kind: pb::UpdateKind::AttemptFailed as i32,
            delivery: Some(pb::Delivery {
                id: "d".into(),
                status: pb::DeliveryStatus::Pending as i32,
                attempt_count: 1,
                created_at: Some(prost_types::Timestamp {
                    seconds: 1_748_772_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            attempt: None,
            webhook: None,
        };
        let json = message_json(&update).map_err(|e| e.message()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cursor": "42",
                "kind": "UPDATE_KIND_ATTEMPT_FAILED",
                "delivery": {
                    "id": "d",
                    "status": "DELIVERY_STATUS_PENDING",
                    "attemptCount": 1,
                    "createdAt": "2025-06-01T10:00:00Z"
                }
            })
        );
        let text = json_text(&update, false).map_err(|e| e.message()).unwrap();
        assert!(text.starts_with(r#"{"cursor":"42","kind""#), "{text}");
        assert_eq!(
            status_json(pb::DeliveryStatus::Succeeded as i32),
            "DELIVERY_STATUS_SUCCEEDED"
        );
        assert_eq!(status_json(99), 99);
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
