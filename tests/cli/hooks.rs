//! `webhooks hooks ...` end to end, exit codes and the bearer token.

use webhooks::proto::v1 as pb;

use crate::support::spawn_app;
use testkit::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_life_of_a_webhook() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;

    // create, as JSON: the webhook and its secret.
    let created = app
        .cli(&[
            "hooks",
            "create",
            "--name",
            "Payments desk",
            "--url",
            &receiver.url("/hooks"),
            "--function",
            "withdrawal",
            "--approve-node",
            "1",
            "--approve-node",
            "2",
            "--reject",
            "--description",
            "first",
            "--output",
            "json",
        ])
        .await
        .json();
    let webhook = &created["webhook"];
    let id = webhook["id"].as_str().expect("an id").to_owned();
    let first_secret = created["secret"].as_str().expect("a secret").to_owned();
    assert!(first_secret.starts_with("whsec_"), "{created}");
    assert_eq!(webhook["name"], "Payments desk");
    assert_eq!(webhook["function"], "FUNCTION_WITHDRAWAL");
    assert_eq!(
        webhook["events"],
        serde_json::json!({"approvalNodes": [1, 2], "rejection": true})
    );
    assert_eq!(webhook["enabled"], true);
    // Proto3 JSON as grpcurl prints it: fields at their default value are left out.
    assert_eq!(webhook.get("deliverOncePerRequest"), None, "{webhook}");
    assert_eq!(webhook.get("disabledAt"), None, "{webhook}");
    let created_at = webhook["createdAt"]
        .as_str()
        .expect("created_at is a string");
    time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("created_at `{created_at}` is not RFC 3339: {e}"));

    // create, as a table, with a chosen secret: printed once.
    let chosen = testkit::new_secret();
    let table = app
        .cli(&[
            "hooks",
            "create",
            "--name",
            "Prop desk",
            "--url",
            &receiver.url("/prop"),
            "--function",
            "prop-trading-participation",
            "--approve-node",
            "3",
            "--secret",
            &chosen,
            "--once-per-request",
        ])
        .await;
    table.ok().stdout_has("name:").stdout_has("Prop desk");
    assert_eq!(table.stdout.matches(&chosen).count(), 1, "{table:#?}");
    let prop_id = app
        .cli(&[
            "hooks",
            "list",
            "--function",
            "prop-trading-participation",
            "--output",
            "json",
        ])
        .await
        .json()["webhooks"][0]["id"]
        .as_str()
        .expect("the prop webhook is listed")
        .to_owned();
    let prop = app.try_get_webhook(&prop_id).await.expect("readable");
    assert!(prop.deliver_once_per_request);
    assert_eq!(prop.function, pb::Function::PropTradingParticipation as i32);

    // list: table, JSON, filters and paging.
    let list = app.cli(&["hooks", "list"]).await;
    list.ok()
        .stdout_has("ID")
        .stdout_has(&id)
        .stdout_has(&prop_id)
        .stdout_has("node 1, node 2, rejection");
    let all = app.cli(&["hooks", "list", "--output", "json"]).await.json();
    assert_eq!(all["webhooks"].as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(all.get("nextPageToken"), None, "{all}");
    let withdrawals = app
        .cli(&[
            "hooks",
            "list",
            "--function",
            "withdrawal",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(withdrawals["webhooks"].as_array().map(Vec::len), Some(1));
    assert_eq!(withdrawals["webhooks"][0]["id"], id.as_str());
    let page = app
        .cli(&["hooks", "list", "--limit", "1", "--output", "json"])
        .await
        .json();
    assert_eq!(page["webhooks"].as_array().map(Vec::len), Some(1));
    let token = page["nextPageToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty(), "{page}");
    let next = app
        .cli(&[
            "hooks",
            "list",
            "--limit",
            "1",
            "--page-token",
            &token,
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(next["webhooks"][0]["id"], prop_id.as_str());
    let followed = app
        .cli(&["hooks", "list", "--limit", "1", "--all", "--output", "json"])
        .await
        .json();
    assert_eq!(followed["webhooks"].as_array().map(Vec::len), Some(2));

    // get.
    let got = app
        .cli(&["hooks", "get", &id, "--output", "json"])
        .await
        .json();
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["destinationUrl"], receiver.url("/hooks").as_str());
    assert!(
        got["secretHint"]
            .as_str()
            .unwrap_or_default()
            .starts_with("whsec_")
    );
    app.cli(&["hooks", "get", &id])
        .await
        .ok()
        .stdout_has("url:")
        .stdout_has(&receiver.url("/hooks"))
        .stdout_has("enabled:");

    // edit: only the fields given change.
    let edited = app
        .cli(&[
            "hooks",
            "edit",
            &id,
            "--name",
            "Payments desk (node 3)",
            "--approve-node",
            "3",
            "--reject",
            "false",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(edited["name"], "Payments desk (node 3)");
    assert_eq!(edited["events"], serde_json::json!({"approvalNodes": [3]}));
    assert_eq!(edited["description"], "first");
    assert_eq!(edited["destinationUrl"], receiver.url("/hooks").as_str());
    let stored = app.try_get_webhook(&id).await.expect("readable");
    assert_eq!(stored.name, "Payments desk (node 3)");
    // Taking away the last event is refused by the service, naming the flags.
    app.cli(&["hooks", "edit", &id, "--no-approve-nodes"])
        .await
        .exits(2)
        .stderr_has("INVALID_ARGUMENT")
        .stderr_has("--approve-node");
    app.cli(&["hooks", "edit", &id])
        .await
        .exits(2)
        .stderr_has("nothing to change");

    // disable and enable.
    let disabled = app
        .cli(&["hooks", "disable", &id, "--output", "json"])
        .await
        .json();
    assert_eq!(
        disabled.get("enabled"),
        None,
        "false is left out: {disabled}"
    );
    assert_ne!(disabled["disabledReason"], "", "{disabled}");
    assert!(disabled["disabledAt"].is_string(), "{disabled}");
    assert!(!app.try_get_webhook(&id).await.expect("readable").enabled);
    app.cli(&["hooks", "enable", &id])
        .await
        .ok()
        .stdout_has("enabled:");
    assert!(app.try_get_webhook(&id).await.expect("readable").enabled);

    // rotate-secret: a new secret, shown once, with the hint to match.
    let rotated = app
        .cli(&[
            "hooks",
            "rotate-secret",
            &id,
            "--grace-period",
            "1h",
            "--output",
            "json",
        ])
        .await
        .json();
    let new_secret = rotated["secret"].as_str().expect("a secret").to_owned();
    assert!(new_secret.starts_with("whsec_"));
    assert_ne!(new_secret, first_secret);
    let hint = rotated["webhook"]["secretHint"]
        .as_str()
        .unwrap_or_default();
    assert!(new_secret.ends_with(&hint[hint.len() - 4..]), "{rotated}");

    // test: a signed webhook.test ping, verified with the new secret by an independent library.
    let ping = app
        .cli(&["hooks", "test", &id, "--output", "json"])
        .await
        .json();
    assert_eq!(ping["eventType"], "webhook.test");
    assert_eq!(ping["webhookId"], id.as_str());
    let ping_id = ping["id"].as_str().expect("a delivery id").to_owned();
    let received = receiver
        .wait_for_one("the test ping", |r| r.path == "/hooks")
        .await;
    assert_eq!(received.json()["type"], "webhook.test");
    standardwebhooks::Webhook::new(&new_secret)
        .expect("secret accepted")
        .verify(&received.body, &received.headers)
        .expect("the ping is signed with the new secret");
    app.wait_for_delivery_status(&ping_id, pb::DeliveryStatus::Succeeded)
        .await;
    app.cli(&["hooks", "test", &id])
        .await
        .ok()
        .stdout_has("webhook.test")
        .stdout_has("deliveries show");

    // delete (confirmed with --yes), then it is gone.
    app.cli(&["hooks", "delete", &id, "--yes"])
        .await
        .ok()
        .stdout_has(&format!("Deleted webhook {id}"));
    assert_eq!(
        app.try_get_webhook(&id)
            .await
            .map(|_| ())
            .map_err(|s| s.code()),
        Err(tonic::Code::NotFound)
    );
    app.cli(&["hooks", "get", &id])
        .await
        .exits(3)
        .stderr_has("not found")
        .stderr_has("[NOT_FOUND]");
    let json_delete = app
        .cli(&["hooks", "delete", &prop_id, "--yes", "--output", "json"])
        .await
        .json();
    assert_eq!(json_delete, serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_grpc_status() {
    let app = spawn_app(&[]).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // NOT_FOUND: 3.
    app.cli(&["hooks", "get", &unknown])
        .await
        .exits(3)
        .stderr_has("[NOT_FOUND]");
    app.cli(&["deliveries", "show", &unknown])
        .await
        .exits(3)
        .stderr_has("[NOT_FOUND]");
    app.cli(&["hooks", "delete", &unknown, "--yes"])
        .await
        .exits(3);

    // INVALID_ARGUMENT: 2, with the field and the flag behind it.
    app.cli(&["hooks", "get", "not-a-uuid"])
        .await
        .exits(2)
        .stderr_has("[INVALID_ARGUMENT]");
    app.cli(&[
        "hooks",
        "create",
        "--name",
        "Broken",
        "--url",
        "ftp://example.com/hooks",
        "--function",
        "withdrawal",
        "--reject",
    ])
    .await
    .exits(2)
    .stderr_has("webhook.destination_url")
    .stderr_has("(set by --url)")
    .stderr_has("[INVALID_ARGUMENT]");

    // Usage errors (clap): 2, naming the flag.
    app.cli(&[
        "hooks",
        "create",
        "--name",
        "No URL",
        "--function",
        "withdrawal",
    ])
    .await
    .exits(2)
    .stderr_has("--url");
    app.cli(&[
        "deliveries",
        "recover",
        "--webhook",
        &unknown,
        "--since",
        "yesterday",
        "--yes",
    ])
    .await
    .exits(2)
    .stderr_has("--since");
    app.cli(&["hooks", "list", "--output", "yaml"])
        .await
        .exits(2)
        .stderr_has("--output");

    // Nothing listening: UNAVAILABLE, 5.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("has an address")
    };
    let run = crate::support::run(
        &[
            "hooks".to_owned(),
            "list".to_owned(),
            "--server".to_owned(),
            format!("http://{closed}"),
        ],
        None,
    )
    .await;
    run.exits(5).stderr_has("cannot reach the service");

    // The help documents the mapping.
    app.cli(&["hooks", "--help"])
        .await
        .ok()
        .stdout_has("Exit codes:")
        .stdout_has("3  NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_sent_as_a_bearer_token() {
    let token = "cli-test-admin-token-0123456789";
    let app = spawn_app(&["--admin-token", token]).await;

    // Without a token, or with a wrong one: UNAUTHENTICATED, 4.
    app.cli(&["hooks", "list"])
        .await
        .exits(4)
        .stderr_has("[UNAUTHENTICATED]");
    app.cli(&["hooks", "list", "--token", "wrong-token-wrong-token"])
        .await
        .exits(4);

    // With it, as a flag (before or after the subcommand) or from WEBHOOKS_TOKEN.
    app.cli(&["hooks", "list", "--token", token]).await.ok();
    app.cli(&["hooks", "--token", token, "list", "--output", "json"])
        .await
        .json();
    let mut args: Vec<String> = ["hooks", "list", "--server", &app.server]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.push("--output=json".to_owned());
    let output = tokio::process::Command::new(crate::support::BIN)
        .args(&args)
        .env("WEBHOOKS_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "WEBHOOKS_TOKEN was not used: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A token that cannot be a header value is a usage error naming the flag.
    app.cli(&["hooks", "list", "--token", "bad\u{7f}token"])
        .await
        .exits(2)
        .stderr_has("--token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_set_with_header_flags_and_only_hinted_back() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let token = "Bearer cli-token-0123456789abcdef";
    let authorization = format!("Authorization: {token}");
    let created = app
        .cli(&[
            "hooks",
            "create",
            "--name",
            "Partner",
            "--url",
            &receiver.url("/hooks"),
            "--function",
            "withdrawal",
            "--reject",
            "--header",
            &authorization,
            "--header",
            "X-Api-Key: k-1",
            "--output",
            "json",
        ])
        .await
        .json();
    assert!(!created.to_string().contains(token), "{created}");
    let id = created["webhook"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(
        created["webhook"]["headers"],
        serde_json::json!([
            {"name": "Authorization", "valueHint": "••••cdef (33 characters)"},
            {"name": "X-Api-Key", "valueHint": "•••• (3 characters)"},
        ])
    );

    // edit: 'Name:' keeps the stored value, a header left out is removed.
    let edited = app
        .cli(&[
            "hooks",
            "edit",
            &id,
            "--header",
            "Authorization:",
            "--output",
            "json",
        ])
        .await
        .json();
    assert_eq!(
        edited["headers"],
        serde_json::json!([{"name": "Authorization", "valueHint": "••••cdef (33 characters)"}])
    );
    let table = app.cli(&["hooks", "get", &id]).await;
    table
        .exits(0)
        .stdout_has("Authorization: ••••cdef (33 characters)");

    // A header the service owns: INVALID_ARGUMENT (exit 2), naming the flag.
    app.cli(&["hooks", "edit", &id, "--header", "Content-Length: 5"])
        .await
        .exits(2)
        .stderr_has("--header");
}
