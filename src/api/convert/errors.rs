//! Domain and store errors into gRPC statuses, in one place, so handlers use `?`. A caller's
//! mistake is INVALID_ARGUMENT naming the field; a lost database is UNAVAILABLE (worth a retry);
//! anything else is INTERNAL, with the cause logged and never sent.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::ValidationError;
use crate::store::StoreError;

/// INVALID_ARGUMENT naming the field and the rule, with a `google.rpc.BadRequest` detail that
/// clients (the console) can attach to the right form field.
pub(crate) fn invalid_argument(error: ValidationError) -> Status {
    let details = ErrorDetails::with_bad_request_violation(error.field.clone(), error.rule.clone());
    Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
}

/// Maps a store failure to UNAVAILABLE or INTERNAL. The cause is logged, never sent: callers
/// must not see SQL or connection strings.
pub(crate) fn store_failure(error: StoreError) -> Status {
    if error.is_unavailable() {
        tracing::warn!(error = %error, "database unavailable");
        Status::unavailable("the database is unavailable; retry later")
    } else {
        tracing::error!(error = %error, "database error");
        Status::internal("internal error; see the service logs")
    }
}

/// NOT_FOUND for an unknown id.
pub(crate) fn not_found(kind: &str, id: impl std::fmt::Display) -> Status {
    Status::not_found(format!("{kind} {id} not found"))
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
