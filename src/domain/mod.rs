//! Domain types whose constructors enforce the rules, so the rest of the service only ever holds
//! valid values ("parse, don't validate").

mod address;
mod alert;
mod audit;
mod credentials;
mod delivery;
mod duration;
mod event;
mod event_input;
mod ids;
mod page_token;
mod schedule;
mod secret;
pub mod timestamps;
mod webhook;

pub use address::{
    Blocked, Embedding, Handling, SPECIAL_RANGES, SpecialRange, blocked_range, special_range,
};
pub use alert::{Alert, AlertType, AlertedDelivery, AlertedWebhook};
pub use audit::{Actor, AuditAction, AuditEntry, RequestContext};
pub use credentials::{
    CertificateInfo, Change, ClientCertificate, CustomHeader, CustomHeaders, DestinationTls,
    MAX_HEADERS, PrivateCa, is_reserved_header,
};
pub use delivery::{
    AttemptErrorKind, AttemptTrigger, DeliveryPolicy, DeliveryStatus, Outcome, UpdateKind,
};
pub use duration::{parse_duration, parse_long_duration};
pub use event::{Decision, PublishedEvent, TEST_EVENT_TYPE};
pub use event_input::{
    BeneficiaryInput, DecisionKind, EventInput, LiveStageInput, ParticipationInput, RequestInput,
    WithdrawalInput,
};
pub use ids::{AttemptId, ClaimToken, Cursor, DeliveryId, EventId, WebhookId, parse_id};
pub use page_token::{PageFilters, PageToken, PageTokenKeys, page_size};
pub use schedule::{RetrySchedule, parse_schedule};
pub use secret::{Secret, SecretError, WHSEC_KEY_BYTES};
pub use webhook::{
    ALLOW_PRIVATE_SETTING, Description, DestinationUrl, EventSelection, Function, UpdateField,
    WebhookName, ip_is_private, parse_update_mask,
};

/// A rule broken by one field of a request. The API turns it into INVALID_ARGUMENT with the field
/// path in the message and in a `BadRequest` detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ValidationError {
    /// The field path as the caller spelled it, e.g. `webhook.events.approval_nodes`.
    pub field: String,
    /// The rule, e.g. `must be 1 to 200 characters`.
    pub rule: String,
}

impl ValidationError {
    /// A broken rule on `field`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// Longest stretch of client input an error message repeats: a refusal must fit in a
/// `grpc-message` header (clients cap header lists at 16 KiB), so a 100 KiB update-mask path is
/// shown as its first characters and its length.
const MAX_QUOTED_CHARS: usize = 64;

/// Client input in backticks for an error message, cut to its first 64 characters.
pub fn quoted(value: &str) -> String {
    let count = value.chars().count();
    if count <= MAX_QUOTED_CHARS {
        format!("`{value}`")
    } else {
        let head: String = value.chars().take(MAX_QUOTED_CHARS).collect();
        format!("`{head}…` ({count} characters)")
    }
}

/// Checks that a free-text field is at most `max` characters.
pub fn check_max_chars(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL (U+0000) characters",
        ));
    }
    Ok(())
}

/// Checks that a required identifier-like field is present and at most `max` characters.
pub(crate) fn check_required(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    check_max_chars(field, value, max)
}
