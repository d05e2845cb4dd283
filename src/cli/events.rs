//! `webhooks events publish`: publishes one decision, from flags or from a JSON file that mirrors
//! `PublishEventRequest` in the proto3 JSON mapping (lowerCamelCase or snake_case names).

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use time::OffsetDateTime;

use super::output;
use super::{CliError, ClientArgs, EXIT_CODES_HELP, FunctionArg, Output, parse_rfc3339, timestamp};
use webhooks_client::v1 as pb;
use webhooks_client::v1::publish_event_request::Request;

/// `webhooks events`: what back-office services publish.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct EventsArgs {
    /// Connection and output flags.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Which `events` action runs; the connection flags above apply to every one.
    #[command(subcommand)]
    pub command: EventsCommand,
}

/// The `events` subcommands.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Publishes one decision on a client request; every matching webhook gets a delivery.
    Publish(PublishArgs),
}

/// A decision, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// Approved at an approver level (--node).
    Approved,
    /// Rejected.
    Rejected,
}

/// Flags of `events publish`: either the fields as flags, or `--file`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("fields").multiple(true)))]
pub struct PublishArgs {
    /// A JSON file holding a PublishEventRequest in the proto3 JSON mapping, field names in
    /// lowerCamelCase or snake_case (`-` reads stdin), e.g.
    /// {"idempotency_key": "...", "decision": "DECISION_APPROVED", "approval_node": 1,
    /// "withdrawal": {"id": "WD-1", "client_id": "C-1", "amount": "10.00", "currency": "USD"}}.
    /// Cannot be combined with the field flags.
    #[arg(long, value_name = "PATH", conflicts_with = "fields")]
    pub file: Option<String>,

    /// Idempotency key, unique per event (a repeat with the same content queues nothing).
    #[arg(long, group = "fields", required_unless_present = "file")]
    pub key: Option<String>,
    /// The decision.
    #[arg(long, value_enum, group = "fields", required_unless_present = "file")]
    pub decision: Option<DecisionArg>,
    /// The approver level that approved (required with --decision approved).
    #[arg(long, value_name = "N", group = "fields")]
    pub node: Option<u32>,
    /// The kind of request the decision is about.
    #[arg(long, value_enum, group = "fields", required_unless_present = "file")]
    pub function: Option<FunctionArg>,
    /// When the decision was taken (RFC 3339); default now.
    #[arg(long, value_parser = parse_rfc3339, group = "fields")]
    pub occurred_at: Option<OffsetDateTime>,

    /// The request id in the back office.
    #[arg(long, group = "fields", required_unless_present = "file")]
    pub request_id: Option<String>,
    /// The client id.
    #[arg(long, group = "fields", required_unless_present = "file")]
    pub client_id: Option<String>,
    /// The client's name.
    #[arg(long, group = "fields")]
    pub client_name: Option<String>,
    /// The client's email.
    #[arg(long, group = "fields")]
    pub client_email: Option<String>,
    /// When the client submitted the request (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339, group = "fields")]
    pub submitted_at: Option<OffsetDateTime>,
    /// The request's status in the back office after this decision.
    #[arg(long, group = "fields")]
    pub status: Option<String>,
    /// Remarks by the approver.
    #[arg(long, group = "fields")]
    pub remarks: Option<String>,
    /// ISO-4217 currency (all functions).
    #[arg(long, group = "fields")]
    pub currency: Option<String>,

    /// Withdrawal: the amount as a decimal string, e.g. 1250.00.
    #[arg(long, group = "fields")]
    pub amount: Option<String>,
    /// Withdrawal: the trading account the money leaves.
    #[arg(long, group = "fields")]
    pub trading_account: Option<String>,
    /// Withdrawal: the payment method, e.g. bank_transfer. (The beneficiary needs --file.)
    #[arg(long, group = "fields")]
    pub payment_method: Option<String>,

    /// Prop trading: the program.
    #[arg(long, group = "fields")]
    pub program: Option<String>,
    /// Prop trading: the challenge.
    #[arg(long, group = "fields")]
    pub challenge: Option<String>,
    /// Prop trading: the account size as a decimal string.
    #[arg(long, group = "fields")]
    pub account_size: Option<String>,
    /// Prop trading: the evaluation account.
    #[arg(long, group = "fields")]
    pub evaluation_account: Option<String>,
    /// Prop-trading participation: the fee as a decimal string.
    #[arg(long, group = "fields")]
    pub fee: Option<String>,
    /// Prop-trading live stage: the live account to be funded.
    #[arg(long, group = "fields")]
    pub live_account: Option<String>,
}

/// Runs `webhooks events ...` and returns the exit code.
pub async fn run(args: EventsArgs) -> ExitCode {
    super::finish(execute(args).await)
}

async fn execute(args: EventsArgs) -> Result<(), CliError> {
    let out = args.client.output;
    let EventsCommand::Publish(publish) = args.command;
    // Check the input before connecting: a bad file is a usage error whatever the server does.
    let (request, from_file) = match &publish.file {
        Some(path) => (read_event_file(path).await?, true),
        None => (request_from_flags(&publish)?, false),
    };
    let mut ingest = args.client.connect().await?.ingest();
    let response = ingest
        .publish_event(request)
        .await
        .map_err(|status| {
            CliError::status_with_flags(status, |field| {
                if from_file {
                    Some(format!("`{field}` in --file"))
                } else {
                    flag_for_field(field)
                }
            })
        })?
        .into_inner();
    match out {
        Output::Json => output::print_json(&response)?,
        Output::Table => {
            let mut pairs = vec![
                ("event", response.event_id.clone()),
                ("type", response.event_type.clone()),
                ("duplicate", output::yes_no(response.duplicate).to_owned()),
                ("deliveries", response.delivery_ids.len().to_string()),
            ];
            pairs.extend(
                response
                    .delivery_ids
                    .iter()
                    .map(|id| ("  delivery", id.clone())),
            );
            print!("{}", output::details(&pairs));
            if response.duplicate {
                println!("\nAlready published with this key: nothing new was queued.");
            }
        }
    }
    Ok(())
}

/// The flag behind a field the service names (`withdrawal.amount` is `--amount`).
fn flag_for_field(field: &str) -> Option<String> {
    let flag = match field {
        "idempotency_key" => "--key".to_owned(),
        "decision" => "--decision".to_owned(),
        "approval_node" => "--node".to_owned(),
        "occurred_at" => "--occurred-at".to_owned(),
        "request" => "--function".to_owned(),
        _ => {
            let (_, name) = field.split_once('.')?;
            match name {
                "id" => "--request-id".to_owned(),
                name if name.starts_with("beneficiary") => return None,
                name => format!("--{}", name.replace('_', "-")),
            }
        }
    };
    Some(flag)
}

/// The request `events publish` sends for its flags. A flag that does not belong to
/// `--function`'s request kind is a usage error naming it.
pub fn request_from_flags(args: &PublishArgs) -> Result<pb::PublishEventRequest, CliError> {
    let missing = |flag: &str| CliError::Usage(format!("{flag} is required (or use --file)"));
    let function = args.function.ok_or_else(|| missing("--function"))?;
    let decision = match args.decision.ok_or_else(|| missing("--decision"))? {
        DecisionArg::Approved => pb::Decision::Approved,
        DecisionArg::Rejected => pb::Decision::Rejected,
    };
    let not_for = |flag: &str, given: bool| -> Result<(), CliError> {
        if given {
            Err(CliError::Usage(format!(
                "{flag} does not apply to --function {}",
                function.name()
            )))
        } else {
            Ok(())
        }
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let id = text(&args.request_id);
    let client_id = text(&args.client_id);
    let client_name = text(&args.client_name);
    let client_email = text(&args.client_email);
    let submitted_at = args.submitted_at.map(timestamp);
    let status = text(&args.status);
    let remarks = text(&args.remarks);
    let currency = text(&args.currency);
    let request = match function {
        FunctionArg::Withdrawal => {
            not_for("--program", args.program.is_some())?;
            not_for("--challenge", args.challenge.is_some())?;
            not_for("--account-size", args.account_size.is_some())?;
            not_for("--evaluation-account", args.evaluation_account.is_some())?;
            not_for("--fee", args.fee.is_some())?;
            not_for("--live-account", args.live_account.is_some())?;
            Request::Withdrawal(pb::WithdrawalRequest {
                id,
                client_id,
                client_name,
                client_email,
                trading_account: text(&args.trading_account),
                amount: text(&args.amount),
                currency,
                payment_method: text(&args.payment_method),
                beneficiary: None,
                submitted_at,
                status,
                remarks,
            })
        }
        FunctionArg::PropTradingParticipation => {
            not_for("--amount", args.amount.is_some())?;
            not_for("--trading-account", args.trading_account.is_some())?;
            not_for("--payment-method", args.payment_method.is_some())?;
            not_for("--live-account", args.live_account.is_some())?;
            Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
                id,
                client_id,
                client_name,
                client_email,
                program: text(&args.program),
                challenge: text(&args.challenge),
                account_size: text(&args.account_size),
                fee: text(&args.fee),
                currency,
                evaluation_account: text(&args.evaluation_account),
                submitted_at,
                status,
                remarks,
            })
        }
        FunctionArg::PropTradingLiveStage => {
            not_for("--amount", args.amount.is_some())?;
            not_for("--trading-account", args.trading_account.is_some())?;
            not_for("--payment-method", args.payment_method.is_some())?;
            not_for("--fee", args.fee.is_some())?;
            Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
                id,
                client_id,
                client_name,
                client_email,
                program: text(&args.program),
                challenge: text(&args.challenge),
                account_size: text(&args.account_size),
                currency,
                evaluation_account: text(&args.evaluation_account),
                live_account: text(&args.live_account),
                submitted_at,
                status,
                remarks,
            })
        }
    };
    if decision == pb::Decision::Rejected && args.node.is_some() {
        return Err(CliError::Usage(
            "--node is only for --decision approved (a rejection has no approver level)".to_owned(),
        ));
    }
    Ok(pb::PublishEventRequest {
        idempotency_key: args.key.clone().ok_or_else(|| missing("--key"))?,
        decision: decision as i32,
        approval_node: args.node,
        occurred_at: args.occurred_at.map(timestamp),
        request: Some(request),
    })
}

async fn read_event_file(path: &str) -> Result<pb::PublishEventRequest, CliError> {
    let text = if path == "-" {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tokio::io::stdin(), &mut text)
            .await
            .map_err(|e| CliError::Usage(format!("--file -: cannot read stdin: {e}")))?;
        text
    } else {
        tokio::fs::read_to_string(path)
            .await
            .map_err(|e| CliError::Usage(format!("--file {path}: cannot read it: {e}")))?
    };
    request_from_json(&text).map_err(|e| CliError::Usage(format!("--file {path}: {e}")))
}

/// Parses a JSON document in the proto3 JSON mapping of `PublishEventRequest` (field names in
/// lowerCamelCase or the proto's snake_case, enums by name or number, timestamps in RFC 3339,
/// `null` for unset). Unknown fields are refused, so a typo does not silently drop data. Errors
/// name the field's path.
pub fn request_from_json(text: &str) -> Result<pb::PublishEventRequest, String> {
    // The mapping keeps the last member of a oneof given twice; a document naming two requests
    // is a mistake, so it is refused rather than half-read.
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    if !document.is_object() {
        return Err("the document must be a JSON object (a PublishEventRequest)".to_owned());
    }
    let members = [
        "withdrawal",
        "prop_trading_participation",
        "propTradingParticipation",
        "prop_trading_live_stage",
        "propTradingLiveStage",
    ];
    let given = members
        .iter()
        .filter(|name| document.get(**name).is_some_and(|v| !v.is_null()))
        .count();
    if given > 1 {
        return Err(
            "only one of withdrawal, prop_trading_participation, prop_trading_live_stage may be \
             set (it says which request the decision is about)"
                .to_owned(),
        );
    }
    let request: pb::PublishEventRequest = output::message_from_json(text)?;
    if request.request.is_none() {
        return Err(
            "one of withdrawal, prop_trading_participation, prop_trading_live_stage is required \
             (the request the decision is about)"
                .to_owned(),
        );
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_full_withdrawal_document_converts() {
        let request = request_from_json(
            &json!({
                "idempotency_key": "k-1",
                "decision": "DECISION_APPROVED",
                "approval_node": 2,
                "occurred_at": "2025-06-01T10:00:00Z",
                "withdrawal": {
                    "id": "WD-1",
                    "client_id": "C-1",
                    "amount": "10.00",
                    "currency": "USD",
                    "beneficiary": { "iban": "DE89370400440532013000", "network": null }
                }
            })
            .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.idempotency_key, "k-1");
        assert_eq!(request.decision, pb::Decision::Approved as i32);
        assert_eq!(request.approval_node, Some(2));
        assert_eq!(request.occurred_at.map(|t| t.seconds), Some(1_748_772_000));
        let Some(Request::Withdrawal(w)) = request.request else {
            panic!("a withdrawal expected");
        };
        assert_eq!(w.amount, "10.00");
        assert_eq!(
            w.beneficiary.map(|b| b.iban).as_deref(),
            Some("DE89370400440532013000")
        );
    }

    #[test]
    fn camel_case_names_as_grpcurl_prints_them_convert_too() {
        let request = request_from_json(
            &json!({
                "idempotencyKey": "k-2",
                "decision": "DECISION_REJECTED",
                "propTradingLiveStage": { "id": "PL-1", "liveAccount": "LIVE-1" }
            })
            .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.idempotency_key, "k-2");
        let Some(Request::PropTradingLiveStage(stage)) = request.request else {
            panic!("a live-stage request expected");
        };
        assert_eq!(stage.live_account, "LIVE-1");
    }

    #[test]
    fn mistakes_name_the_field() {
        let error = |doc: Value| {
            request_from_json(&doc.to_string())
                .err()
                .unwrap_or_default()
        };
        let error_of = |text: &str| request_from_json(text).err().unwrap_or_default();
        assert!(error(json!({"withdrawal": {"amount": 10}})).starts_with("withdrawal.amount:"));
        assert!(error(json!({"withdrawal": {"client": "C"}})).contains("client"));
        assert!(error_of("{\"withdrawal\": {}} trailing").contains("trailing"));
        assert!(error(json!({"decision": "APPROVED", "withdrawal": {}})).starts_with("decision:"));
        assert!(
            error(json!({"approval_node": -1, "withdrawal": {}})).starts_with("approval_node:")
        );
        assert!(
            error(json!({"withdrawal": {}, "prop_trading_live_stage": {}})).contains("only one")
        );
        assert!(error(json!({"idempotency_key": "k"})).contains("is required"));
        assert!(error(json!([1])).contains("must be a JSON object"));
    }

    #[test]
    fn service_fields_map_to_flags() {
        assert_eq!(
            flag_for_field("withdrawal.amount").as_deref(),
            Some("--amount")
        );
        assert_eq!(
            flag_for_field("prop_trading_live_stage.id").as_deref(),
            Some("--request-id")
        );
        assert_eq!(flag_for_field("approval_node").as_deref(), Some("--node"));
        assert_eq!(flag_for_field("withdrawal.beneficiary.iban"), None);
    }
}
