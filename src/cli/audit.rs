//! `webhooks audit list` (over gRPC, like the other client commands) and `webhooks audit
//! verify`, which works on the database directly (`DATABASE_URL`, like `webhooks keys`), so an
//! auditor can check the trail without trusting the running service.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use time::OffsetDateTime;

use super::output;
use super::{CliError, ClientArgs, EXIT_CODES_HELP, Output, parse_rfc3339, timestamp};
use crate::config::DatabaseConfig;
use crate::store::{ChainReport, Store};
use webhooks_client::v1 as pb;

/// `webhooks audit`: the audit trail.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Which `audit` action runs.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Lists the audit trail from a running service, newest first (admin or viewer token).
    #[command(after_help = EXIT_CODES_HELP)]
    List(Box<ListArgs>),
    /// Walks the hash chain in the database (DATABASE_URL) and reports the first broken link:
    /// exit status 0 when every row checks out, 1 when one does not (the row is named).
    Verify(DatabaseConfig),
}

/// Flags of `audit list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Connection and output flags.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only rows by this actor (a credential's name, `local` or `system`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only rows about this webhook (id).
    #[arg(long, conflicts_with_all = ["target_kind", "target_id"])]
    pub webhook: Option<String>,
    /// Only rows about this kind of target (webhook, delivery, api_key, vault).
    #[arg(long)]
    pub target_kind: Option<String>,
    /// Only rows about this target id (with --target-kind).
    #[arg(long, requires = "target_kind")]
    pub target_id: Option<String>,
    /// Only this action, e.g. webhook.updated.
    #[arg(long)]
    pub action: Option<String>,
    /// Only rows at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    pub after: Option<OffsetDateTime>,
    /// Only rows before this time (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    pub before: Option<OffsetDateTime>,
    /// Rows per page, 1 to 1000 (default 50).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub limit: Option<i32>,
    /// The page to read: the token printed after the previous page.
    #[arg(long)]
    pub page_token: Option<String>,
}

/// Runs `webhooks audit ...` and returns the exit code.
pub async fn run(args: AuditArgs) -> ExitCode {
    match args.command {
        AuditCommand::List(list) => super::finish(list_events(*list).await),
        AuditCommand::Verify(database) => match verify(&database).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The flag behind a field named in an INVALID_ARGUMENT message.
fn audit_flag(field: &str) -> Option<String> {
    let flag = match field {
        "actor" => "--actor",
        "target_kind" => "--target-kind",
        "target_id" => "--target-id",
        "action" => "--action",
        "time_after" => "--after",
        "time_before" => "--before",
        "page_size" => "--limit",
        "page_token" => "--page-token",
        _ => return None,
    };
    Some(flag.to_owned())
}

async fn list_events(args: ListArgs) -> Result<(), CliError> {
    let out = args.client.output;
    let connection = args.client.connect().await?;
    let (target_kind, target_id) = match args.webhook {
        Some(id) => (Some("webhook".to_owned()), Some(id)),
        None => (args.target_kind, args.target_id),
    };
    let page = connection
        .admin()
        .list_audit_events(pb::ListAuditEventsRequest {
            actor: args.actor.unwrap_or_default(),
            target_kind: target_kind.unwrap_or_default(),
            target_id: target_id.unwrap_or_default(),
            action: args.action.unwrap_or_default(),
            time_after: args.after.map(timestamp),
            time_before: args.before.map(timestamp),
            page_size: args.limit.unwrap_or(0),
            page_token: args.page_token.unwrap_or_default(),
        })
        .await
        .map_err(|status| CliError::status_with_flags(status, audit_flag))?
        .into_inner();
    match out {
        Output::Json => output::print_json(&page)?,
        Output::Table => {
            if page.audit_events.is_empty() {
                println!("No audit events.");
            } else {
                let rows: Vec<Vec<String>> = page
                    .audit_events
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            output::time_label(e.time.as_ref()),
                            format!("{} ({})", e.actor, e.role),
                            e.action.clone(),
                            format!("{} {}", e.target_kind, e.target_id)
                                .trim()
                                .to_owned(),
                            diff_label(e.diff.as_ref()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    output::table(&["ID", "TIME", "ACTOR", "ACTION", "TARGET", "DIFF"], &rows)
                );
            }
            if !page.next_page_token.is_empty() {
                println!(
                    "\nMore: add --page-token {} (with the same filters)",
                    page.next_page_token
                );
            }
        }
    }
    Ok(())
}

/// The diff as compact JSON, for the table.
fn diff_label(diff: Option<&prost_types::Struct>) -> String {
    diff.map(|d| {
        let message = pb::ListAuditEventsResponse {
            audit_events: vec![pb::AuditEvent {
                diff: Some(d.clone()),
                ..Default::default()
            }],
            next_page_token: String::new(),
        };
        output::message_json(&message)
            .ok()
            .and_then(|json| json["auditEvents"][0].get("diff").map(|v| v.to_string()))
            .unwrap_or_default()
    })
    .unwrap_or_default()
}

/// Verifies the chain and prints the outcome; `Ok(false)` when a link is broken.
async fn verify(database: &DatabaseConfig) -> anyhow::Result<bool> {
    let store = Store::connect_with_ca(&database.database_url, database.database_ca.as_deref(), 1)?;
    Ok(match store.verify_audit_chain().await? {
        ChainReport::Valid {
            rows,
            last_id,
            last_hash,
        } => {
            println!(
                "audit chain valid: {rows} row(s) checked; head is row {last_id} with hash \
                 {last_hash} (keep it outside the database to detect a rewritten trail)"
            );
            true
        }
        ChainReport::Broken { id, problem } => {
            println!("audit chain broken at row {id}: {problem}");
            false
        }
    })
}
