//! The documentation in `docs/` is executed, so it cannot rot:
//!
//! - `receiving-webhooks.md`: every example body is compared with the body the service builds
//!   for the same decision; the header table and the test vector with what it sends; the
//!   Python (`python3`), Node.js (`node`) and Rust verification snippets must accept requests
//!   signed by the service's own code and real deliveries, and reject every tampered variant;
//! - `grpc-api.md`: every RPC has a grpcurl example, and every example runs, in page order,
//!   against a real service on a fresh database, and must end as the page says;
//! - `operations.md`: the configuration table is `webhooks serve --help`, the examples run, and
//!   the metrics listed are the ones `src/metrics.rs` defines;
//! - `clients.md`: each language's snippets are the files the suite compiles or runs, and run
//!   against a real service.
//!
//! Code blocks are found by their info string (```` ```sh grpcurl expect=NotFound ````,
//! ```` ```json example-withdrawal.approved ````, ...); a block of a kind no test checks fails
//! the suite. python3, node, bash and grpcurl must be on PATH (scripts/test.sh installs
//! grpcurl): a missing one fails the tests, naming it. Nothing is skipped.

mod clients;
mod examples;
mod grpc_api;
mod library_snippet;
mod markdown;
mod operations;
mod receiving;
mod support;
mod verify_snippet;
