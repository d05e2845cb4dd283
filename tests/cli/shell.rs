//! The CLI in a shell: completion scripts, the man page, `--timeout`, `hooks stats`,
//! `deliveries list --all`, and colour only on a terminal without `NO_COLOR`.

use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use webhooks::proto::v1 as pb;

use crate::support::{Running, run, run_in_terminal_with_env, spawn_app};
use testkit::Receiver;

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[tokio::test]
async fn completions_and_the_man_page_come_from_the_real_commands() {
    let bash = run(&words(&["completions", "bash"]), None).await;
    bash.ok();
    for needle in ["deliveries", "stats", "--timeout", "--all"] {
        bash.stdout_has(needle);
    }
    // bash accepts the script and registers it for `webhooks`.
    let dir = std::env::temp_dir().join(format!("webhooks-completions-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("webhooks.bash");
    std::fs::write(&script, &bash.stdout).expect("script written");
    let registered = tokio::process::Command::new("bash")
        .args([
            "-c",
            &format!("source '{}' && complete -p webhooks", script.display()),
        ])
        .output()
        .await
        .expect("bash runs");
    assert!(
        registered.status.success()
            && String::from_utf8_lossy(&registered.stdout).contains("webhooks"),
        "bash did not register the completion: {registered:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let zsh = run(&words(&["completions", "zsh"]), None).await;
    zsh.ok().stdout_has("#compdef webhooks").stdout_has("stats");
    let fish = run(&words(&["completions", "fish"]), None).await;
    fish.ok()
        .stdout_has("complete -c webhooks")
        .stdout_has("timeout");
    run(&words(&["completions", "tcsh"]), None).await.exits(2);

    let man = run(&words(&["man"]), None).await;
    man.ok();
    assert!(man.stdout.contains(".TH webhooks 1"), "{}", man.stdout);
    for needle in ["completions", "deliveries", "hooks"] {
        man.stdout_has(needle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_the_deadline_of_each_call() {
    // A "service" that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let addr = silent.local_addr().expect("address");
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let server = format!("http://{addr}");
    let began = Instant::now();
    let run_1s = run(
        &words(&["hooks", "list", "--timeout", "1s", "--server", &server]),
        None,
    )
    .await;
    run_1s
        .exits(5)
        .stderr_has("[DEADLINE_EXCEEDED]")
        .stderr_has("--timeout");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "took {:?}",
        began.elapsed()
    );
    run(
        &words(&["hooks", "list", "--timeout", "soon", "--server", &server]),
        None,
    )
    .await
    .exits(2)
    .stderr_has("--timeout");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_is_not_cut_by_the_timeout() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Watched", &receiver.url("/w"), "")
        .await;
    let mut watch = Running::start(&words(&[
        "deliveries",
        "watch",
        "--webhook",
        &hook.id,
        "--timeout",
        "1s",
        "--output",
        "json",
        "--server",
        &app.server,
    ]));
    watch
        .wait_stderr("the stream to open", |lines| {
            lines
                .iter()
                .any(|l| l.contains("watching delivery updates"))
        })
        .await;
    // Longer than --timeout: the stream must still be the first one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let delivery = app.publish_withdrawal("late-1", "WD-LATE").await;
    watch
        .wait_stdout("the update after the timeout", |lines| {
            lines.iter().any(|l| l.contains(&delivery))
        })
        .await;
    let stderr = watch.stderr_lines();
    assert!(
        !stderr.iter().any(|l| l.contains("reconnect")),
        "the stream was cut: {stderr:?}"
    );
    watch.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_stats_shows_the_webhooks_statistics() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_withdrawal_webhook("Stats desk", &receiver.url("/s"), "")
        .await;
    let delivery = app.publish_withdrawal("stats-1", "WD-S1").await;
    app.wait_for_delivery_status(&delivery, pb::DeliveryStatus::Succeeded)
        .await;

    let stats = app
        .cli(&["hooks", "stats", &hook.id, "--output", "json"])
        .await
        .ok()
        .json();
    assert_eq!(stats["webhookId"], hook.id.as_str(), "{stats}");
    assert_eq!(stats["attempts"], 1, "{stats}");
    assert_eq!(stats["succeededAttempts"], 1, "{stats}");
    assert_eq!(stats["successRate"], 1.0, "{stats}");
    assert!(stats["lastSuccessAt"].is_string(), "{stats}");

    app.cli(&["hooks", "stats", &hook.id])
        .await
        .ok()
        .stdout_has("success rate:")
        .stdout_has("100.0%");
    app.cli(&["hooks", "stats", "0197a000-0000-7000-8000-000000000000"])
        .await
        .exits(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_list_all_follows_every_page() {
    let app = spawn_app(&[]).await;
    let receiver = Receiver::start().await;
    app.create_withdrawal_webhook("Paged", &receiver.url("/p"), "")
        .await;
    let mut published = Vec::new();
    for i in 0..3 {
        published.push(
            app.publish_withdrawal(&format!("page-{i}"), &format!("WD-P{i}"))
                .await,
        );
    }
    let one = app
        .cli(&["deliveries", "list", "--limit", "1", "--output", "json"])
        .await
        .ok()
        .json();
    assert_eq!(one["deliveries"].as_array().map(Vec::len), Some(1), "{one}");
    assert!(one["nextPageToken"].is_string(), "{one}");

    let all = app
        .cli(&[
            "deliveries",
            "list",
            "--limit",
            "1",
            "--all",
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    let mut ids: Vec<String> = all["deliveries"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|d| d["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    published.sort();
    assert_eq!(ids, published, "{all}");
    assert_eq!(all.get("nextPageToken"), None, "{all}");
}

#[tokio::test]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    // clap colours the usage errors (the CLI's only colour) through anstream.
    let args = words(&["hooks", "list", "--no-such-flag"]);
    let esc = "\u{1b}[";
    let coloured = run_in_terminal_with_env(&args, &[("TERM", "xterm-256color")]).await;
    coloured.exits(2);
    assert!(
        coloured.stdout.contains(esc),
        "no colour on a terminal: {coloured:?}"
    );
    let plain =
        run_in_terminal_with_env(&args, &[("TERM", "xterm-256color"), ("NO_COLOR", "1")]).await;
    plain.exits(2);
    assert!(
        !plain.stdout.contains(esc),
        "colour with NO_COLOR: {plain:?}"
    );
    let piped = run(&args, None).await;
    piped.exits(2);
    assert!(!piped.stderr.contains(esc), "colour on a pipe: {piped:?}");
}
