//! The `google.rpc` error details a failed call carries in `grpc-status-details-bin`: the
//! `BadRequest` of an INVALID_ARGUMENT as a field -> rule list, the `ErrorInfo` (reason and
//! domain) of every error, and the `RetryInfo` delay of RESOURCE_EXHAUSTED and UNAVAILABLE.

use std::time::Duration;

use prost::{Message as _, Name};

use crate::rpc;

/// One field of a request that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `webhook.destination_url`.
    pub field: String,
    /// The rule it broke, e.g. `must use the http or https scheme`.
    pub description: String,
}

/// The details of a status that this client understands, decoded once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorDetails {
    /// The fields a bad request broke (from `google.rpc.BadRequest`), in the service's order.
    pub field_violations: Vec<FieldViolation>,
    /// Why the call failed, as a stable machine-readable reason and its domain.
    pub error_info: Option<rpc::ErrorInfo>,
    /// How long the service asks callers to wait before trying again.
    pub retry_delay: Option<Duration>,
}

impl ErrorDetails {
    /// The details in the `google.rpc.Status` bytes `encoded` (a status's `details()`); details
    /// of other types, or that do not decode, are skipped.
    pub fn decode(encoded: &[u8]) -> Self {
        let mut details = Self::default();
        let Ok(status) = rpc::Status::decode(encoded) else {
            return details;
        };
        for any in &status.details {
            // The type URL's host part varies (`type.googleapis.com/` by convention); the full
            // name after the last `/` is what identifies the message.
            let name = any.type_url.rsplit('/').next().unwrap_or_default();
            let value = any.value.as_slice();
            if name == rpc::BadRequest::full_name() {
                if let Ok(bad) = rpc::BadRequest::decode(value) {
                    details
                        .field_violations
                        .extend(bad.field_violations.into_iter().map(|v| FieldViolation {
                            field: v.field,
                            description: v.description,
                        }));
                }
            } else if name == rpc::ErrorInfo::full_name() {
                details.error_info = rpc::ErrorInfo::decode(value).ok().or(details.error_info);
            } else if name == rpc::RetryInfo::full_name() {
                details.retry_delay = rpc::RetryInfo::decode(value)
                    .ok()
                    .and_then(|info| info.retry_delay)
                    .and_then(|delay| Duration::try_from(delay).ok())
                    .or(details.retry_delay);
            }
        }
        details
    }
}

/// The error details of a [`tonic::Status`].
pub trait StatusDetails {
    /// Every detail this client understands.
    fn error_details(&self) -> ErrorDetails;

    /// The fields the request broke and the rule each broke (empty unless INVALID_ARGUMENT).
    fn field_violations(&self) -> Vec<FieldViolation> {
        self.error_details().field_violations
    }

    /// The `google.rpc.ErrorInfo`: reason and domain.
    fn error_info(&self) -> Option<rpc::ErrorInfo> {
        self.error_details().error_info
    }

    /// The `google.rpc.RetryInfo.retry_delay`, when the service asks for one.
    fn retry_delay(&self) -> Option<Duration> {
        self.error_details().retry_delay
    }
}

impl StatusDetails for tonic::Status {
    fn error_details(&self) -> ErrorDetails {
        ErrorDetails::decode(self.details())
    }
}

/// Encodes `message` as a `google.protobuf.Any`, the way the service packs a detail.
#[cfg(test)]
fn pack<M: Name>(message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(details: Vec<prost_types::Any>) -> tonic::Status {
        let encoded = rpc::Status {
            code: tonic::Code::InvalidArgument as i32,
            message: "webhook.name: must not be empty".to_owned(),
            details,
        }
        .encode_to_vec();
        tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            "webhook.name: must not be empty",
            encoded.into(),
        )
    }

    fn violation(field: &str, description: &str) -> rpc::bad_request::FieldViolation {
        rpc::bad_request::FieldViolation {
            field: field.to_owned(),
            description: description.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn bad_request_decodes_into_fields_and_rules_in_order() {
        let status = status_with(vec![pack(&rpc::BadRequest {
            field_violations: vec![
                violation("webhook.name", "must not be empty"),
                violation(
                    "webhook.destination_url",
                    "must use the http or https scheme",
                ),
            ],
        })]);
        assert_eq!(
            status.field_violations(),
            [
                FieldViolation {
                    field: "webhook.name".to_owned(),
                    description: "must not be empty".to_owned(),
                },
                FieldViolation {
                    field: "webhook.destination_url".to_owned(),
                    description: "must use the http or https scheme".to_owned(),
                },
            ]
        );
    }

    #[test]
    fn error_info_and_retry_info_are_found_among_other_details() {
        let status = status_with(vec![
            pack(&rpc::LocalizedMessage::default()),
            pack(&rpc::ErrorInfo {
                reason: "RATE_LIMITED".to_owned(),
                domain: "webhooks.backoffice".to_owned(),
                ..Default::default()
            }),
            pack(&rpc::RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 500_000_000,
                }),
            }),
        ]);
        let details = status.error_details();
        assert_eq!(details.retry_delay, Some(Duration::from_millis(1500)));
        let info = details.error_info.unwrap_or_default();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("RATE_LIMITED", "webhooks.backoffice")
        );
        assert!(details.field_violations.is_empty());
    }

    #[test]
    fn a_status_without_details_or_with_garbage_has_none() {
        assert_eq!(
            tonic::Status::not_found("no such webhook").error_details(),
            ErrorDetails::default()
        );
        assert_eq!(
            ErrorDetails::decode(&[0xff, 0xff, 0xff]),
            ErrorDetails::default()
        );
        // A detail whose bytes are not its type's: skipped, not a panic.
        let status = status_with(vec![prost_types::Any {
            type_url: rpc::RetryInfo::type_url(),
            value: vec![0x0a, 0xff],
        }]);
        assert_eq!(status.retry_delay(), None);
    }
}
