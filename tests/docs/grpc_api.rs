//! `docs/grpc-api.md`: every RPC has a section and a grpcurl example, and every example runs, in
//! page order, against a real service on a fresh database, ending as the page says.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::examples::{self, Target, json_values};
use crate::markdown::{self, Doc};
use testkit::Receiver;

use crate::support::{self, TestApp};

const PAGE: &str = "grpc-api.md";

/// `(service, rpc)` for every RPC of the `.proto` files.
fn rpcs() -> Vec<(String, String)> {
    let dir = markdown::root().join("proto/backoffice/webhooks/v1");
    let mut rpcs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable .proto");
        let mut service = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("service ") {
                service = rest.split_whitespace().next().map(str::to_owned);
            } else if line == "}" {
                service = None;
            } else if let (Some(service), Some(rest)) = (&service, line.strip_prefix("rpc ")) {
                let name = rest.split('(').next().unwrap_or_default().trim().to_owned();
                rpcs.push((service.clone(), name));
            }
        }
    }
    assert!(
        rpcs.len() >= 15,
        "parsed only {} RPCs from {}: {rpcs:?}",
        rpcs.len(),
        dir.display()
    );
    rpcs
}

#[test]
fn every_rpc_has_a_section_and_an_example() {
    let doc = markdown::load(PAGE);
    let examples = examples::examples(&doc);
    for (service, rpc) in rpcs() {
        assert!(
            doc.text.contains(&format!("\n### {rpc}\n")),
            "{PAGE} has no section `### {rpc}` for {service}/{rpc}"
        );
        let method = format!("backoffice.webhooks.v1.{service}/{rpc}");
        assert!(
            examples
                .iter()
                .any(|e| e.block.marker() == "grpcurl" && e.block.code.contains(&method)),
            "{PAGE} has no grpcurl example calling {method}"
        );
    }
    // Each error code of the API has a runnable example.
    for code in [
        "InvalidArgument",
        "PermissionDenied",
        "NotFound",
        "AlreadyExists",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unavailable",
    ] {
        assert!(
            examples.iter().any(|e| e.expect.as_deref() == Some(code)),
            "{PAGE} has no example that fails with {code}"
        );
    }
}

#[test]
fn the_stated_defaults_are_the_services() {
    let doc = markdown::load(PAGE);
    let text = markdown::normalized(&doc.text);
    let days = |id: &str| support::serve_default_seconds(id) / 86400;
    let max_payload: usize = support::serve_default("max_payload_bytes")
        .parse()
        .expect("a number of bytes");
    for phrase in [
        format!(
            "replays the whole retained log ({} days by default, `WEBHOOKS_UPDATE_LOG_RETENTION`)",
            days("update_log_retention")
        ),
        format!(
            "after {} days by default (`WEBHOOKS_RETENTION`)",
            days("retention")
        ),
        format!(
            "would exceed {} KiB (`WEBHOOKS_MAX_PAYLOAD_BYTES`)",
            max_payload / 1024
        ),
        format!(
            "`WEBHOOKS_MAX_WATCH_STREAMS_PER_CREDENTIAL` streams ({} by default)",
            support::serve_default("max_watch_streams_per_credential")
        ),
    ] {
        assert!(
            text.contains(&phrase),
            "{PAGE} should say `{phrase}` (the service's default)"
        );
    }
}

/// Sets the shell variables the page tells the reader to set from an answer.
fn capture(doc: &Doc, at: &str, code: &str, stdout: &str, vars: &mut BTreeMap<String, String>) {
    let values = json_values(stdout).unwrap_or_default();
    let method = code
        .split_whitespace()
        .find(|word| word.starts_with("backoffice.webhooks.v1."))
        .unwrap_or_default();
    let first = values.first().cloned().unwrap_or(Value::Null);
    if method.ends_with("/CreateWebhook") {
        let id = first["webhook"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: CreateWebhook answered no webhook.id: {stdout}"));
        vars.insert("WEBHOOK_ID".into(), id.to_owned());
    } else if method.ends_with("/PublishEvent") && !vars.contains_key("DELIVERY_ID") {
        let id = first["deliveryIds"][0].as_str().unwrap_or_else(|| {
            panic!(
                "{at}: the first PublishEvent of {} must create a delivery (the page uses its id \
                 as DELIVERY_ID): {stdout}",
                doc.name
            )
        });
        vars.insert("DELIVERY_ID".into(), id.to_owned());
    } else if method.ends_with("/WatchDeliveries")
        && let Some(cursor) = values.last().and_then(|v| v["cursor"].as_str())
    {
        vars.insert("CURSOR".into(), cursor.to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_grpcurl_example_runs_as_documented() {
    let started = Instant::now();
    support::require_tool("bash", &["--version"]).await;
    support::require_tool("grpcurl", &["-version"]).await;
    let doc = markdown::load(PAGE);
    let examples = examples::examples(&doc);
    assert!(
        examples.iter().all(|e| e.block.marker() == "grpcurl"),
        "{PAGE} should only hold grpcurl examples"
    );
    // The examples that need the database down come last, after it is dropped.
    let down_from = examples
        .iter()
        .position(|e| e.block.attr("database") == Some("down"))
        .unwrap_or(examples.len());
    assert!(
        examples[down_from..]
            .iter()
            .all(|e| e.block.attr("database") == Some("down")),
        "{PAGE}: the `database=down` examples must come after all the others"
    );
    assert!(
        down_from < examples.len(),
        "{PAGE} must show UNAVAILABLE with a `database=down` example"
    );

    let receiver = Receiver::start().await;
    let app = TestApp::spawn(&[]).await;
    let target = Target {
        addr: app.addr.to_string(),
        receiver: receiver.url(""),
        database_url: app.database.url.clone(),
        bin_dir: String::new(),
        replacements: Vec::new(),
    };
    let mut vars = support::token_vars();
    for (i, example) in examples.iter().enumerate() {
        let at = example.block.at(&doc);
        if i == down_from {
            app.database.drop_database().await;
        }
        if i < down_from {
            // A reader types one command after another: what can go out has gone out.
            assert!(
                app.settle().await,
                "{at}: deliveries were still pending after {:?}",
                testkit::PATIENCE
            );
        }
        let run = examples::run_example(&doc, example, &target, &vars).await;
        // A reader takes ids from answers: successful ones, and what a watch printed.
        if run.code == Some(0) || example.expect.as_deref() == Some("DeadlineExceeded") {
            capture(&doc, &at, &example.block.code, &run.stdout, &mut vars);
        }
    }
    for name in ["WEBHOOK_ID", "DELIVERY_ID", "CURSOR"] {
        assert!(
            vars.contains_key(name),
            "{PAGE}: no example produced {name}, which the page uses"
        );
    }
    // The receiver got the deliveries the page's examples caused.
    let received = receiver.received();
    assert!(
        received
            .iter()
            .any(|r| r.path == "/backoffice/withdrawals"
                && r.header("webhook-id").starts_with("msg_")),
        "the receiver got no delivery at /backoffice/withdrawals: {received:?}"
    );
    app.stop().await;
    eprintln!(
        "{} grpcurl examples of {PAGE} ran in {:.1?}",
        examples.len(),
        started.elapsed()
    );
}
