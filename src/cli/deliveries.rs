//! `webhooks deliveries ...`: the delivery history (list, show), resending and recovering
//! deliveries, and following the live delivery log (`watch`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use time::OffsetDateTime;
use tonic::Code;

use super::output;
use super::{
    AdminClient, CliError, ClientArgs, EXIT_CODES_HELP, FunctionArg, Output, StatusArg,
    parse_rfc3339, timestamp,
};
use webhooks_client::v1 as pb;

/// First wait before `watch` reconnects; it doubles on every failed try up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between reconnection tries of `watch`.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `webhooks deliveries`: the delivery history and the live delivery log.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct DeliveriesArgs {
    /// Connection and output flags.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Which `deliveries` action runs; the connection flags above apply to every one.
    #[command(subcommand)]
    pub command: DeliveriesCommand,
}

/// The `deliveries` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Lists deliveries, newest first.
    List(ListArgs),
    /// Shows one delivery with its payload and every attempt's request and response.
    Show(ShowArgs),
    /// Sends a delivery again now, whatever its status (asks first).
    Resend(ResendArgs),
    /// Re-queues every failed delivery of a webhook created since a time (asks first).
    Recover(RecoverArgs),
    /// Follows delivery updates live, like `tail -f`, one line per update (one JSON object per
    /// line with --output json). When the connection drops it reconnects and resumes after the
    /// last update printed, so nothing is missed or repeated. Stop it with Ctrl-C.
    Watch(WatchArgs),
}

/// Flags of `deliveries list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only deliveries to this webhook (id).
    #[arg(long)]
    pub webhook: Option<String>,
    /// Only deliveries in this status (repeat for several).
    #[arg(long = "status", value_enum)]
    pub statuses: Vec<StatusArg>,
    /// Only deliveries of this event type, e.g. withdrawal.rejected.
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only deliveries about this client request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only deliveries created at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    pub created_after: Option<OffsetDateTime>,
    /// Only deliveries created before this time (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    pub created_before: Option<OffsetDateTime>,
    /// Deliveries per page, 1 to 1000 (default 50).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub limit: Option<i32>,
    /// The page to read: the token printed after the previous page.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow every page to the end (next_page_token after next_page_token), printing all the
    /// deliveries as one list.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `deliveries show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The delivery id.
    pub id: String,
}

/// Flags of `deliveries resend`.
#[derive(Debug, Args)]
pub struct ResendArgs {
    /// The delivery id.
    pub id: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Flags of `deliveries recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The webhook whose failed deliveries are re-queued (id).
    #[arg(long)]
    pub webhook: String,
    /// Only deliveries created at or after this time (RFC 3339, e.g. 2025-06-01T00:00:00Z).
    #[arg(long, value_parser = parse_rfc3339)]
    pub since: OffsetDateTime,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Flags of `deliveries watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only updates of deliveries to this webhook (id).
    #[arg(long)]
    pub webhook: Option<String>,
    /// Only updates of deliveries of this function.
    #[arg(long, value_enum)]
    pub function: Option<FunctionArg>,
    /// Only updates that leave the delivery in this status (repeat for several).
    #[arg(long = "status", value_enum)]
    pub statuses: Vec<StatusArg>,
    /// Start after this cursor (printed with every update) instead of now: every later update
    /// is printed first, then the live tail.
    #[arg(long)]
    pub after_cursor: Option<String>,
}

/// Runs `webhooks deliveries ...` and returns the exit code.
pub async fn run(args: DeliveriesArgs) -> ExitCode {
    super::finish(execute(args).await)
}

async fn execute(args: DeliveriesArgs) -> Result<(), CliError> {
    let out = args.client.output;
    let connection = args.client.connect().await?;
    let mut admin = connection.admin();
    match args.command {
        DeliveriesCommand::List(list) => list_deliveries(&mut admin, out, list).await,
        DeliveriesCommand::Show(ShowArgs { id }) => {
            let delivery = get_delivery(&mut admin, id).await?;
            match out {
                Output::Json => output::print_json(&delivery)?,
                Output::Table => print!("{}", output::delivery_report(&delivery)),
            }
            Ok(())
        }
        DeliveriesCommand::Resend(resend) => resend_delivery(&mut admin, out, resend).await,
        DeliveriesCommand::Recover(recover) => recover_deliveries(&mut admin, out, recover).await,
        // The stream lasts until it is stopped: the client gives WatchDeliveries no deadline,
        // so --timeout does not cut it.
        DeliveriesCommand::Watch(watch) => watch_deliveries(&mut admin, out, watch).await,
    }
}

/// The flag behind a field named in an INVALID_ARGUMENT message.
fn delivery_flag(field: &str) -> Option<String> {
    let flag = match field {
        "id" => "the ID argument",
        "webhook_id" => "--webhook",
        "statuses" => "--status",
        "event_type" => "--event-type",
        "request_id" => "--request-id",
        "created_after" => "--created-after",
        "created_before" => "--created-before",
        "page_size" => "--limit",
        "page_token" => "--page-token",
        "since" => "--since",
        "function" => "--function",
        "after_cursor" => "--after-cursor",
        _ => return None,
    };
    Some(flag.to_owned())
}

fn flagged(status: tonic::Status) -> CliError {
    CliError::status_with_flags(status, delivery_flag)
}

async fn get_delivery(admin: &mut AdminClient, id: String) -> Result<pb::Delivery, CliError> {
    Ok(admin
        .get_delivery(pb::GetDeliveryRequest { id })
        .await
        .map_err(flagged)?
        .into_inner())
}

async fn list_deliveries(
    admin: &mut AdminClient,
    out: Output,
    args: ListArgs,
) -> Result<(), CliError> {
    let mut request = pb::ListDeliveriesRequest {
        webhook_id: args.webhook.unwrap_or_default(),
        statuses: args.statuses.iter().map(|s| s.proto()).collect(),
        event_type: args.event_type.unwrap_or_default(),
        request_id: args.request_id.unwrap_or_default(),
        created_after: args.created_after.map(timestamp),
        created_before: args.created_before.map(timestamp),
        page_size: args.limit.unwrap_or(0),
        page_token: args.page_token.unwrap_or_default(),
    };
    let mut page = pb::ListDeliveriesResponse::default();
    loop {
        let next = admin
            .list_deliveries(request.clone())
            .await
            .map_err(flagged)?
            .into_inner();
        page.deliveries.extend(next.deliveries);
        page.next_page_token = next.next_page_token;
        if !args.all || page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token.clone();
    }
    match out {
        Output::Json => output::print_json(&page)?,
        Output::Table => {
            if page.deliveries.is_empty() {
                println!("No deliveries.");
            } else {
                print!("{}", output::deliveries_table(&page.deliveries));
            }
            if !page.next_page_token.is_empty() {
                println!(
                    "\nMore: add --page-token {} (with the same filters), or --all",
                    page.next_page_token
                );
            }
        }
    }
    Ok(())
}

async fn resend_delivery(
    admin: &mut AdminClient,
    out: Output,
    args: ResendArgs,
) -> Result<(), CliError> {
    let id = args.id;
    if super::must_ask(args.yes, &format!("resend delivery {id}"))? {
        let delivery = get_delivery(admin, id.clone()).await?;
        let request = if delivery.request_id.is_empty() {
            String::new()
        } else {
            format!(", request {}", delivery.request_id)
        };
        super::ask(
            &format!(
                "Resend delivery {id} ({}{request}, now {}) to webhook {}?",
                delivery.event_type,
                output::status_label(delivery.status),
                delivery.webhook_id
            ),
            "nothing was resent",
        )
        .await?;
    }
    let delivery = admin
        .resend_delivery(pb::ResendDeliveryRequest {
            id,
            // One id per invocation: a retry of this call inside the client resends once.
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(flagged)?
        .into_inner();
    match out {
        Output::Json => output::print_json(&delivery)?,
        Output::Table => {
            println!("Resent.\n");
            print!("{}", output::delivery_details(&delivery));
        }
    }
    Ok(())
}

async fn recover_deliveries(
    admin: &mut AdminClient,
    out: Output,
    args: RecoverArgs,
) -> Result<(), CliError> {
    let since = timestamp(args.since);
    let since_text = output::rfc3339(&since);
    let webhook_id = args.webhook;
    if super::must_ask(
        args.yes,
        &format!("recover the failed deliveries of webhook {webhook_id}"),
    )? {
        let webhook = admin
            .get_webhook(pb::GetWebhookRequest {
                id: webhook_id.clone(),
            })
            .await
            .map_err(|status| {
                CliError::status_with_flags(status, |field| {
                    (field == "id").then(|| "--webhook".to_owned())
                })
            })?
            .into_inner();
        let failed = admin
            .list_deliveries(pb::ListDeliveriesRequest {
                webhook_id: webhook_id.clone(),
                statuses: vec![pb::DeliveryStatus::Failed as i32],
                created_after: Some(since),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .map_err(flagged)?
            .into_inner();
        let count = if failed.next_page_token.is_empty() {
            failed.deliveries.len().to_string()
        } else {
            format!("more than {}", failed.deliveries.len())
        };
        super::ask(
            &format!(
                "Re-queue the {count} failed deliveries of webhook {webhook_id} ({}) created \
                 since {since_text}?",
                webhook.name
            ),
            "nothing was re-queued",
        )
        .await?;
    }
    let recovered = admin
        .recover_failed_deliveries(pb::RecoverFailedDeliveriesRequest {
            webhook_id: webhook_id.clone(),
            since: Some(since),
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(flagged)?
        .into_inner();
    match out {
        Output::Json => output::print_json(&recovered)?,
        Output::Table => println!(
            "Re-queued {} failed deliveries of webhook {webhook_id} created since {since_text}.",
            recovered.recovered
        ),
    }
    Ok(())
}

/// Whether `watch` should reconnect after this error: connection trouble and server-side
/// hiccups yes; a request the service refuses (bad filter, unknown or expired cursor, no
/// permission) no, since asking again would get the same answer; nor a TLS refusal (an
/// untrusted or refused certificate), which no retry fixes.
fn worth_reconnecting(status: &tonic::Status) -> bool {
    super::tls_failure_of(status).is_none()
        && matches!(
            status.code(),
            Code::Unavailable
                | Code::Unknown
                | Code::Internal
                | Code::Cancelled
                | Code::Aborted
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
        )
}

async fn watch_deliveries(
    admin: &mut AdminClient,
    out: Output,
    args: WatchArgs,
) -> Result<(), CliError> {
    let mut request = pb::WatchDeliveriesRequest {
        webhook_id: args.webhook.unwrap_or_default(),
        function: args.function.map_or(0, |f| f.proto() as i32),
        statuses: args.statuses.iter().map(|s| s.proto()).collect(),
        after_cursor: args.after_cursor.unwrap_or_default(),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    loop {
        let opened = admin.watch_deliveries(request.clone()).await;
        let lost = match opened {
            Ok(response) => {
                if connected_before {
                    if request.after_cursor.is_empty() {
                        eprintln!(
                            "watch: reconnected; no update had been printed yet, so updates \
                             made while disconnected may be missing"
                        );
                    } else {
                        eprintln!(
                            "watch: reconnected; resuming after cursor {}",
                            request.after_cursor
                        );
                    }
                } else {
                    eprintln!("watch: watching delivery updates (Ctrl-C to stop)");
                }
                connected_before = true;
                backoff = FIRST_BACKOFF;
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            match out {
                                Output::Json => println!("{}", output::json_text(&update, false)?),
                                Output::Table => println!("{}", output::update_line(&update)),
                            }
                            request.after_cursor = update.cursor;
                        }
                        Ok(None) => break "the service closed the stream".to_owned(),
                        Err(status) if worth_reconnecting(&status) => {
                            break format!(
                                "{} [{}]",
                                status.message(),
                                super::code_name(status.code())
                            );
                        }
                        Err(status) => return Err(flagged(status)),
                    }
                }
            }
            Err(status) if worth_reconnecting(&status) => {
                format!("{} [{}]", status.message(), super::code_name(status.code()))
            }
            Err(status) => return Err(flagged(status)),
        };
        eprintln!(
            "watch: connection lost ({lost}); reconnecting in {}ms",
            backoff.as_millis()
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
