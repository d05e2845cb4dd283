//! Audit rows into `AuditEvent` messages; the diff's JSON into `google.protobuf.Struct`.

use prost_types::value::Kind;
use serde_json::Value;

use super::timestamps::to_proto;
use crate::proto::v1 as pb;
use crate::store::{AuditRecord, hex};

/// One audit row as the API shows it.
pub(crate) fn audit_event(record: &AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        id: record.id,
        time: Some(to_proto(record.at)),
        actor: record.actor.clone(),
        role: record.role.clone(),
        action: record.action.clone(),
        target_kind: record.target_kind.clone(),
        target_id: record.target_id.clone(),
        request_id: record.request_id.clone(),
        peer: record.peer.clone(),
        user_agent: record.user_agent.clone(),
        diff: match struct_value(&record.diff) {
            Kind::StructValue(s) => Some(s),
            _ => None,
        },
        prev_hash: hex(&record.prev_hash),
        hash: hex(&record.hash),
    }
}

/// A JSON value as a protobuf `Value` kind (numbers become doubles, as proto3 JSON has them).
fn struct_value(value: &Value) -> Kind {
    match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(wrap).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields.iter().map(|(k, v)| (k.clone(), wrap(v))).collect(),
        }),
    }
}

fn wrap(value: &Value) -> prost_types::Value {
    prost_types::Value {
        kind: Some(struct_value(value)),
    }
}
