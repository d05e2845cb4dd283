//! Every translation between the wire and the service: requests into domain inputs (refusing bad
//! values with the field they came from) and store records into messages. Nothing outside `api`
//! sees a protobuf type.

mod audit;
mod deliveries;
pub(crate) mod errors;
mod events;
pub mod timestamps;
mod webhooks;

pub(crate) use audit::audit_event;
pub use deliveries::update_message;
pub(crate) use deliveries::{delivery, statuses, webhook_stats};
pub(crate) use errors::{Reason, error, internal, invalid_argument, not_found, store_failure};
pub use events::{event_input, published_event};
pub(crate) use timestamps::to_proto;
pub use webhooks::{event_selection, function, function_filter};
pub(crate) use webhooks::{parse_etag, webhook};
