//! The operator tools of the `webhooks` binary, built on the `webhooks-client` crate (its
//! generated clients, and its connection with token, TLS, deadline and retries):
//! `webhooks hooks ...`, `webhooks deliveries ...` and `webhooks events publish` talk to a running
//! service; `webhooks listen` is a local receiver that verifies signatures for integrators.
//!
//! Every client command takes `--server`, `--token` (or `--token-file`), the TLS flags
//! (`--ca-cert`, `--client-cert`, `--client-key`), `--output table|json` and `--timeout` (the
//! deadline of each call, not of the `deliveries watch` stream); errors go to stderr
//! and the exit code reflects the gRPC status (see [`EXIT_CODES_HELP`]).

pub mod audit;
mod binary;
pub mod credentials;
pub mod deliveries;
pub mod events;
pub mod hooks;
pub mod keys;
pub mod listen;
pub mod output;
pub mod shell;

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic::{Code, Status};
use webhooks_client::StatusDetails as _;
use webhooks_client::v1 as pb;

pub use webhooks_client::{AdminClient, Client as Connection, IngestClient};

pub use binary::{BinaryCli, BinaryCommand};

/// The exit codes of the client commands, shown by their `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure: INTERNAL, UNKNOWN, UNIMPLEMENTED, DATA_LOSS, CANCELLED, a local
     error such as a port already in use, or a service TLS certificate this client does not
     trust (see --ca-cert)
  2  usage error (bad or missing flags; an unreadable --file, --token-file or certificate
     file) or INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION
  3  NOT_FOUND
  4  PERMISSION_DENIED or UNAUTHENTICATED, or the service refused the client certificate
     (or wanted one: see --client-cert)
  5  UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED: the service cannot be reached
     or is overloaded; try again later
  6  ALREADY_EXISTS or ABORTED (a conflict, e.g. an idempotency key reused with other content)
  7  not confirmed: the question was answered no, or there was no terminal to ask on and no --yes
Errors are printed to stderr with the gRPC status message.";

/// How long connecting to the service may take before the command gives up (exit code 5).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Output format of the client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text for people.
    Table,
    /// The proto messages in the canonical proto3 JSON mapping, as grpcurl prints them
    /// (lowerCamelCase names, enum names, RFC 3339 times, int64 as strings, default values left
    /// out), for scripts. `deliveries watch` prints one object per line.
    Json,
}

/// Flags shared by every command that talks to the service. They are global: they may come
/// before or after the subcommand (`webhooks hooks --output json list` or
/// `webhooks hooks list --output json`).
#[derive(Clone, Args)]
pub struct ClientArgs {
    /// URL of the webhooks service's gRPC API: http://host:port, or https://host:port for a
    /// service with TLS (its certificate is checked against the public web roots, or --ca-cert).
    #[arg(
        long,
        env = "WEBHOOKS_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,

    /// Token sent as `authorization: Bearer <token>` on every call. Flags are visible to other
    /// users of the machine and stay in shell history: prefer --token-file.
    #[arg(long, env = "WEBHOOKS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// File holding the token (surrounding whitespace, such as the trailing newline, is
    /// ignored). Not together with --token.
    #[arg(long, env = "WEBHOOKS_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,

    /// CA certificates (PEM) to trust for an https:// server instead of the public web roots:
    /// for a service whose certificate a private CA signed.
    #[arg(long, env = "WEBHOOKS_CA_CERT", value_name = "FILE", global = true)]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate (PEM, with any intermediates) for a service that requires mutual TLS;
    /// with --client-key.
    #[arg(
        long,
        env = "WEBHOOKS_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key",
        global = true
    )]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(
        long,
        env = "WEBHOOKS_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert",
        global = true
    )]
    pub client_key: Option<PathBuf>,

    /// Output format: `table` for people, `json` for scripts.
    #[arg(long, env = "WEBHOOKS_OUTPUT", value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,

    /// Deadline of each call to the service (e.g. 500ms, 30s, 2m; a bare number is seconds):
    /// a call still unanswered then fails with DEADLINE_EXCEEDED (exit code 5). Not applied to
    /// `deliveries watch`, which streams until stopped.
    #[arg(
        long,
        env = "WEBHOOKS_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_timeout,
        default_value = "30s",
        global = true
    )]
    pub timeout: Duration,
}

/// Parses a `--timeout` value: a positive number with a unit (`ms`, `s`, `m`, `h`), or a bare
/// number of seconds. Stricter than [`crate::domain::parse_duration`]: a zero deadline would fail
/// every call, so it is refused here.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{value}`: the unit must be ms, s, m or h (e.g. 30s)"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 500ms, 30s or 2m"))?;
    Duration::try_from_secs_f64(number * scale)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{value}`: the duration must be more than zero"))
}

/// Why a client command failed; each maps to an exit code (see [`EXIT_CODES_HELP`]).
#[derive(Debug)]
pub enum CliError {
    /// The service answered with an error. `flag` is the command-line flag behind the field the
    /// message names, when there is one.
    Status {
        /// The gRPC status.
        status: Status,
        /// The flag that set the offending field, e.g. `--url`.
        flag: Option<String>,
    },
    /// Bad flags or input; the message names the flag.
    Usage(String),
    /// The service cannot be reached.
    Unavailable(String),
    /// The operator did not confirm a destructive action.
    NotConfirmed(String),
    /// This client does not trust the service's TLS certificate.
    Untrusted(String),
    /// The service refused this client's TLS certificate, or wanted one.
    CertificateRefused(String),
    /// A local failure (I/O, binding a port, ...).
    Other(String),
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        CliError::status_with_flags(status, |_| None)
    }
}

/// The TLS failure behind a status, if any.
pub fn tls_failure_of(status: &Status) -> Option<credentials::TlsFailure> {
    std::error::Error::source(status).and_then(credentials::tls_failure)
}

impl CliError {
    /// The error for a TLS failure.
    pub fn from_tls(failure: credentials::TlsFailure) -> Self {
        match failure {
            credentials::TlsFailure::ServerNotTrusted(message) => CliError::Untrusted(message),
            credentials::TlsFailure::ClientRefused(message) => {
                CliError::CertificateRefused(message)
            }
            credentials::TlsFailure::Other(message) => CliError::Unavailable(message),
        }
    }

    /// A gRPC error whose field (the text before the first `: ` of its message) is mapped to a
    /// flag by `flag_for`, so people see which flag to fix.
    ///
    /// A status that carries a TLS failure becomes that failure, saying which side refused:
    /// with TLS 1.3 a service refuses a client certificate after the client thinks the
    /// handshake is done, so the refusal arrives as the first call's error rather than the
    /// connection's.
    pub fn status_with_flags(status: Status, flag_for: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(failure) = tls_failure_of(&status) {
            return CliError::from_tls(failure);
        }
        // tonic reports its own deadline (`--timeout`) as CANCELLED "Timeout expired"; it is the
        // deadline that passed, as the service reports it when it is the one giving up.
        let status = if status.code() == Code::Cancelled && status.message() == "Timeout expired" {
            Status::deadline_exceeded(
                "the service did not answer within the deadline (--timeout); try again, or give \
                 it longer",
            )
        } else {
            status
        };
        let flag = if status.code() == Code::InvalidArgument {
            status
                .message()
                .split_once(": ")
                .and_then(|(field, _)| flag_for(field.trim()))
        } else {
            None
        };
        CliError::Status { status, flag }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Status { status, .. } => exit_code_for(status.code()),
            CliError::Usage(_) => 2,
            CliError::Unavailable(_) => 5,
            CliError::NotConfirmed(_) => 7,
            CliError::Other(_) | CliError::Untrusted(_) => 1,
            CliError::CertificateRefused(_) => 4,
        }
    }

    /// The text printed to stderr.
    pub fn message(&self) -> String {
        match self {
            CliError::Status { status, flag } => {
                let mut text = if status.message().is_empty() {
                    "the service answered with an error".to_owned()
                } else {
                    status.message().to_owned()
                };
                if let Some(flag) = flag {
                    let _ = write!(text, " (set by {flag})");
                }
                let _ = write!(text, " [{}]", code_name(status.code()));
                {
                    // The message names the first violation; list the others too.
                    for violation in status.field_violations().iter().skip(1) {
                        let _ = write!(text, "\n  {}: {}", violation.field, violation.description);
                    }
                }
                text
            }
            CliError::Usage(message)
            | CliError::Unavailable(message)
            | CliError::NotConfirmed(message)
            | CliError::Untrusted(message)
            | CliError::CertificateRefused(message)
            | CliError::Other(message) => message.clone(),
        }
    }
}

/// The exit code for a gRPC status code (0 for OK).
pub fn exit_code_for(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => 2,
        Code::NotFound => 3,
        Code::PermissionDenied | Code::Unauthenticated => 4,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => 5,
        Code::AlreadyExists | Code::Aborted => 6,
        Code::Cancelled | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
            1
        }
    }
}

/// The canonical name of a gRPC status code, e.g. `NOT_FOUND`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Prints the error of a finished command and turns the outcome into the exit code.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
}

impl std::fmt::Debug for ClientArgs {
    /// Everything but the token, which must not reach a log or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientArgs")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("output", &self.output)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ClientArgs {
    /// The `--server` URL, with `http://` added when no scheme is given.
    pub fn server_url(&self) -> String {
        let server = self.server.trim();
        if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        }
    }

    /// The token to send, from `--token` or `--token-file`; `None` when neither is given.
    fn token(&self) -> Result<Option<(String, &'static str)>, CliError> {
        match (&self.token, &self.token_file) {
            // Checked here rather than by clap, so the message also covers the environment
            // variables, which clap's would not name.
            (Some(_), Some(_)) => Err(CliError::Usage(
                "--token and --token-file (or WEBHOOKS_TOKEN and WEBHOOKS_TOKEN_FILE) are \
                 both set: give the token one way only"
                    .to_owned(),
            )),
            (None, Some(path)) => Ok(Some((credentials::read_token_file(path)?, "--token-file"))),
            (Some(token), None) => Ok(Some((token.clone(), "--token"))),
            (None, None) => Ok(None),
        }
    }

    /// The TLS flags' files.
    fn tls_files(&self) -> credentials::TlsFiles<'_> {
        credentials::TlsFiles {
            ca_cert: self.ca_cert.as_deref(),
            client_cert: self.client_cert.as_deref(),
            client_key: self.client_key.as_deref(),
        }
    }

    /// Connects to `--server`, checking the token and TLS flags (and reading their files) first.
    /// Every call has the `--timeout` deadline (the `deliveries watch` stream none) and is
    /// retried as `clients/service-config.json` says.
    pub async fn connect(&self) -> Result<Connection, CliError> {
        let token = self.token()?;
        let url = self.server_url();
        let https = url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
        let files = self.tls_files();
        let given = files.given();
        if !https && !given.is_empty() {
            // Ignoring them would send the token in clear text to a server the operator meant
            // to verify.
            return Err(CliError::Usage(format!(
                "{} given, but --server {url} is plain http:// (no TLS), so no certificate \
                 would be checked or presented and the token would travel unencrypted: use \
                 https:// for a service with TLS, or drop the TLS flags",
                given.join(", ")
            )));
        }
        let mut builder = Connection::builder(url.clone())
            .default_deadline(self.timeout)
            .connect_timeout(CONNECT_TIMEOUT);
        let token_flag = token.as_ref().map(|(_, flag)| *flag);
        if let Some((token, _)) = token {
            builder = builder.bearer_token(token);
        }
        if https {
            builder = builder.tls_config(files.client_config()?);
        }
        builder.connect().await.map_err(|error| match error {
            webhooks_client::Error::Connect { source, .. } => {
                match credentials::tls_failure(&source) {
                    Some(failure) => CliError::from_tls(failure.at(&url)),
                    None => CliError::Unavailable(format!(
                        "cannot reach the service at {url} (--server): {}",
                        error_chain(&source)
                    )),
                }
            }
            webhooks_client::Error::InvalidUrl { reason, .. } => {
                CliError::Usage(format!("--server {url}: not a valid URL ({reason})"))
            }
            webhooks_client::Error::InvalidToken => CliError::Usage(format!(
                "{}: the token must be printable ASCII (it is sent as a header)",
                token_flag.unwrap_or("--token")
            )),
            other => CliError::Other(other.to_string()),
        })
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Whether a destructive command may go ahead without asking: `Ok(false)` with `--yes`,
/// `Ok(true)` when it must ask on the terminal, and a refusal when stdin is not a terminal.
/// `what` completes "refusing to ..." (e.g. `delete webhook 0197...`).
pub fn must_ask(yes: bool, what: &str) -> Result<bool, CliError> {
    if yes {
        return Ok(false);
    }
    if std::io::stdin().is_terminal() {
        return Ok(true);
    }
    Err(CliError::NotConfirmed(format!(
        "refusing to {what} without confirmation: stdin is not a terminal to ask on; pass --yes \
         to confirm"
    )))
}

/// Asks `question` on the terminal (`[y/N]`, on stderr) and reads the answer from stdin; anything
/// but `y` or `yes` is a refusal, reported as `refused` ("nothing was deleted").
pub async fn ask(question: &str, refused: &str) -> Result<(), CliError> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| CliError::Other(format!("reading the answer failed: {e}")))?
    .map_err(|e| CliError::Other(format!("reading the answer from stdin failed: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::NotConfirmed(format!("not confirmed: {refused}"))),
    }
}

/// Parses an RFC 3339 time flag (`2025-06-01T10:00:00Z`).
pub fn parse_rfc3339(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value.trim(), &Rfc3339)
        .map_err(|e| format!("`{value}` is not an RFC 3339 time like 2025-06-01T10:00:00Z ({e})"))
}

/// A protobuf timestamp from a time.
pub fn timestamp(at: OffsetDateTime) -> prost_types::Timestamp {
    crate::api::convert::timestamps::to_proto(at)
}

/// The request functions, as flag values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FunctionArg {
    /// Withdrawal requests.
    Withdrawal,
    /// Prop-trading participation (challenge purchase) requests.
    PropTradingParticipation,
    /// Prop-trading live-stage (funded account) requests.
    PropTradingLiveStage,
}

impl FunctionArg {
    /// The proto enum.
    pub fn proto(self) -> pb::Function {
        match self {
            FunctionArg::Withdrawal => pb::Function::Withdrawal,
            FunctionArg::PropTradingParticipation => pb::Function::PropTradingParticipation,
            FunctionArg::PropTradingLiveStage => pb::Function::PropTradingLiveStage,
        }
    }

    /// The flag value, e.g. `prop-trading-live-stage`.
    pub fn name(self) -> &'static str {
        match self {
            FunctionArg::Withdrawal => "withdrawal",
            FunctionArg::PropTradingParticipation => "prop-trading-participation",
            FunctionArg::PropTradingLiveStage => "prop-trading-live-stage",
        }
    }
}

/// Delivery statuses, as flag values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for an attempt.
    Pending,
    /// The destination answered 2xx.
    Succeeded,
    /// Every scheduled attempt failed.
    Failed,
    /// Not sent by design (once-per-request).
    Skipped,
    /// Not sent because the webhook was deleted.
    Cancelled,
}

impl StatusArg {
    /// The proto enum value.
    pub fn proto(self) -> i32 {
        (match self {
            StatusArg::Pending => pb::DeliveryStatus::Pending,
            StatusArg::Succeeded => pb::DeliveryStatus::Succeeded,
            StatusArg::Failed => pb::DeliveryStatus::Failed,
            StatusArg::Skipped => pb::DeliveryStatus::Skipped,
            StatusArg::Cancelled => pb::DeliveryStatus::Cancelled,
        }) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_documented_exit_code() {
        for (code, exit) in [
            (Code::InvalidArgument, 2),
            (Code::NotFound, 3),
            (Code::PermissionDenied, 4),
            (Code::Unauthenticated, 4),
            (Code::Unavailable, 5),
            (Code::AlreadyExists, 6),
            (Code::Internal, 1),
        ] {
            assert_eq!(exit_code_for(code), exit, "{code:?}");
            assert!(EXIT_CODES_HELP.contains(code_name(code)), "{code:?}");
        }
    }

    #[test]
    fn invalid_argument_names_the_flag() {
        let error = CliError::status_with_flags(
            Status::invalid_argument("webhook.destination_url: must use the http or https scheme"),
            |field| (field == "webhook.destination_url").then(|| "--url".to_owned()),
        );
        assert_eq!(error.exit_code(), 2);
        assert_eq!(
            error.message(),
            "webhook.destination_url: must use the http or https scheme (set by --url) \
             [INVALID_ARGUMENT]"
        );
    }

    #[test]
    fn timeouts_parse_with_units() {
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("3 days").is_err());
    }

    #[test]
    fn server_urls_get_a_scheme() {
        let args = |server: &str| ClientArgs {
            server: server.to_owned(),
            token: None,
            token_file: None,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            output: Output::Table,
            timeout: Duration::from_secs(30),
        };
        assert_eq!(args("127.0.0.1:1").server_url(), "http://127.0.0.1:1");
        assert_eq!(args("http://h:1").server_url(), "http://h:1");
    }
}
