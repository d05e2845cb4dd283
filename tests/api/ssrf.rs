//! The SSRF guard: destinations on internal addresses are refused when a webhook is created or
//! edited, and again when a delivery connects (so a destination that passed an earlier check —
//! or whose name resolves somewhere else now — still cannot reach the internal network); the
//! opt-in, the allow-list and the https requirement. Network: 127.0.0.1 only.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;
use tonic::Code;
use webhooks::delivery::guard::Lookup;
use webhooks::domain::{Handling, SPECIAL_RANGES, SpecialRange, special_range};
use webhooks::proto::v1 as pb;

use testkit::{
    Receiver, TestApp, fresh_database_url, spawn_app, spawn_app_on, spawn_app_on_resolving,
    spawn_app_with, webhook_spec, withdrawal_event,
};

const ALLOW_PRIVATE: &str = "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS";
const ALLOWED_CIDRS: &str = "WEBHOOKS_ALLOWED_DESTINATION_CIDRS";
const REQUIRE_HTTPS: &str = "WEBHOOKS_REQUIRE_HTTPS";
const FIELD: &str = "webhook.destination_url";
const GUARDED: &[&str] = &["--allow-private-destinations", "false"];

async fn try_create(app: &TestApp, url: &str) -> Result<pb::CreateWebhookResponse, tonic::Status> {
    app.admin
        .clone()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(webhook_spec(url, pb::Function::Withdrawal, &[1], true)),
            secret: String::new(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn try_set_destination(
    app: &TestApp,
    id: &str,
    url: &str,
) -> Result<pb::Webhook, tonic::Status> {
    app.admin
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            webhook: Some(pb::Webhook {
                id: id.into(),
                destination_url: url.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["destination_url".into()],
            }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Asserts INVALID_ARGUMENT naming the destination field and `setting`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>, setting: &str, url: &str) {
    match result {
        Ok(value) => panic!("{url} must be refused, got {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), Code::InvalidArgument, "{url}: {status:?}");
            assert!(
                status.message().contains(FIELD),
                "{url}: {}",
                status.message()
            );
            assert!(
                status.message().contains(setting),
                "{url}: {}",
                status.message()
            );
        }
    }
}

/// Host names that /etc/hosts maps to loopback addresses (`localhost` at least, which every
/// system has; often the machine's own name too).
fn loopback_names_from_etc_hosts() -> Vec<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names: Vec<String> = hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let address: IpAddr = words.next()?.parse().ok()?;
            address
                .is_loopback()
                .then(|| words.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "localhost") {
        names.push("localhost".into());
    }
    names
}

#[tokio::test]
async fn internal_addresses_are_refused_at_create_and_edit_without_the_opt_in() {
    let app = spawn_app_with(GUARDED).await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://255.255.255.255/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
    ] {
        assert_refused(try_create(&app, url).await, ALLOW_PRIVATE, url);
    }

    // A public destination is fine; editing it to the metadata service is not.
    let public = "https://93.184.216.34/hook";
    let created = try_create(&app, public)
        .await
        .expect("a public address is accepted");
    let id = created.webhook.expect("the webhook").id;
    let metadata = "http://169.254.169.254/latest/meta-data";
    assert_refused(
        try_set_destination(&app, &id, metadata).await,
        ALLOW_PRIVATE,
        metadata,
    );
    assert_eq!(app.get_webhook(&id).await.destination_url, public);
}

#[tokio::test]
async fn host_names_resolving_to_loopback_are_refused_without_the_opt_in() {
    let app = spawn_app_with(GUARDED).await;
    let names = loopback_names_from_etc_hosts();
    for name in &names {
        let url = format!("http://{name}:8080/hook");
        let result = try_create(&app, &url).await;
        let message = result
            .as_ref()
            .err()
            .map(|s| s.message().to_owned())
            .unwrap_or_default();
        assert_refused(result, ALLOW_PRIVATE, &url);
        assert!(
            message.contains("resolves to") || message.contains("loopback name"),
            "{url}: the refusal comes from resolving the name: {message}"
        );
    }
    let created = try_create(&app, "https://93.184.216.34/hook")
        .await
        .expect("a public address is accepted");
    let id = created.webhook.expect("the webhook").id;
    let url = format!("http://{}:8080/hook", names[0]);
    assert_refused(
        try_set_destination(&app, &id, &url).await,
        ALLOW_PRIVATE,
        &url,
    );
}

#[tokio::test]
async fn names_that_do_not_resolve_are_accepted_at_create() {
    // DNS may be down or the receiver not published yet; the connection is checked anyway.
    let app = spawn_app_with(GUARDED).await;
    try_create(&app, "https://receiver.does-not-exist.invalid/hook")
        .await
        .expect("an unresolvable name is accepted");
}

/// Two instances on one database: `configure` creates (its workers off), `deliver` sends.
async fn configure_and_deliver(
    configure_flags: &[&str],
    deliver_flags: &[&str],
) -> (TestApp, TestApp) {
    let (url, name) = fresh_database_url();
    let mut flags = vec!["--disable-workers", "true"];
    flags.extend_from_slice(configure_flags);
    let configure = spawn_app_on(&url, &name, &flags).await;
    let deliver = spawn_app_on(&url, &name, deliver_flags).await;
    (configure, deliver)
}

/// Waits until the delivery has at least `count` attempts and returns them, oldest first.
async fn attempts(app: &TestApp, delivery_id: &str, count: usize) -> Vec<pb::DeliveryAttempt> {
    let delivery = app
        .wait_for_delivery(delivery_id, &format!("{count} attempts"), |d| {
            d.attempts.len() >= count
        })
        .await;
    let mut attempts = delivery.attempts;
    attempts.sort_by_key(|a| a.attempt_number);
    attempts
}

#[tokio::test]
async fn the_connect_time_guard_refuses_what_an_earlier_check_let_through() {
    // Stands in for DNS rebinding: the destinations passed the check at create time (that
    // instance allowed private addresses), then resolve to loopback when the delivering
    // instance — which does not — connects.
    let receiver = Receiver::start().await;
    let (configure, deliver) =
        configure_and_deliver(&["--allow-private-destinations", "true"], GUARDED).await;
    let port = receiver.addr.port();
    let by_name = format!("http://localhost:{port}/by-name");
    let by_address = receiver.url("/by-address");
    for url in [&by_name, &by_address] {
        try_create(&configure, url).await.expect("allowed here");
    }
    let published = deliver
        .publish(withdrawal_event(
            "ssrf-1",
            "W-SSRF-1",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    assert_eq!(published.delivery_ids.len(), 2);

    for delivery_id in &published.delivery_ids {
        // Refused attempts retry like any failure: wait for two of them.
        let attempts = attempts(&deliver, delivery_id, 2).await;
        for attempt in &attempts {
            assert_eq!(
                attempt.error_kind,
                pb::AttemptErrorKind::Refused as i32,
                "{attempt:#?}"
            );
            assert!(!attempt.succeeded);
            assert!(
                attempt.error_message.contains(ALLOW_PRIVATE),
                "the message names the setting: {}",
                attempt.error_message
            );
        }
    }
    assert!(
        receiver.received().is_empty(),
        "nothing may reach the receiver: {:?}",
        receiver.received()
    );
    configure.stop().await;
    deliver.stop().await;
}

#[tokio::test]
async fn an_allow_listed_network_is_reachable_without_the_opt_in() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(&[
        "--allow-private-destinations",
        "false",
        "--allowed-destination-cidrs",
        "127.0.0.1/32",
    ])
    .await;
    let port = receiver.addr.port();
    for url in [
        format!("http://127.0.0.2:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://10.0.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        assert_refused(try_create(&app, &url).await, ALLOWED_CIDRS, &url);
    }

    try_create(&app, &receiver.url("/listed"))
        .await
        .expect("127.0.0.1 is listed");
    let published = app
        .publish(withdrawal_event(
            "ssrf-2",
            "W-SSRF-2",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    let delivery = app
        .wait_for_delivery(&published.delivery_ids[0], "success", |d| {
            d.status == pb::DeliveryStatus::Succeeded as i32
        })
        .await;
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(receiver.received_at("/listed").len(), 1);
}

#[tokio::test]
async fn require_https_refuses_http_at_create_edit_and_send() {
    let app = spawn_app_with(&["--require-https", "true"]).await;
    let http = "http://93.184.216.34/hook";
    assert_refused(try_create(&app, http).await, REQUIRE_HTTPS, http);
    let created = try_create(&app, "https://93.184.216.34/hook")
        .await
        .expect("https is accepted");
    let id = created.webhook.expect("the webhook").id;
    assert_refused(
        try_set_destination(&app, &id, http).await,
        REQUIRE_HTTPS,
        http,
    );
    app.stop().await;

    // A webhook stored while http was allowed is not sent to once https is required.
    let receiver = Receiver::start().await;
    let (configure, deliver) = configure_and_deliver(&[], &["--require-https", "true"]).await;
    try_create(&configure, &receiver.url("/plain"))
        .await
        .expect("http is allowed here");
    let published = deliver
        .publish(withdrawal_event(
            "ssrf-3",
            "W-SSRF-3",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    let attempts = attempts(&deliver, &published.delivery_ids[0], 1).await;
    assert_eq!(attempts[0].error_kind, pb::AttemptErrorKind::Refused as i32);
    assert!(
        attempts[0].error_message.contains(REQUIRE_HTTPS),
        "{}",
        attempts[0].error_message
    );
    assert!(receiver.received().is_empty());
}

/// An address the table says to refuse, and what the refusal must name: the row it falls in
/// and, for an IPv6 form of an IPv4 address, the form's row too.
#[derive(Debug)]
struct Refused {
    ip: IpAddr,
    names: Vec<&'static str>,
}

impl Refused {
    /// A destination URL on this address.
    fn url(&self, port: u16, path: &str) -> String {
        match self.ip {
            IpAddr::V4(ip) => format!("http://{ip}:{port}{path}"),
            IpAddr::V6(ip) => format!("http://[{ip}]:{port}{path}"),
        }
    }

    /// Asserts that `message` names every row this address is refused by.
    #[track_caller]
    fn assert_named_in(&self, message: &str) {
        for name in &self.names {
            assert!(message.contains(name), "{}: `{name}` in {message}", self.ip);
        }
    }
}

/// An address of `row` that no more specific row refines (its middle, else an end).
fn representative(row: &'static SpecialRange) -> IpAddr {
    let middle = match row.net {
        IpNet::V4(net) => {
            let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
            IpAddr::V4((lo + (hi - lo) / 2).into())
        }
        IpNet::V6(net) => {
            let (lo, hi) = (u128::from(net.network()), u128::from(net.broadcast()));
            IpAddr::V6((lo + (hi - lo) / 2).into())
        }
    };
    [middle, row.net.network(), row.net.broadcast()]
        .into_iter()
        .find(|ip| special_range(*ip) == Some(row))
        .unwrap_or_else(|| panic!("no address of {row:?} is judged by it"))
}

/// Every case the table implies, read from the table so a new row is tested as soon as it is
/// added: an address of each refused row, and that IPv4 address in each IPv6 form that
/// carries one (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).
fn refused_by_the_table() -> Vec<Refused> {
    let forms: Vec<_> = SPECIAL_RANGES
        .iter()
        .filter_map(|row| match (row.net, row.handling) {
            (IpNet::V6(net), Handling::JudgeEmbedded(e) | Handling::RefuseNamingEmbedded(e)) => {
                Some((row, net, e))
            }
            _ => None,
        })
        .collect();
    assert_eq!(forms.len(), 5, "mapped, compatible, NAT64, 6to4, Teredo");
    let mut cases = Vec::new();
    for row in SPECIAL_RANGES
        .iter()
        .filter(|r| r.handling == Handling::Refuse)
    {
        let ip = representative(row);
        cases.push(Refused {
            ip,
            names: vec![row.name],
        });
        let IpAddr::V4(v4) = ip else { continue };
        for (form, net, embedding) in &forms {
            cases.push(Refused {
                ip: IpAddr::V6(embedding.embed(*net, v4)),
                names: vec![form.name, row.name],
            });
        }
    }
    cases
}

#[tokio::test]
async fn every_range_of_the_table_and_every_ipv4_form_is_refused_at_create() {
    let app = spawn_app_with(GUARDED).await;
    for case in refused_by_the_table() {
        let url = case.url(8080, "/hook");
        let result = try_create(&app, &url).await;
        let message = result
            .as_ref()
            .err()
            .map(|s| s.message().to_owned())
            .unwrap_or_default();
        assert_refused(result, ALLOW_PRIVATE, &url);
        case.assert_named_in(&message);
    }
}

#[tokio::test]
async fn every_range_of_the_table_and_every_ipv4_form_is_refused_at_edit() {
    let app = spawn_app_with(GUARDED).await;
    let public = "https://93.184.216.34/hook";
    let created = try_create(&app, public)
        .await
        .expect("a public address is accepted");
    let id = created.webhook.expect("the webhook").id;
    for case in refused_by_the_table() {
        let url = case.url(8080, "/hook");
        let result = try_set_destination(&app, &id, &url).await;
        let message = result
            .as_ref()
            .err()
            .map(|s| s.message().to_owned())
            .unwrap_or_default();
        assert_refused(result, ALLOW_PRIVATE, &url);
        case.assert_named_in(&message);
    }
    assert_eq!(app.get_webhook(&id).await.destination_url, public);
}

/// A resolver answering each name with one fixed address; other names do not exist.
struct FixedNames(HashMap<String, IpAddr>);

impl Lookup for FixedNames {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let answer = self.0.get(host).map(|ip| vec![*ip]).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host}: no such name"))
        });
        Box::pin(std::future::ready(answer))
    }
}

#[tokio::test]
async fn every_range_of_the_table_and_every_ipv4_form_is_refused_at_connect_through_a_name() {
    // The webhooks are configured where private destinations are allowed (and the names are
    // not resolved); the delivering instance resolves each name to one address of the table.
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    let cases = refused_by_the_table();
    let names: HashMap<String, IpAddr> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| (format!("case-{i}.ssrf.test"), case.ip))
        .collect();
    let (url, name) = fresh_database_url();
    let configure = spawn_app_on(
        &url,
        &name,
        &[
            "--disable-workers",
            "true",
            "--allow-private-destinations",
            "true",
        ],
    )
    .await;
    let mut flags = GUARDED.to_vec();
    flags.extend(["--retry-schedule", ""]);
    let deliver = spawn_app_on_resolving(&url, &name, &flags, Arc::new(FixedNames(names))).await;
    let mut by_webhook = HashMap::new();
    for (i, case) in cases.iter().enumerate() {
        let destination = format!("http://case-{i}.ssrf.test:{port}/case-{i}");
        let created = try_create(&configure, &destination)
            .await
            .expect("allowed here");
        by_webhook.insert(created.webhook.expect("the webhook").id, case);
    }
    let published = deliver
        .publish(withdrawal_event(
            "ssrf-table",
            "W-SSRF-TABLE",
            pb::Decision::Approved,
            Some(1),
        ))
        .await;
    assert_eq!(published.delivery_ids.len(), cases.len());
    for delivery_id in &published.delivery_ids {
        let attempts = attempts(&deliver, delivery_id, 1).await;
        let delivery = deliver.get_delivery(delivery_id).await;
        let case = by_webhook[&delivery.webhook_id];
        let attempt = &attempts[0];
        assert_eq!(
            attempt.error_kind,
            pb::AttemptErrorKind::Refused as i32,
            "{case:?}: {attempt:#?}"
        );
        assert!(
            attempt.error_message.contains(ALLOW_PRIVATE),
            "{}",
            attempt.error_message
        );
        assert!(
            attempt.error_message.contains(&case.ip.to_string()),
            "{}",
            attempt.error_message
        );
        case.assert_named_in(&attempt.error_message);
    }
    assert!(
        receiver.received().is_empty(),
        "nothing may reach the receiver: {:?}",
        receiver.received()
    );
    configure.stop().await;
    deliver.stop().await;
}

#[tokio::test]
async fn port_zero_is_refused_at_create_and_edit_even_with_the_opt_in() {
    let app = spawn_app().await;
    for url in ["http://127.0.0.1:0/hook", "https://example.com:0/hook"] {
        let result = try_create(&app, url).await;
        let message = result
            .as_ref()
            .err()
            .map(|s| s.message().to_owned())
            .unwrap_or_default();
        assert_refused(result, "port 0", url);
        assert!(message.starts_with(FIELD), "{message}");
    }
    let public = "https://example.com/hook";
    let created = try_create(&app, public).await.expect("accepted");
    let id = created.webhook.expect("the webhook").id;
    let url = "https://example.com:0/hook";
    assert_refused(try_set_destination(&app, &id, url).await, "port 0", url);
    assert_eq!(app.get_webhook(&id).await.destination_url, public);
}
