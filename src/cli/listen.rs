//! `webhooks listen`: a local receiver for integrators. It verifies each POST's Standard Webhooks
//! signature and timestamp, prints the request readably and answers with a chosen status when
//! the request is verified, 401 with the reason when it is not.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use super::{CliError, EXIT_CODES_HELP, output};
use crate::delivery::signature::{self, SignedMessage};
use crate::domain::Secret;
use crate::domain::parse_duration;

/// Largest request body accepted (larger ones get 413).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Flags of `webhooks listen`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct ListenArgs {
    /// Port to listen on at 127.0.0.1 (0 picks a free one; the address is printed first).
    #[arg(long)]
    pub port: u16,

    /// The webhook's signing secret, as printed by `webhooks hooks create` (whsec_...; any other
    /// string of 16 to 256 characters is used as is, like the service does).
    #[arg(long, env = "WEBHOOKS_LISTEN_SECRET", hide_env_values = true)]
    pub secret: String,

    /// HTTP status to answer verified requests with (e.g. 500 to watch the service retry).
    #[arg(long, default_value_t = 204, value_parser = clap::value_parser!(u16).range(200..=599))]
    pub status: u16,

    /// How far webhook-timestamp may be from this machine's clock, either way (e.g. 30s, 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub tolerance: Duration,
}

/// Runs `webhooks listen` until Ctrl-C and returns the exit code.
pub async fn run(args: ListenArgs) -> ExitCode {
    super::finish(execute(args).await)
}

/// What every request's handler needs, from the flags, shared by all connections.
struct Settings {
    /// `--secret`: the key the signatures must be made with.
    secret: Secret,
    /// `--status`: the answer to a verified request.
    status: StatusCode,
    /// `--tolerance`: how far `webhook-timestamp` may be from the clock.
    tolerance: Duration,
}

async fn execute(args: ListenArgs) -> Result<(), CliError> {
    if args.secret.trim().is_empty() {
        return Err(CliError::Usage(
            "--secret: give the webhook's signing secret (whsec_...)".to_owned(),
        ));
    }
    let secret = Secret::parse_or_generate(args.secret.trim())
        .map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| CliError::Usage(format!("--status {}: not an HTTP status", args.status)))?;
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            CliError::Other(format!(
                "--port {}: cannot listen on 127.0.0.1:{}: {e}",
                args.port, args.port
            ))
        })?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| CliError::Other(format!("cannot read the listening address: {e}")))?;
    println!("Listening on http://{addr}/");
    println!(
        "Verifying signatures with {} (timestamp tolerance {}s); answering {} when verified, \
         401 otherwise. Ctrl-C to stop.",
        secret.hint(),
        args.tolerance.as_secs(),
        status.as_u16()
    );
    let _ = std::io::stdout().flush();

    let settings = Arc::new(Settings {
        secret,
        status,
        tolerance: args.tolerance,
    });
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let settings = settings.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| handle(request, settings.clone()));
                        if let Err(e) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            eprintln!("listen: connection error: {e}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("listen: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut stop => {
                eprintln!("listen: stopped");
                return Ok(());
            }
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    settings: Arc<Settings>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = OffsetDateTime::now_utc();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.to_string());
    let headers = request.headers().clone();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let reason = format!("could not read the body: {e}");
            print_block(&format!("── {method} {path}: {reason}\n"));
            return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, reason));
        }
    };
    if method != Method::POST {
        let reason = "only POST is accepted".to_owned();
        print_block(&format!("── {method} {path}: answered 405 ({reason})\n"));
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, reason));
    }
    let verdict = verify(
        &headers,
        &body,
        &settings.secret,
        settings.tolerance,
        received_at.unix_timestamp(),
    );
    let status = match &verdict {
        Ok(()) => settings.status,
        Err(_) => StatusCode::UNAUTHORIZED,
    };
    print_block(&report(
        &method,
        &path,
        &headers,
        &body,
        received_at,
        &verdict,
        status,
    ));
    Ok(match verdict {
        Ok(()) => reply(status, String::new()),
        Err(reason) => reply(status, format!("{reason}\n")),
    })
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Writes one block to stdout at once, so concurrent requests do not interleave.
fn print_block(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Checks a request's Standard Webhooks headers and signature (see [`signature::verify`]); the
/// error says why not, as listen prints it and answers it with the 401.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
    tolerance: Duration,
    now: i64,
) -> Result<(), String> {
    let message = SignedMessage {
        message_id: header(headers, "webhook-id").ok_or("missing webhook-id header")?,
        timestamp: header(headers, "webhook-timestamp")
            .ok_or("missing webhook-timestamp header")?,
        signatures: header(headers, "webhook-signature")
            .ok_or("missing webhook-signature header")?,
        body,
    };
    signature::verify(&message, secret, tolerance, now).map_err(|refusal| refusal.to_string())
}

fn report(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    received_at: OffsetDateTime,
    verdict: &Result<(), String>,
    status: StatusCode,
) -> String {
    let text = String::from_utf8_lossy(body);
    let event_type = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "(no type: the body is not a webhook JSON document)".to_owned());
    let received = output::rfc3339(&crate::api::convert::timestamps::to_proto(received_at));
    let timestamp = match header(headers, "webhook-timestamp") {
        None => "(missing)".to_owned(),
        Some(value) => match value.parse::<i64>() {
            Ok(seconds) => format!(
                "{value} ({}, {}s before it arrived)",
                output::rfc3339(&prost_types::Timestamp { seconds, nanos: 0 }),
                received_at.unix_timestamp().saturating_sub(seconds)
            ),
            Err(_) => value.to_owned(),
        },
    };
    let signature = match verdict {
        Ok(()) => "verified".to_owned(),
        Err(reason) => format!("REJECTED: {reason}"),
    };
    let mut out = String::new();
    let _ = writeln!(out, "── {method} {path} at {received}");
    let rows = [
        ("event type", event_type),
        (
            "webhook-id",
            header(headers, "webhook-id")
                .unwrap_or("(missing)")
                .to_owned(),
        ),
        ("webhook-timestamp", timestamp),
        ("signature", signature),
        ("answered", status.as_u16().to_string()),
    ];
    out.push_str(&output::details(&rows));
    if !text.is_empty() {
        out.push_str(&output::pretty_body(&text));
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        headers
    }

    fn check(headers: &HeaderMap, now: i64) -> Result<(), String> {
        let secret = Secret::parse_or_generate(SECRET).map_err(|e| e.to_string())?;
        verify(headers, BODY, &secret, Duration::from_secs(300), now)
    }

    /// The vector of the Standard Webhooks reference libraries.
    const GOOD: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_reference_vector_verifies_alone_or_among_others() {
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        assert_eq!(check(&headers(id, "1614265330", GOOD), 1614265330), Ok(()));
        let several = format!("v1,bm90IGl0 v1a,whatever {GOOD}");
        assert_eq!(
            check(&headers(id, "1614265330", &several), 1614265400),
            Ok(())
        );
    }

    #[test]
    fn bad_signatures_and_timestamps_are_refused_with_a_reason() {
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let wrong = check(&headers(id, "1614265330", "v1,bm90IGl0"), 1614265330);
        assert!(wrong.is_err_and(|e| e.contains("no signature")));
        let stale = check(&headers(id, "1614265330", GOOD), 1614265330 + 301);
        assert!(stale.is_err_and(|e| e.contains("301s old")));
        let future = check(&headers(id, "1614265330", GOOD), 1614265330 - 301);
        assert!(future.is_err_and(|e| e.contains("in the future")));
        let other_id = check(&headers("msg_other", "1614265330", GOOD), 1614265330);
        assert!(other_id.is_err());
        let no_v1 = check(&headers(id, "1614265330", "v2,abc"), 1614265330);
        assert!(no_v1.is_err_and(|e| e.contains("no v1")));
        let missing = check(&HeaderMap::new(), 1614265330);
        assert!(missing.is_err_and(|e| e.contains("webhook-id")));
    }
}
