//! The `webhooks` binary's command line: the service's own commands from [`crate::config`] and
//! the operator tools of this module, in one parser. It lives here rather than in `config` so
//! that `config` knows nothing of the tools (the tools depend on it, never the other way round).

use clap::{Parser, Subcommand};

use super::{EXIT_CODES_HELP, audit, deliveries, events, hooks, listen, shell};
use crate::config::Command;

/// What `webhooks --help` says first (the doc comment below is for developers).
const BINARY_ABOUT: &str = "The webhook service of the CRM back office: signed, durable webhook delivery over a gRPC API, and the tools to run and operate it.";

/// What `webhooks --help` says in full.
const BINARY_LONG_ABOUT: &str = "The webhook service of the CRM back office: signed, durable webhook delivery over a gRPC API, and the tools to run and operate it.

Run the service with `webhooks serve` (settings: `webhooks serve --help`). Manage webhooks, deliveries and events on a running service with `webhooks hooks`, `webhooks deliveries` and `webhooks events` (`--server` and a token select the service), receive and verify webhooks locally with `webhooks listen`, and read the audit trail (and check its hash chain in the database) with `webhooks audit`.";

/// The `webhooks` binary's whole command line: the service's own commands ([`Command`]) and
/// the operator tools of [`crate::cli`], which talk to a running service.
///
/// [`crate::config::Cli`] stays the parser of the service commands alone (tests and embedders
/// match on its variants); this one flattens them in, so `webhooks serve` parses exactly as
/// before.
#[derive(Debug, Parser)]
#[command(
    name = "webhooks",
    version,
    about = BINARY_ABOUT,
    long_about = BINARY_LONG_ABOUT,
    after_help = EXIT_CODES_HELP
)]
pub struct BinaryCli {
    /// Which command runs: a service command or an operator tool; one is required.
    #[command(subcommand)]
    pub command: BinaryCommand,
}

/// Every subcommand of the `webhooks` binary.
#[derive(Debug, Subcommand)]
pub enum BinaryCommand {
    /// The service's own commands: `serve`, `migrate`, `keys`, `reencrypt`.
    #[command(flatten)]
    Service(Command),
    /// Manages webhooks: create, list, get, edit, enable, disable, delete, rotate-secret, test,
    /// stats.
    Hooks(hooks::HooksArgs),
    /// Reads the delivery history, resends and recovers deliveries, watches deliveries live.
    Deliveries(deliveries::DeliveriesArgs),
    /// Publishes decisions on client requests, as back-office services do.
    Events(events::EventsArgs),
    /// The audit trail: `list` reads it from a running service, `verify` checks its hash chain
    /// directly in the database (DATABASE_URL).
    Audit(audit::AuditArgs),
    /// Runs a local receiver on 127.0.0.1 that verifies webhook signatures and prints each
    /// delivery.
    Listen(listen::ListenArgs),
    /// Prints a shell completion script, e.g. `webhooks completions bash > /etc/bash_completion.d/webhooks`.
    Completions(shell::CompletionsArgs),
    /// Prints the manual page (roff) on stdout, e.g. `webhooks man | man -l -`.
    Man,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_binary_parses_service_and_tool_commands() {
        use clap::CommandFactory;
        BinaryCli::command().debug_assert();
        let serve = BinaryCli::parse_from(["webhooks", "serve", "--poll-interval", "2s"]);
        assert!(matches!(
            serve.command,
            BinaryCommand::Service(Command::Serve(ref config))
                if config.poll_interval == Duration::from_secs(2)
        ));
        let list = BinaryCli::parse_from([
            "webhooks",
            "hooks",
            "list",
            "--output",
            "json",
            "--server",
            "http://h:1",
        ]);
        let BinaryCommand::Hooks(hooks) = list.command else {
            panic!("hooks expected")
        };
        assert_eq!(hooks.client.output, super::super::Output::Json);
        assert_eq!(hooks.client.server, "http://h:1");
    }
}
