//! The web console (`WEBHOOKS_CONSOLE_ADDR`): a browser app for the back office's admins, served
//! by the service itself on its own listener, together with the gRPC API it calls.
//!
//! One listener, one origin, so the browser needs no CORS:
//!
//! - requests whose `content-type` is gRPC (`application/grpc-web…` from the browser, or plain
//!   `application/grpc` over HTTP/2) go to the very services of the gRPC port, behind the same
//!   authentication layer (tokens, roles, ingest rate limit): gRPC-Web is translated to gRPC by
//!   `tonic_web` in front of them;
//! - every other request is for the app's static files ([`assets`]), embedded in the binary at
//!   build time from `console/dist`. They hold no data, so they need no token.

pub mod assets;
mod server;

pub use server::{ConsoleLayer, ConsoleListener, ConsoleService};
