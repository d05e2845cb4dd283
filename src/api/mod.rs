//! gRPC handlers: translate wire messages into domain types (refusing bad input with
//! INVALID_ARGUMENT that names the field), call the store, translate back. No SQL here.

mod admin;
pub mod auth;
pub mod codec;
pub mod convert;
pub mod grpc_web;
mod ingest;
pub mod request_errors;
pub mod watch;

pub use admin::AdminService;
pub use convert::update_message;
pub use ingest::IngestService;

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
