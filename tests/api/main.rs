//! End-to-end tests: each spawns the real service on a random port against its own fresh
//! database, and drives it through the generated gRPC clients over a real socket.

mod admin;
mod auth;
mod connections;
mod console;
mod database_tls;
mod delivery;
mod destination_credentials;
mod faults;
mod helpers;
mod isolation;
mod ops;
mod page_tokens;
#[path = "../shared/pg_cluster.rs"]
mod pg_cluster;
#[path = "../shared/pki.rs"]
mod pki;
mod recording;
mod requests;
mod routing;
mod ssrf;
mod tls;
mod watch;
