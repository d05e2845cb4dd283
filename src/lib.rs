//! The webhook service of the CRM back office.
//!
//! Internal services publish decisions on client requests (withdrawals, prop-trading
//! participations and live stages, approved at an approver level or rejected) through the
//! `EventIngest` gRPC service; every enabled webhook whose function and selected events match
//! receives a signed JSON POST (Standard Webhooks). Admins manage webhooks and read the delivery
//! history through `WebhookAdmin`.
//!
//! Layout: [`api`] (gRPC handlers), [`domain`] (validated types), [`store`] (all SQL; Postgres
//! is the store and the work queue), [`delivery`] (claim, sign, send, schedule), [`config`],
//! [`startup`], [`telemetry`]; [`proto`] holds the generated messages, servers and clients;
//! [`cli`] is the operator tooling built on those clients (`webhooks hooks|deliveries|events|listen`);
//! [`console`] serves the browser console and gRPC-Web on `WEBHOOKS_CONSOLE_ADDR`;
//! [`connections`] keeps both listeners from being hoarded (connection cap, idle and handshake
//! timeouts).

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
