//! Webhook messages to domain values and store records back to messages.

use super::to_proto;
use crate::domain::{EventSelection, Function, ValidationError};
use crate::proto::v1 as pb;
use crate::store::WebhookRecord;

/// Reads a required function: FUNCTION_UNSPECIFIED and unknown numbers are refused.
pub fn function(field: &str, value: i32) -> Result<Function, ValidationError> {
    match pb::Function::try_from(value) {
        Ok(pb::Function::Withdrawal) => Ok(Function::Withdrawal),
        Ok(pb::Function::PropTradingParticipation) => Ok(Function::PropTradingParticipation),
        Ok(pb::Function::PropTradingLiveStage) => Ok(Function::PropTradingLiveStage),
        Ok(pb::Function::Unspecified) => Err(ValidationError::new(
            field,
            "is required (FUNCTION_WITHDRAWAL, FUNCTION_PROP_TRADING_PARTICIPATION or FUNCTION_PROP_TRADING_LIVE_STAGE)",
        )),
        Err(_) => Err(ValidationError::new(
            field,
            format!("unknown function {value}"),
        )),
    }
}

/// Reads an optional function filter: FUNCTION_UNSPECIFIED means "any".
pub fn function_filter(field: &str, value: i32) -> Result<Option<Function>, ValidationError> {
    if value == pb::Function::Unspecified as i32 {
        return Ok(None);
    }
    function(field, value).map(Some)
}

impl From<Function> for pb::Function {
    fn from(function: Function) -> Self {
        match function {
            Function::Withdrawal => Self::Withdrawal,
            Function::PropTradingParticipation => Self::PropTradingParticipation,
            Function::PropTradingLiveStage => Self::PropTradingLiveStage,
        }
    }
}

/// Reads a required event selection (see [`EventSelection::parse`] for the rules).
pub fn event_selection(
    field: &str,
    selection: Option<&pb::EventSelection>,
) -> Result<EventSelection, ValidationError> {
    let Some(selection) = selection else {
        return Err(ValidationError::new(
            field,
            "is required: select approval nodes and/or rejection",
        ));
    };
    EventSelection::parse(field, &selection.approval_nodes, selection.rejection)
}

impl From<&EventSelection> for pb::EventSelection {
    fn from(selection: &EventSelection) -> Self {
        Self {
            approval_nodes: selection.approval_nodes().to_vec(),
            rejection: selection.rejection(),
        }
    }
}

/// A webhook without its secret, header values or key; only hints show.
pub(crate) fn webhook(record: &WebhookRecord) -> pb::Webhook {
    pb::Webhook {
        id: record.id.to_string(),
        name: record.name.clone(),
        destination_url: record.destination_url.clone(),
        function: pb::Function::from(record.function) as i32,
        events: Some(pb::EventSelection::from(&record.events)),
        enabled: record.enabled,
        description: record.description.clone(),
        secret_hint: record.secret_hint.clone(),
        deliver_once_per_request: record.deliver_once_per_request,
        created_at: Some(to_proto(record.created_at)),
        updated_at: Some(to_proto(record.updated_at)),
        disabled_reason: record.disabled_reason.clone().unwrap_or_default(),
        disabled_at: record.disabled_at.map(to_proto),
        consecutive_failures: record.consecutive_failures.max(0) as u32,
        circuit_open_until: record.circuit_open_until.map(to_proto),
        last_delivery_status: record
            .last_delivery
            .map_or(pb::DeliveryStatus::Unspecified, |(status, _)| status.into())
            as i32,
        last_delivery_at: record.last_delivery.map(|(_, at)| to_proto(at)),
        headers: record
            .header_hints
            .iter()
            .map(|(name, hint)| pb::CustomHeader {
                name: name.clone(),
                value: String::new(),
                value_hint: hint.clone(),
            })
            .collect(),
        // Input only: the certificate and CA are summarised below, the key never leaves.
        client_certificate_pem: String::new(),
        client_key_pem: String::new(),
        server_ca_pem: String::new(),
        client_certificate: record.client_certificate.as_ref().map(certificate_info),
        server_ca: record.server_ca.as_ref().map(certificate_info),
        etag: etag(record.revision),
        failing_since: record.failing_since.map(to_proto),
        last_error: record.last_error.clone(),
    }
}

/// The etag (AIP-154) of a webhook at `revision`: opaque to callers, `r` and the revision here.
pub(crate) fn etag(revision: i64) -> String {
    format!("r{revision}")
}

/// The revision an etag field names; `None` when empty (no check asked for). Anything this
/// service did not issue is refused rather than treated as stale: it can never match.
pub(crate) fn parse_etag(field: &str, value: &str) -> Result<Option<i64>, ValidationError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .strip_prefix('r')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ValidationError::new(field, "must be an etag as a Webhook carries it, or empty")
        })
}

fn certificate_info(info: &crate::domain::CertificateInfo) -> pb::CertificateInfo {
    pb::CertificateInfo {
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        not_after: Some(to_proto(info.not_after)),
    }
}

#[cfg(test)]
mod etag_tests {
    use super::*;

    #[test]
    fn an_etag_reads_back_as_its_revision() {
        assert_eq!(parse_etag("etag", &etag(7)), Ok(Some(7)));
        assert_eq!(parse_etag("etag", ""), Ok(None));
    }

    #[test]
    fn an_etag_the_service_did_not_issue_is_refused() {
        for bad in ["7", "r", "r-1", "rx", "W/\"r1\"", "r99999999999999999999"] {
            let error = parse_etag("etag", bad).expect_err(bad);
            assert_eq!(error.field, "etag");
        }
    }
}
