//! gRPC handlers: translate wire messages into domain types (refusing bad input with
//! INVALID_ARGUMENT that names the field), call the store, translate back. No SQL here.

mod admin;
pub mod auth;
pub mod codec;
pub mod convert;
pub mod grpc_web;
mod ingest;
mod publish_groups;
pub mod request_errors;
pub mod watch;

pub use admin::AdminService;
pub use convert::update_message;
pub use ingest::IngestService;

pub(crate) use convert::{invalid_argument, not_found, store_failure};
