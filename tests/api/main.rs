//! End-to-end tests: each spawns the real service on a random port against its own fresh
//! database, and drives it through the generated gRPC clients over a real socket. The harness is
//! the `testkit` crate; `helpers` holds what only this suite needs.

mod admin;
mod alerts;
mod audit;
mod auth;
mod connections;
mod console;
mod database_tls;
mod delivery;
mod destination_credentials;
mod error_details;
mod etags;
mod faults;
mod helpers;
mod isolation;
mod ops;
mod page_tokens;
mod recording;
mod request_ids;
mod requests;
mod routing;
mod ssrf;
mod tls;
mod watch;
