//! `webhooks hooks ...`: create, list, read, edit, enable, disable, delete, rotate the secret of,
//! and ping webhooks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::output;
use super::{AdminClient, CliError, ClientArgs, EXIT_CODES_HELP, FunctionArg, Output};
use crate::domain::parse_duration;
use webhooks_client::v1 as pb;

/// `webhooks hooks`: the webhooks configured in the back office.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct HooksArgs {
    /// Connection and output flags.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Which `hooks` action runs; the connection flags above apply to every one.
    #[command(subcommand)]
    pub command: HooksCommand,
}

/// The `hooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Creates a webhook and prints its signing secret (shown only this once).
    Create(CreateArgs),
    /// Lists webhooks, oldest first.
    List(ListArgs),
    /// Shows one webhook (without its secret).
    Get(IdArg),
    /// Changes the fields given as flags; the others stay as they are.
    Edit(EditArgs),
    /// Enables a webhook: its waiting deliveries go out.
    Enable(IdArg),
    /// Disables a webhook: its deliveries wait until it is enabled again.
    Disable(IdArg),
    /// Deletes a webhook (asks first; its pending deliveries are cancelled, its history stays).
    Delete(DeleteArgs),
    /// Replaces a webhook's signing secret and prints the new one (shown only this once).
    RotateSecret(RotateArgs),
    /// Sends a signed `webhook.test` event to a webhook.
    Test(IdArg),
    /// Shows a webhook's delivery statistics: attempts, success rate, latency percentiles,
    /// last success and failure, pending and failed deliveries (the last 24 hours by default).
    Stats(StatsArgs),
}

/// A webhook id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The webhook id (a UUID).
    pub id: String,
}

/// Flags of `hooks stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The webhook id (a UUID).
    pub id: String,
    /// Only attempts started at or after this time (RFC 3339, e.g. 2025-06-01T00:00:00Z);
    /// default: the last 24 hours.
    #[arg(long, value_parser = super::parse_rfc3339)]
    pub since: Option<time::OffsetDateTime>,
}

/// Flags of `hooks create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Human-readable name.
    #[arg(long)]
    pub name: String,
    /// The destination: an absolute http(s) URL that receives the POSTs.
    #[arg(long)]
    pub url: String,
    /// The kind of request the webhook reports on.
    #[arg(long, value_enum)]
    pub function: FunctionArg,
    /// An approver level whose approval fires the webhook (repeat for several: an approval at
    /// any of them fires).
    #[arg(long = "approve-node", value_name = "N")]
    pub approve_nodes: Vec<u32>,
    /// Fire on rejections too. At least one --approve-node or --reject is needed.
    #[arg(long)]
    pub reject: bool,
    /// Free-text description for admins.
    #[arg(long)]
    pub description: Option<String>,
    /// The signing secret: whsec_<base64 of 16 to 1024 bytes> or any string of 16 to 256
    /// characters. Unset: one is generated.
    #[arg(long)]
    pub secret: Option<String>,
    /// Deliver only the first matching event of each client request (later ones are recorded
    /// as skipped).
    #[arg(long)]
    pub once_per_request: bool,
    /// Destination credentials: custom headers, client certificate, private CA.
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Flags for destinations that want more than a signature.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// A header sent with every attempt, as 'Name: value' (repeat for several), e.g.
    /// --header 'Authorization: Bearer …'. Values are stored sealed and never shown again. In
    /// `edit` the headers given replace the current ones; 'Name:' with no value keeps that
    /// header's current value.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// A PEM file with the client certificate (leaf first) presented for mutual TLS; needs
    /// --client-key and an https URL.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The PEM file of the client certificate's private key.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// A PEM file with the private CA the destination's certificate must chain to (instead of
    /// the public roots).
    #[arg(long, value_name = "FILE")]
    pub server_ca: Option<PathBuf>,
}

/// Flags of `hooks list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only webhooks of this function.
    #[arg(long, value_enum)]
    pub function: Option<FunctionArg>,
    /// Only enabled (true) or disabled (false) webhooks.
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
    /// Webhooks per page, 1 to 1000 (default 50).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub limit: Option<i32>,
    /// The page to read: the token printed after the previous page.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

/// Flags of `hooks edit`: only the fields given change.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// The webhook id.
    pub id: String,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New destination URL.
    #[arg(long)]
    pub url: Option<String>,
    /// New function.
    #[arg(long, value_enum)]
    pub function: Option<FunctionArg>,
    /// The approver levels that fire the webhook, replacing the current ones (repeatable).
    #[arg(long = "approve-node", value_name = "N")]
    pub approve_nodes: Vec<u32>,
    /// Remove every approver level (the webhook then fires on rejections only).
    #[arg(long, conflicts_with = "approve_nodes")]
    pub no_approve_nodes: bool,
    /// Whether rejections fire the webhook.
    #[arg(long, value_name = "true|false")]
    pub reject: Option<bool>,
    /// New description ("" clears it).
    #[arg(long)]
    pub description: Option<String>,
    /// Whether only the first matching event of each client request is delivered.
    #[arg(long, value_name = "true|false")]
    pub once_per_request: Option<bool>,
    /// Destination credentials to change.
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Remove every custom header.
    #[arg(long, conflicts_with = "headers")]
    pub no_headers: bool,
    /// Remove the client certificate.
    #[arg(long, conflicts_with = "client_cert")]
    pub no_client_cert: bool,
    /// Remove the private CA (the public roots apply again).
    #[arg(long, conflicts_with = "server_ca")]
    pub no_server_ca: bool,
}

/// Flags of `hooks delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The webhook id.
    pub id: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Flags of `hooks rotate-secret`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The webhook id.
    pub id: String,
    /// The new secret (same rules as `create --secret`); unset generates one.
    #[arg(long)]
    pub secret: Option<String>,
    /// How long deliveries are also signed with the old secret, 0 to 7 days (e.g. 1h).
    /// Default: 24 hours.
    #[arg(long, value_parser = parse_duration)]
    pub grace_period: Option<Duration>,
}

/// Runs `webhooks hooks ...` and returns the exit code.
pub async fn run(args: HooksArgs) -> ExitCode {
    super::finish(execute(args).await)
}

async fn execute(args: HooksArgs) -> Result<(), CliError> {
    let out = args.client.output;
    let mut admin = args.client.connect().await?.admin();
    match args.command {
        HooksCommand::Create(create) => create_hook(&mut admin, out, create).await,
        HooksCommand::List(list) => list_hooks(&mut admin, out, list).await,
        HooksCommand::Get(IdArg { id }) => {
            let webhook = admin
                .get_webhook(pb::GetWebhookRequest { id })
                .await
                .map_err(id_error)?
                .into_inner();
            print_webhook(out, &webhook)?;
            Ok(())
        }
        HooksCommand::Edit(edit) => edit_hook(&mut admin, out, edit).await,
        HooksCommand::Enable(IdArg { id }) => set_enabled(&mut admin, out, id, true).await,
        HooksCommand::Disable(IdArg { id }) => set_enabled(&mut admin, out, id, false).await,
        HooksCommand::Delete(delete) => delete_hook(&mut admin, out, delete).await,
        HooksCommand::RotateSecret(rotate) => rotate_secret(&mut admin, out, rotate).await,
        HooksCommand::Stats(StatsArgs { id, since }) => {
            let stats = admin
                .get_webhook_stats(pb::GetWebhookStatsRequest {
                    id,
                    since: since.map(super::timestamp),
                })
                .await
                .map_err(|status| {
                    CliError::status_with_flags(status, |field| match field {
                        "id" => Some("the ID argument".to_owned()),
                        "since" => Some("--since".to_owned()),
                        _ => None,
                    })
                })?
                .into_inner();
            match out {
                Output::Json => output::print_json(&stats)?,
                Output::Table => print!("{}", output::stats_details(&stats)),
            }
            Ok(())
        }
        HooksCommand::Test(IdArg { id }) => {
            let delivery = admin
                .send_test_event(pb::SendTestEventRequest {
                    webhook_id: id,
                    request_id: uuid::Uuid::new_v4().to_string(),
                })
                .await
                .map_err(|status| {
                    CliError::status_with_flags(status, |field| {
                        (field == "webhook_id").then(|| "the ID argument".to_owned())
                    })
                })?
                .into_inner();
            match out {
                Output::Json => output::print_json(&delivery)?,
                Output::Table => {
                    println!("Sent a webhook.test event.\n");
                    print!("{}", output::delivery_details(&delivery));
                    println!("\nFollow it with: webhooks deliveries show {}", delivery.id);
                }
            }
            Ok(())
        }
    }
}

/// The flag behind a field named in an INVALID_ARGUMENT message.
fn webhook_flag(field: &str) -> Option<String> {
    let flag = match field {
        "id" | "webhook.id" => "the ID argument",
        "webhook.name" => "--name",
        "webhook.destination_url" => "--url",
        "webhook.function" => "--function",
        "webhook.events.approval_nodes" => "--approve-node",
        "webhook.events.rejection" => "--reject",
        "webhook.events" => "--approve-node/--reject",
        "webhook.description" => "--description",
        "webhook.deliver_once_per_request" => "--once-per-request",
        "secret" => "--secret",
        "grace_period" => "--grace-period",
        "webhook.headers" => "--header",
        "webhook.client_certificate_pem" => "--client-cert",
        "webhook.client_key_pem" => "--client-key",
        "webhook.server_ca_pem" => "--server-ca",
        _ if field.starts_with("webhook.events.approval_nodes") => "--approve-node",
        _ if field.starts_with("webhook.headers[") => "--header",
        _ => return None,
    };
    Some(flag.to_owned())
}

fn id_error(status: tonic::Status) -> CliError {
    CliError::status_with_flags(status, webhook_flag)
}

fn print_webhook(out: Output, webhook: &pb::Webhook) -> Result<(), CliError> {
    match out {
        Output::Json => output::print_json(webhook)?,
        Output::Table => print!("{}", output::webhook_details(webhook)),
    }
    Ok(())
}

async fn create_hook(
    admin: &mut AdminClient,
    out: Output,
    args: CreateArgs,
) -> Result<(), CliError> {
    let request = pb::CreateWebhookRequest {
        webhook: Some(pb::Webhook {
            name: args.name,
            destination_url: args.url,
            function: args.function.proto() as i32,
            events: Some(pb::EventSelection {
                approval_nodes: args.approve_nodes,
                rejection: args.reject,
            }),
            description: args.description.unwrap_or_default(),
            deliver_once_per_request: args.once_per_request,
            headers: parse_header_flags(&args.credentials.headers)?,
            client_certificate_pem: read_pem("--client-cert", &args.credentials.client_cert)?,
            client_key_pem: read_pem("--client-key", &args.credentials.client_key)?,
            server_ca_pem: read_pem("--server-ca", &args.credentials.server_ca)?,
            ..Default::default()
        }),
        secret: args.secret.unwrap_or_default(),
        // One id per invocation: a retry of this call inside the client creates one webhook.
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let created = admin
        .create_webhook(request)
        .await
        .map_err(id_error)?
        .into_inner();
    match out {
        Output::Json => output::print_json(&created)?,
        Output::Table => {
            if let Some(webhook) = &created.webhook {
                print!("{}", output::webhook_details(webhook));
            }
            println!(
                "\nSigning secret: {}\nThis is the only time it is shown: give it to the receiver now \
                 (Standard Webhooks libraries accept it as is).",
                created.secret
            );
        }
    }
    Ok(())
}

async fn list_hooks(admin: &mut AdminClient, out: Output, args: ListArgs) -> Result<(), CliError> {
    let mut request = pb::ListWebhooksRequest {
        page_size: args.limit.unwrap_or(0),
        page_token: args.page_token.unwrap_or_default(),
        function: args.function.map_or(0, |f| f.proto() as i32),
        enabled: args.enabled,
    };
    let mut all = pb::ListWebhooksResponse::default();
    loop {
        let page = admin
            .list_webhooks(request.clone())
            .await
            .map_err(|status| {
                CliError::status_with_flags(status, |field| match field {
                    "page_token" => Some("--page-token".to_owned()),
                    "page_size" => Some("--limit".to_owned()),
                    "function" => Some("--function".to_owned()),
                    _ => None,
                })
            })?
            .into_inner();
        all.webhooks.extend(page.webhooks);
        all.next_page_token = page.next_page_token;
        if !args.all || all.next_page_token.is_empty() {
            break;
        }
        request.page_token = all.next_page_token.clone();
    }
    match out {
        Output::Json => output::print_json(&all)?,
        Output::Table => {
            if all.webhooks.is_empty() {
                println!("No webhooks.");
            } else {
                print!("{}", output::webhooks_table(&all.webhooks));
            }
            if !all.next_page_token.is_empty() {
                println!(
                    "\nMore: webhooks hooks list --page-token {} (or --all)",
                    all.next_page_token
                );
            }
        }
    }
    Ok(())
}

/// The webhook and field mask `hooks edit` sends for the flags given.
pub fn edit_request(args: EditArgs) -> Result<pb::UpdateWebhookRequest, CliError> {
    let mut webhook = pb::Webhook {
        id: args.id,
        ..Default::default()
    };
    let mut events = pb::EventSelection::default();
    let mut paths = Vec::new();
    if let Some(name) = args.name {
        webhook.name = name;
        paths.push("name");
    }
    if let Some(url) = args.url {
        webhook.destination_url = url;
        paths.push("destination_url");
    }
    if let Some(function) = args.function {
        webhook.function = function.proto() as i32;
        paths.push("function");
    }
    if !args.approve_nodes.is_empty() || args.no_approve_nodes {
        events.approval_nodes = args.approve_nodes;
        paths.push("events.approval_nodes");
    }
    if let Some(reject) = args.reject {
        events.rejection = reject;
        paths.push("events.rejection");
    }
    if let Some(description) = args.description {
        webhook.description = description;
        paths.push("description");
    }
    if let Some(once) = args.once_per_request {
        webhook.deliver_once_per_request = once;
        paths.push("deliver_once_per_request");
    }
    let credentials = args.credentials;
    if !credentials.headers.is_empty() || args.no_headers {
        webhook.headers = parse_header_flags(&credentials.headers)?;
        paths.push("headers");
    }
    if credentials.client_cert.is_some() || args.no_client_cert {
        webhook.client_certificate_pem = read_pem("--client-cert", &credentials.client_cert)?;
        webhook.client_key_pem = read_pem("--client-key", &credentials.client_key)?;
        paths.extend(["client_certificate_pem", "client_key_pem"]);
    }
    if credentials.server_ca.is_some() || args.no_server_ca {
        webhook.server_ca_pem = read_pem("--server-ca", &credentials.server_ca)?;
        paths.push("server_ca_pem");
    }
    if paths.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give at least one of --name, --url, --function, --approve-node, \
             --no-approve-nodes, --reject, --description, --once-per-request, --header, \
             --no-headers, --client-cert, --no-client-cert, --server-ca, --no-server-ca"
                .to_owned(),
        ));
    }
    if paths.iter().any(|p| p.starts_with("events")) {
        webhook.events = Some(events);
    }
    Ok(pb::UpdateWebhookRequest {
        webhook: Some(webhook),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.into_iter().map(str::to_owned).collect(),
        }),
        etag: String::new(),
    })
}

/// The `--header 'Name: value'` flags as headers; the service checks names and values.
fn parse_header_flags(flags: &[String]) -> Result<Vec<pb::CustomHeader>, CliError> {
    flags
        .iter()
        .map(|flag| {
            let Some((name, value)) = flag.split_once(':') else {
                return Err(CliError::Usage(
                    "--header must be 'Name: value' (a colon after the name)".to_owned(),
                ));
            };
            Ok(pb::CustomHeader {
                name: name.trim().to_owned(),
                // The space after the colon is the usual spelling, not part of the value.
                value: value.trim().to_owned(),
                value_hint: String::new(),
            })
        })
        .collect()
}

/// The contents of a PEM file given with `flag`; empty when the flag is absent.
fn read_pem(flag: &str, path: &Option<PathBuf>) -> Result<String, CliError> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    read_file(flag, path)
}

fn read_file(flag: &str, path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("{flag}: cannot read {}: {e}", path.display())))
}

async fn edit_hook(admin: &mut AdminClient, out: Output, args: EditArgs) -> Result<(), CliError> {
    let request = edit_request(args)?;
    let webhook = admin
        .update_webhook(request)
        .await
        .map_err(id_error)?
        .into_inner();
    print_webhook(out, &webhook)?;
    Ok(())
}

async fn set_enabled(
    admin: &mut AdminClient,
    out: Output,
    id: String,
    enabled: bool,
) -> Result<(), CliError> {
    let webhook = admin
        .set_webhook_enabled(pb::SetWebhookEnabledRequest {
            id,
            enabled,
            etag: String::new(),
        })
        .await
        .map_err(id_error)?
        .into_inner();
    print_webhook(out, &webhook)?;
    Ok(())
}

async fn delete_hook(
    admin: &mut AdminClient,
    out: Output,
    args: DeleteArgs,
) -> Result<(), CliError> {
    let id = args.id;
    let mut name = None;
    if super::must_ask(args.yes, &format!("delete webhook {id}"))? {
        let webhook = admin
            .get_webhook(pb::GetWebhookRequest { id: id.clone() })
            .await
            .map_err(id_error)?
            .into_inner();
        super::ask(
            &format!(
                "Delete webhook {id} ({})? Its pending deliveries are cancelled.",
                webhook.name
            ),
            "nothing was deleted",
        )
        .await?;
        name = Some(webhook.name);
    }
    admin
        .delete_webhook(pb::DeleteWebhookRequest {
            id: id.clone(),
            etag: String::new(),
        })
        .await
        .map_err(id_error)?;
    match out {
        Output::Json => output::print_empty_json(),
        Output::Table => match name {
            Some(name) => println!("Deleted webhook {id} ({name})."),
            None => println!("Deleted webhook {id}."),
        },
    }
    Ok(())
}

async fn rotate_secret(
    admin: &mut AdminClient,
    out: Output,
    args: RotateArgs,
) -> Result<(), CliError> {
    let grace_period = args.grace_period.map(|d| prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    });
    let rotated = admin
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            id: args.id,
            secret: args.secret.unwrap_or_default(),
            grace_period,
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map_err(id_error)?
        .into_inner();
    match out {
        Output::Json => output::print_json(&rotated)?,
        Output::Table => {
            if let Some(webhook) = &rotated.webhook {
                print!("{}", output::webhook_details(webhook));
            }
            let grace = args
                .grace_period
                .map_or_else(|| "24h".to_owned(), |d| format!("{d:?}"));
            println!(
                "\nNew signing secret: {}\nThis is the only time it is shown. Deliveries carry \
                 signatures with both the new and the old secret for {grace}.",
                rotated.secret
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(extra: &[&str]) -> Result<pb::UpdateWebhookRequest, CliError> {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            edit: EditArgs,
        }
        let mut args = vec!["edit", "0197a000-0000-7000-8000-000000000000"];
        args.extend_from_slice(extra);
        edit_request(Wrapper::parse_from(args).edit)
    }

    #[test]
    fn the_field_mask_names_exactly_the_flags_given() {
        let request = edit(&[
            "--name",
            "New",
            "--approve-node",
            "1",
            "--approve-node",
            "3",
        ])
        .unwrap_or_else(|e| panic!("{}", e.message()));
        assert_eq!(
            request.update_mask.map(|m| m.paths).unwrap_or_default(),
            ["name", "events.approval_nodes"]
        );
        let webhook = request.webhook.unwrap_or_default();
        assert_eq!(webhook.name, "New");
        assert_eq!(webhook.events.unwrap_or_default().approval_nodes, [1, 3]);

        let request = edit(&["--reject", "false", "--description", ""])
            .unwrap_or_else(|e| panic!("{}", e.message()));
        assert_eq!(
            request.update_mask.map(|m| m.paths).unwrap_or_default(),
            ["events.rejection", "description"]
        );
    }

    #[test]
    fn header_flags_become_the_headers_field() {
        let request = edit(&[
            "--header",
            "Authorization: Bearer abc",
            "--header",
            "X-Keep:",
        ])
        .unwrap_or_else(|e| panic!("{}", e.message()));
        assert_eq!(
            request.update_mask.map(|m| m.paths).unwrap_or_default(),
            ["headers"]
        );
        let headers = request.webhook.unwrap_or_default().headers;
        assert_eq!(headers[0].name, "Authorization");
        assert_eq!(headers[0].value, "Bearer abc");
        assert_eq!(headers[1].value, "");
        let cleared = edit(&["--no-headers", "--no-client-cert"])
            .unwrap_or_else(|e| panic!("{}", e.message()));
        assert_eq!(
            cleared.update_mask.map(|m| m.paths).unwrap_or_default(),
            ["headers", "client_certificate_pem", "client_key_pem"]
        );
        assert_eq!(
            edit(&["--header", "no colon"]).err().map(|e| e.exit_code()),
            Some(2)
        );
    }

    #[test]
    fn an_edit_without_changes_is_a_usage_error() {
        let error = edit(&[]).err().map(|e| e.exit_code());
        assert_eq!(error, Some(2));
    }
}
