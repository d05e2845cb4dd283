//! `webhooks listen`: the service delivers to it for real; forged and stale requests get 401.

use webhooks::proto::v1 as pb;

use crate::support::{Running, post, raw_request, spawn_app};
use testkit::{expected_signature, new_secret, unix_now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_verifies_real_deliveries_and_refuses_forgeries() {
    let app = spawn_app(&[]).await;
    let secret = new_secret();
    let mut listener = Running::start(&[
        "listen".to_owned(),
        "--port".to_owned(),
        "0".to_owned(),
        "--secret".to_owned(),
        secret.clone(),
        "--status".to_owned(),
        "202".to_owned(),
        "--tolerance".to_owned(),
        "2m".to_owned(),
    ]);
    let first = listener
        .wait_stdout("the listening address", |lines| !lines.is_empty())
        .await;
    let addr = first[0]
        .strip_prefix("Listening on http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();

    // The service delivers a real event, signed with the secret given at creation.
    let url = format!("http://{addr}/hooks/withdrawals");
    app.cli(&[
        "hooks",
        "create",
        "--name",
        "Integrator laptop",
        "--url",
        &url,
        "--function",
        "withdrawal",
        "--approve-node",
        "1",
        "--secret",
        &secret,
    ])
    .await
    .ok();
    let published = app
        .cli(&[
            "events",
            "publish",
            "--key",
            "listen-1",
            "--decision",
            "approved",
            "--node",
            "1",
            "--function",
            "withdrawal",
            "--request-id",
            "WD-L1",
            "--client-id",
            "C-1",
            "--amount",
            "1250.00",
            "--currency",
            "USD",
            "--output",
            "json",
        ])
        .await
        .json();
    let delivery = crate::support::strings(&published["deliveryIds"])
        .pop()
        .expect("one delivery");
    let done = app
        .wait_for_delivery_status(&delivery, pb::DeliveryStatus::Succeeded)
        .await;
    assert_eq!(
        done.last_response_status, 202,
        "the chosen status is answered"
    );
    let message_id = done.message_id.clone();
    let printed = listener
        .wait_stdout("the delivery to be printed", |lines| {
            lines.iter().any(|l| l.contains(&message_id))
        })
        .await
        .join("\n");
    for part in [
        "POST /hooks/withdrawals",
        "event type:         withdrawal.approved",
        &format!("webhook-id:         {message_id}"),
        "signature:          verified",
        "answered:           202",
        "\"amount\": \"1250.00\"",
    ] {
        assert!(printed.contains(part), "`{part}` missing from:\n{printed}");
    }

    // A webhook with another secret: its deliveries are refused with 401.
    let other = app
        .create_withdrawal_webhook(
            "Wrong secret",
            &format!("http://{addr}/wrong"),
            &new_secret(),
        )
        .await;
    // Both webhooks match this withdrawal: the one with the right secret gets it fine.
    let both = app
        .cli(&[
            "events",
            "publish",
            "--key",
            "listen-2",
            "--decision",
            "approved",
            "--node",
            "1",
            "--function",
            "withdrawal",
            "--request-id",
            "WD-L2",
            "--client-id",
            "C-1",
            "--amount",
            "5.00",
            "--currency",
            "USD",
            "--output",
            "json",
        ])
        .await
        .json();
    let ids = crate::support::strings(&both["deliveryIds"]);
    assert_eq!(ids.len(), 2, "{both}");
    for id in &ids {
        let delivery = app.get_delivery(id).await;
        if delivery.webhook_id == other.id {
            app.wait_for_delivery(id, "a 401 answer", |d| d.last_response_status == 401)
                .await;
        } else {
            let ok = app
                .wait_for_delivery_status(id, pb::DeliveryStatus::Succeeded)
                .await;
            assert_eq!(ok.last_response_status, 202);
        }
    }

    // Direct requests: a correct signature passes (also as the second of two)...
    let body = r#"{"type":"withdrawal.rejected","data":{"withdrawal":{"id":"WD-X"}}}"#;
    let now = unix_now();
    let good = expected_signature(&secret, "msg_direct", now, body);
    let headers = |id: &str, timestamp: i64, signature: String| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ]
    };
    let (status, _) = post(
        &addr,
        "/direct",
        &headers("msg_direct", now, good.clone()),
        body,
    )
    .await;
    assert_eq!(status, 202);
    let both = format!(
        "{} {good}",
        expected_signature(&new_secret(), "msg_direct", now, body)
    );
    let (status, _) = post(&addr, "/direct", &headers("msg_direct", now, both), body).await;
    assert_eq!(status, 202, "any of the signatures may match");

    // ...a bad signature does not...
    let forged = expected_signature(&new_secret(), "msg_direct", now, body);
    let (status, reply) = post(&addr, "/direct", &headers("msg_direct", now, forged), body).await;
    assert_eq!(status, 401);
    assert!(reply.contains("no signature"), "{reply}");
    let tampered = body.replace("WD-X", "WD-Y");
    let (status, _) = post(
        &addr,
        "/direct",
        &headers("msg_direct", now, good),
        &tampered,
    )
    .await;
    assert_eq!(status, 401, "a changed body must not verify");

    // ...nor a stale or future timestamp, even correctly signed.
    let stale = now - 600;
    let (status, reply) = post(
        &addr,
        "/direct",
        &headers(
            "msg_stale",
            stale,
            expected_signature(&secret, "msg_stale", stale, body),
        ),
        body,
    )
    .await;
    assert_eq!(status, 401);
    assert!(reply.contains("old"), "{reply}");
    let future = now + 600;
    let (status, reply) = post(
        &addr,
        "/direct",
        &headers(
            "msg_future",
            future,
            expected_signature(&secret, "msg_future", future, body),
        ),
        body,
    )
    .await;
    assert_eq!(status, 401);
    assert!(reply.contains("future"), "{reply}");
    let (status, reply) = post(&addr, "/direct", &[], body).await;
    assert_eq!(status, 401);
    assert!(reply.contains("missing webhook-id"), "{reply}");
    let (status, _) = raw_request(&addr, "GET", "/", &[], "").await;
    assert_eq!(status, 405);

    let printed = listener
        .wait_stdout("the refusals to be printed", |lines| {
            lines.iter().any(|l| l.contains("msg_future"))
        })
        .await
        .join("\n");
    assert!(printed.contains("REJECTED: no signature"), "{printed}");
    assert!(
        printed.contains("REJECTED: webhook-timestamp is 600s old"),
        "{printed}"
    );
    listener.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_refuses_bad_flags() {
    let run = |args: &[&str]| {
        let mut all = vec!["listen".to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        async move { crate::support::run(&all, None).await }
    };
    run(&["--port", "0", "--secret", "whsec_!!!"])
        .await
        .exits(2)
        .stderr_has("--secret");
    run(&["--port", "0", "--secret", ""])
        .await
        .exits(2)
        .stderr_has("--secret");
    run(&["--port", "0", "--secret", &new_secret(), "--status", "99"])
        .await
        .exits(2)
        .stderr_has("--status");
    run(&[
        "--port",
        "0",
        "--secret",
        &new_secret(),
        "--tolerance",
        "soon",
    ])
    .await
    .exits(2)
    .stderr_has("--tolerance");
    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = taken
        .local_addr()
        .expect("has an address")
        .port()
        .to_string();
    run(&["--port", &port, "--secret", &new_secret()])
        .await
        .exits(1)
        .stderr_has(&format!("--port {port}"));
}
