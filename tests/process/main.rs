//! Process-level tests: each runs the real `webhooks` binary as a child process, on its own fresh
//! database and a free port on 127.0.0.1, and drives it from outside as an operator or a client
//! would (grpcurl, the generated gRPC clients, signals, a crash with SIGKILL). The harness is the
//! `testkit` crate.

mod crash;
mod dispatch;
mod grpcurl;
mod lifecycle;
mod metrics;
mod support;
