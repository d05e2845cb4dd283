//! `webhooks events publish`: publishes one decision, from flags or from a JSON file that mirrors
//! `PublishEventRequest` (proto field names in snake_case).

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::output;
use super::{CliError, ClientArgs, EXIT_CODES_HELP, FunctionArg, Output, parse_rfc3339, timestamp};
use crate::proto::v1 as pb;
use crate::proto::v1::publish_event_request::Request;

/// `webhooks events`: what back-office services publish.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct EventsArgs {
    /// Connection and output flags.
    #[command(flatten)]
    pub client: ClientArgs,

    /// What to do.
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
    /// A JSON file mirroring PublishEventRequest in snake_case (`-` reads stdin), e.g.
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
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("--file {path}: not valid JSON: {e}")))?;
    request_from_json(&value).map_err(|e| CliError::Usage(format!("--file {path}: {e}")))
}

/// Converts a JSON document mirroring `PublishEventRequest` (snake_case field names, enums by
/// proto name or number, timestamps in RFC 3339, `null` for unset) into the message. Unknown
/// fields are refused, so a typo does not silently drop data. Errors name the field's path.
pub fn request_from_json(value: &Value) -> Result<pb::PublishEventRequest, String> {
    let mut top = Fields::new(value, "")?;
    let decision = match top.take("decision") {
        None => 0,
        Some(value) => decision_from_json(&value, "decision")?,
    };
    let mut request = pb::PublishEventRequest {
        idempotency_key: top.string("idempotency_key")?,
        decision,
        approval_node: top.u32("approval_node")?,
        occurred_at: top.timestamp("occurred_at")?,
        request: None,
    };
    let kinds = [
        "withdrawal",
        "prop_trading_participation",
        "prop_trading_live_stage",
    ];
    for kind in kinds {
        let Some(body) = top.take(kind) else {
            continue;
        };
        if request.request.is_some() {
            return Err(format!(
                "only one of {} may be set (it says which request the decision is about)",
                kinds.join(", ")
            ));
        }
        let mut f = Fields::new(&body, kind)?;
        request.request = Some(match kind {
            "withdrawal" => Request::Withdrawal(pb::WithdrawalRequest {
                id: f.string("id")?,
                client_id: f.string("client_id")?,
                client_name: f.string("client_name")?,
                client_email: f.string("client_email")?,
                trading_account: f.string("trading_account")?,
                amount: f.string("amount")?,
                currency: f.string("currency")?,
                payment_method: f.string("payment_method")?,
                beneficiary: match f.take("beneficiary") {
                    None => None,
                    Some(value) => {
                        let mut b = Fields::new(&value, "withdrawal.beneficiary")?;
                        let beneficiary = pb::Beneficiary {
                            account_holder: b.string("account_holder")?,
                            bank_name: b.string("bank_name")?,
                            iban: b.string("iban")?,
                            account_number: b.string("account_number")?,
                            swift_code: b.string("swift_code")?,
                            wallet_address: b.string("wallet_address")?,
                            network: b.string("network")?,
                        };
                        b.finish()?;
                        Some(beneficiary)
                    }
                },
                submitted_at: f.timestamp("submitted_at")?,
                status: f.string("status")?,
                remarks: f.string("remarks")?,
            }),
            "prop_trading_participation" => {
                Request::PropTradingParticipation(pb::PropTradingParticipationRequest {
                    id: f.string("id")?,
                    client_id: f.string("client_id")?,
                    client_name: f.string("client_name")?,
                    client_email: f.string("client_email")?,
                    program: f.string("program")?,
                    challenge: f.string("challenge")?,
                    account_size: f.string("account_size")?,
                    fee: f.string("fee")?,
                    currency: f.string("currency")?,
                    evaluation_account: f.string("evaluation_account")?,
                    submitted_at: f.timestamp("submitted_at")?,
                    status: f.string("status")?,
                    remarks: f.string("remarks")?,
                })
            }
            _ => Request::PropTradingLiveStage(pb::PropTradingLiveStageRequest {
                id: f.string("id")?,
                client_id: f.string("client_id")?,
                client_name: f.string("client_name")?,
                client_email: f.string("client_email")?,
                program: f.string("program")?,
                challenge: f.string("challenge")?,
                account_size: f.string("account_size")?,
                currency: f.string("currency")?,
                evaluation_account: f.string("evaluation_account")?,
                live_account: f.string("live_account")?,
                submitted_at: f.timestamp("submitted_at")?,
                status: f.string("status")?,
                remarks: f.string("remarks")?,
            }),
        });
        f.finish()?;
    }
    top.finish()?;
    if request.request.is_none() {
        return Err(format!(
            "one of {} is required (the request the decision is about)",
            kinds.join(", ")
        ));
    }
    Ok(request)
}

fn decision_from_json(value: &Value, path: &str) -> Result<i32, String> {
    match value {
        Value::String(name) => pb::Decision::from_str_name(name)
            .map(|d| d as i32)
            .ok_or_else(|| {
                format!("{path}: `{name}` is not DECISION_APPROVED or DECISION_REJECTED")
            }),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| pb::Decision::try_from(*n).is_ok())
            .ok_or_else(|| format!("{path}: {n} is not a Decision value")),
        other => Err(format!(
            "{path}: must be a string like \"DECISION_APPROVED\", not {}",
            kind_of(other)
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of one JSON object, taken one by one; whatever is left at the end is unknown.
struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    fn new(value: &Value, path: &str) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Self {
                path: path.to_owned(),
                map: map.clone(),
            }),
            other => Err(format!(
                "{}: must be a JSON object, not {}",
                if path.is_empty() {
                    "the document"
                } else {
                    path
                },
                kind_of(other)
            )),
        }
    }

    fn path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The field's value; `null` counts as absent.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|value| !value.is_null())
    }

    fn string(&mut self, name: &str) -> Result<String, String> {
        let path = self.path(name);
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(format!("{path}: must be a string, not {}", kind_of(&other))),
        }
    }

    fn u32(&mut self, name: &str) -> Result<Option<u32>, String> {
        let path = self.path(name);
        let number = match self.map.remove(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.as_u64(),
            // Proto JSON also allows integers as strings.
            Some(Value::String(text)) => text.trim().parse::<u64>().ok(),
            Some(other) => {
                return Err(format!(
                    "{path}: must be a whole number, not {}",
                    kind_of(&other)
                ));
            }
        };
        number
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{path}: must be a whole number from 0 to 4294967295"))
    }

    fn timestamp(&mut self, name: &str) -> Result<Option<prost_types::Timestamp>, String> {
        let path = self.path(name);
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_rfc3339(&text)
                .map(|at| Some(timestamp(at)))
                .map_err(|e| format!("{path}: {e}")),
            Some(other) => Err(format!(
                "{path}: must be an RFC 3339 time string, not {}",
                kind_of(&other)
            )),
        }
    }

    /// Refuses fields that were not taken.
    fn finish(self) -> Result<(), String> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => Err(format!(
                "unknown field `{}` (field names are the proto's, in snake_case)",
                self.path(name)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_withdrawal_document_converts() {
        let request = request_from_json(&json!({
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
        }))
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
    fn mistakes_name_the_field() {
        let error = |doc: Value| request_from_json(&doc).err().unwrap_or_default();
        assert!(error(json!({"withdrawal": {"amount": 10}})).starts_with("withdrawal.amount:"));
        assert!(error(json!({"withdrawal": {"clientId": "C"}})).contains("`withdrawal.clientId`"));
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
