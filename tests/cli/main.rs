//! End-to-end tests of the `webhooks` CLI: the real binary, run as child processes, against the
//! real service (in-process, on a random port, with its own fresh database).

mod audit;
mod deliveries;
mod events;
mod grpcurl;
mod help;
mod hooks;
mod listen;
mod shell;
mod support;
mod tls;
mod watch;
