//! The delivery engine: claim due deliveries from Postgres, sign them per the Standard Webhooks
//! specification, POST them, record the attempt and schedule what comes next.

mod dispatch;
pub mod guard;
mod recorder;
mod retry;
mod sender;
pub mod signature;
mod worker;

pub use dispatch::{Dispatcher, Reservation};
pub use guard::DestinationGuard;
pub use retry::{RETRY_AFTER_CAP, decide};
pub use sender::{AttemptResult, HttpSender, RESPONSE_BODY_CAP, parse_retry_after};
pub use worker::{Heartbeat, Worker, WorkerSettings};
