//! The webhook service of the CRM back office.
//!
//! Internal services publish decisions on client requests (withdrawals, prop-trading
//! participations and live stages, approved at an approver level or rejected) through the
//! `EventIngest` gRPC service; every enabled webhook whose function and selected events match
//! receives a signed JSON POST (Standard Webhooks). Admins manage webhooks and read the delivery
//! history through `WebhookAdmin`.
//!
//! Layout, from the vocabulary outwards:
//!
//! - [`domain`]: the vocabulary. Validated types that parse plain data (names, URLs and blocked
//!   address ranges, event selections, published events, secrets, page tokens), delivery
//!   statuses, outcomes, policies and retry schedules, and typed ids (`WebhookId`, `DeliveryId`,
//!   `EventId`, `AttemptId`, `ClaimToken`, `Cursor`). It knows no wire format.
//! - [`store`]: all SQL, `LISTEN`/`NOTIFY` included ([`store::Wakeups`]: the one wake-up path
//!   for new work); Postgres is the store and the work queue.
//! - [`delivery`]: the workers: claim, sign ([`delivery::signature`], with `verify` beside
//!   `sign`), send through the SSRF guard, record, schedule retries.
//! - [`stream`]: the delivery-update log behind `WatchDeliveries`: sequencer and per-instance
//!   fan-out, with its own error type; the API hands it the encoder.
//! - [`api`]: the only module that speaks protobuf and tonic: handlers, and in
//!   [`api::convert`] every conversion between messages and domain types, errors included.
//! - [`proto`]: the generated messages, servers and clients.
//! - [`cli`]: the operator tooling built on those clients (`webhooks hooks|deliveries|events|listen`),
//!   and the binary's whole command line ([`cli::BinaryCli`]).
//! - [`config`]: the service's flags and environment variables; [`startup`]: the wiring;
//!   [`shutdown`]: the signal every background task waits on; [`connections`]: both
//!   listeners' connection cap, idle and handshake timeouts; [`console`]: the browser console
//!   and gRPC-Web on `WEBHOOKS_CONSOLE_ADDR`; [`metrics`], [`telemetry`].

pub mod api;
pub mod cli;
pub mod config;
pub mod connections;
pub mod console;
pub mod delivery;
pub mod domain;
pub mod metrics;
pub mod proto;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod stream;
pub mod telemetry;
