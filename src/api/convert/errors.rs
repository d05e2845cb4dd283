//! Domain and store errors into gRPC statuses, in one place, so handlers use `?`. A caller's
//! mistake is INVALID_ARGUMENT naming the field; a lost database is UNAVAILABLE (worth a retry);
//! anything else is INTERNAL, with the cause logged and never sent.
//!
//! Every error status carries a `google.rpc.ErrorInfo` (a [`Reason`] in [`DOMAIN`], with
//! metadata where useful), and every RESOURCE_EXHAUSTED or UNAVAILABLE worth retrying a
//! `google.rpc.RetryInfo` saying when (docs/grpc-api.md, "Errors").

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::ValidationError;
use crate::store::StoreError;

/// The `domain` of every ErrorInfo this service sends.
pub const DOMAIN: &str = "webhooks.backoffice.internal";

/// How long a caller should wait before retrying after the database was unavailable.
const DATABASE_RETRY: Duration = Duration::from_secs(1);

/// The `reason` of an ErrorInfo: why a call failed, stable for clients to match on (the messages
/// are for people and may change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// INVALID_ARGUMENT: a field breaks a rule (metadata `field`; a BadRequest names the rule).
    InvalidField,
    /// INVALID_ARGUMENT: the request could not be read as a gRPC or protobuf message.
    MalformedRequest,
    /// INVALID_ARGUMENT: the request_id was used before for a different request.
    RequestIdReused,
    /// NOT_FOUND: the webhook (metadata `webhook_id`) is unknown or deleted.
    WebhookNotFound,
    /// NOT_FOUND: the delivery (metadata `delivery_id`) is unknown.
    DeliveryNotFound,
    /// FAILED_PRECONDITION: the webhook is disabled, deleted or unknown, so nothing can be sent.
    WebhookNotSendable,
    /// ABORTED: the etag is stale, the webhook changed since it was read.
    StaleEtag,
    /// ALREADY_EXISTS: the idempotency key was used for an event with other content.
    IdempotencyKeyReused,
    /// OUT_OF_RANGE: a WatchDeliveries cursor outside the retained log.
    CursorOutOfRange,
    /// UNAUTHENTICATED: no bearer token.
    MissingCredentials,
    /// UNAUTHENTICATED: a token that is unknown or revoked.
    InvalidToken,
    /// PERMISSION_DENIED: the token's role may not call this RPC (metadata `role`, `method`).
    RoleNotAllowed,
    /// RESOURCE_EXHAUSTED: the token's ingest rate limit is spent.
    RateLimited,
    /// RESOURCE_EXHAUSTED: too many WatchDeliveries streams open for one credential.
    TooManyStreams,
    /// RESOURCE_EXHAUSTED: the request message is over the size limit (not worth retrying).
    MessageTooLarge,
    /// UNAVAILABLE: the database cannot be reached.
    DatabaseUnavailable,
    /// UNAVAILABLE: the instance is shutting down (retry, another instance answers).
    ShuttingDown,
    /// INTERNAL: a bug; the cause is in the service logs.
    Internal,
    /// A status tonic made itself (an unknown method, a deadline): the reason is its code's name.
    Other(Code),
}

impl Reason {
    /// The UPPER_SNAKE_CASE name sent as ErrorInfo.reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidField => "INVALID_FIELD",
            Reason::MalformedRequest => "MALFORMED_REQUEST",
            Reason::RequestIdReused => "REQUEST_ID_REUSED",
            Reason::WebhookNotFound => "WEBHOOK_NOT_FOUND",
            Reason::DeliveryNotFound => "DELIVERY_NOT_FOUND",
            Reason::WebhookNotSendable => "WEBHOOK_NOT_SENDABLE",
            Reason::StaleEtag => "STALE_ETAG",
            Reason::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Reason::CursorOutOfRange => "CURSOR_OUT_OF_RANGE",
            Reason::MissingCredentials => "MISSING_CREDENTIALS",
            Reason::InvalidToken => "INVALID_TOKEN",
            Reason::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Reason::RateLimited => "RATE_LIMITED",
            Reason::TooManyStreams => "TOO_MANY_STREAMS",
            Reason::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Reason::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Reason::ShuttingDown => "SHUTTING_DOWN",
            Reason::Internal => "INTERNAL_ERROR",
            // The CLI prints codes by the same canonical names.
            Reason::Other(code) => crate::cli::code_name(code),
        }
    }
}

/// An error status: `code`, `message`, and an ErrorInfo with `reason` and `metadata`. A
/// RESOURCE_EXHAUSTED or UNAVAILABLE also gets a RetryInfo of `retry` (see [`retry_after`]).
pub(crate) fn error(
    code: Code,
    reason: Reason,
    message: impl Into<String>,
    metadata: &[(&str, String)],
) -> Status {
    let mut details = ErrorDetails::new();
    set_info(&mut details, code, reason, metadata);
    with_pushback(Status::with_error_details(code, message, details), reason)
}

/// Adds `grpc-retry-pushback-ms`, the RetryInfo delay in the form gRPC's own retry policy
/// (clients/service-config.json) reads, so its retries wait as long as RetryInfo says.
fn with_pushback(mut status: Status, reason: Reason) -> Status {
    if let Some(delay) = retry_after(status.code(), reason)
        && let Ok(value) = delay.as_millis().to_string().parse()
    {
        status
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", value);
    }
    status
}

fn set_info(details: &mut ErrorDetails, code: Code, reason: Reason, metadata: &[(&str, String)]) {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    details.set_error_info(reason.as_str(), DOMAIN, metadata);
    if let Some(delay) = retry_after(code, reason) {
        details.set_retry_info(Some(delay));
    }
}

/// When to retry a call that failed with `code` for `reason`: set for every retryable
/// RESOURCE_EXHAUSTED and UNAVAILABLE. An oversized message is RESOURCE_EXHAUSTED (gRPC's code
/// for it) but the same message fails again, so it gets none (and its status a
/// `grpc-retry-pushback-ms: -1`, which stops gRPC's own retry policy; see request_errors.rs).
pub(crate) fn retry_after(code: Code, reason: Reason) -> Option<Duration> {
    match (code, reason) {
        (_, Reason::MessageTooLarge) => None,
        (_, Reason::RateLimited) => Some(Duration::from_secs(1)),
        (_, Reason::TooManyStreams) => Some(Duration::from_secs(5)),
        (_, Reason::ShuttingDown) => Some(Duration::from_millis(100)),
        (Code::Unavailable | Code::ResourceExhausted, _) => Some(DATABASE_RETRY),
        _ => None,
    }
}

/// `status` with an ErrorInfo of `reason` (and RetryInfo where due) added to the details it
/// already has, unless it has an ErrorInfo: for statuses made elsewhere (tonic, a layer).
pub(crate) fn with_error_info(status: Status, reason: Reason) -> Status {
    let mut details = status.get_error_details();
    if details.error_info().is_some() {
        return status;
    }
    set_info(&mut details, status.code(), reason, &[]);
    with_pushback(
        Status::with_error_details(status.code(), status.message(), details),
        reason,
    )
}

/// INVALID_ARGUMENT naming the field and the rule, with a `google.rpc.BadRequest` detail that
/// clients (the console) can attach to the right form field.
pub(crate) fn invalid_argument(error: ValidationError) -> Status {
    invalid_field(Reason::InvalidField, error)
}

/// [`invalid_argument`] with another `reason`.
pub(crate) fn invalid_field(reason: Reason, error: ValidationError) -> Status {
    let mut details =
        ErrorDetails::with_bad_request_violation(error.field.clone(), error.rule.clone());
    set_info(
        &mut details,
        Code::InvalidArgument,
        reason,
        &[("field", error.field.clone())],
    );
    Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
}

/// Maps a store failure to UNAVAILABLE or INTERNAL. The cause is logged, never sent: callers
/// must not see SQL or connection strings.
pub(crate) fn store_failure(failure: StoreError) -> Status {
    if failure.is_unavailable() {
        tracing::warn!(error = %failure, "database unavailable");
        error(
            Code::Unavailable,
            Reason::DatabaseUnavailable,
            "the database is unavailable; retry later",
            &[],
        )
    } else {
        tracing::error!(error = %failure, "database error");
        internal()
    }
}

/// INTERNAL: a bug, whose cause is logged where it was found.
pub(crate) fn internal() -> Status {
    error(
        Code::Internal,
        Reason::Internal,
        "internal error; see the service logs",
        &[],
    )
}

/// NOT_FOUND for an unknown id: `kind` is "webhook" or "delivery".
pub(crate) fn not_found(kind: &str, id: impl std::fmt::Display) -> Status {
    let (reason, key) = match kind {
        "delivery" => (Reason::DeliveryNotFound, "delivery_id"),
        _ => (Reason::WebhookNotFound, "webhook_id"),
    };
    error(
        Code::NotFound,
        reason,
        format!("{kind} {id} not found"),
        &[(key, id.to_string())],
    )
}

impl From<ValidationError> for Status {
    fn from(error: ValidationError) -> Self {
        invalid_argument(error)
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        store_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_get_a_retry_delay_but_an_oversized_message_does_not() {
        for (code, reason) in [
            (Code::Unavailable, Reason::DatabaseUnavailable),
            (Code::Unavailable, Reason::ShuttingDown),
            (Code::ResourceExhausted, Reason::RateLimited),
            (Code::ResourceExhausted, Reason::TooManyStreams),
            (Code::Unavailable, Reason::Other(Code::Unavailable)),
        ] {
            let status = error(code, reason, "x", &[]);
            let delay = status
                .get_error_details()
                .retry_info()
                .and_then(|r| r.retry_delay);
            assert!(delay.is_some(), "{reason:?} has no RetryInfo");
            assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
        }
        let too_large = error(Code::ResourceExhausted, Reason::MessageTooLarge, "x", &[]);
        assert!(too_large.get_error_details().retry_info().is_none());
        let not_found = error(Code::NotFound, Reason::WebhookNotFound, "x", &[]);
        assert!(not_found.get_error_details().retry_info().is_none());
    }

    #[test]
    fn a_validation_error_keeps_its_bad_request_beside_the_error_info() {
        let status = invalid_argument(ValidationError::new("webhook.name", "is required"));
        let details = status.get_error_details();
        let info = details.error_info().expect("an ErrorInfo");
        assert_eq!(info.reason, "INVALID_FIELD");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("webhook.name")
        );
        assert_eq!(
            details
                .bad_request()
                .expect("a BadRequest")
                .field_violations[0]
                .field,
            "webhook.name"
        );
    }
}
