//! The Prometheus endpoint, scraped from a real process after real deliveries.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use webhooks::proto::v1 as pb;

use testkit::{
    Receiver, Reply, Service, TestDatabase, free_port, withdrawal_approved, withdrawal_webhook,
};

use crate::support::{BIN, answering_after};

/// GETs `/metrics` over a plain TCP connection.
pub(crate) async fn scrape(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics port answers");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    response
}

/// The value of the sample line starting with `series` (name and labels), if any.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

#[tokio::test]
async fn the_metrics_endpoint_counts_real_deliveries() {
    let database = TestDatabase::fresh();
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let service = Service::start(
        BIN,
        &database,
        &[
            "--allow-private-destinations",
            "true",
            "--poll-interval",
            "100ms",
            "--metrics-addr",
            &metrics_addr,
        ],
    )
    .await;
    let receiver = answering_after(0, 0).await;
    let mut admin = service.admin().await;
    admin
        .create_webhook(withdrawal_webhook("metrics", &receiver.url("/hook")))
        .await
        .expect("created");
    let mut ingest = service.ingest().await;
    for i in 0..3 {
        ingest
            .publish_event(withdrawal_approved(&format!("m-{i}"), &format!("W-M{i}")))
            .await
            .expect("published");
    }
    let mut text = String::new();
    for _ in 0..150 {
        text = scrape(metrics_port).await;
        if sample(&text, "webhooks_deliveries_total{outcome=\"succeeded\"}") == Some(3.0)
            && sample(&text, "webhooks_queue_depth") == Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sample(&text, "webhooks_deliveries_total{outcome=\"succeeded\"}"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "webhooks_events_published_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(sample(&text, "webhooks_queue_depth"), Some(0.0), "{text}");
    assert!(
        text.contains("webhooks_attempt_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        sample(&text, "webhooks_db_pool_size").is_some_and(|size| size > 0.0),
        "{text}"
    );
    assert_eq!(receiver.received().len(), 3);
    database.drop_database().await;
}

/// The sum of `series` over the scrapes of several instances (absent counts as 0).
fn summed(texts: &[String], series: &str) -> f64 {
    texts.iter().filter_map(|t| sample(t, series)).sum()
}

#[tokio::test]
async fn webhook_state_metrics_are_true_across_two_instances() {
    let database = TestDatabase::fresh();
    let ports = [free_port(), free_port()];
    let mut services = Vec::new();
    for port in ports {
        let metrics_addr = format!("127.0.0.1:{port}");
        services.push(
            Service::start(
                BIN,
                &database,
                &[
                    "--allow-private-destinations",
                    "true",
                    "--poll-interval",
                    "100ms",
                    "--circuit-breaker-threshold",
                    "1",
                    "--circuit-breaker-cooldown",
                    "60s",
                    "--metrics-addr",
                    &metrics_addr,
                ],
            )
            .await,
        );
    }
    let gone = Receiver::start().await;
    gone.reply_by_default(Reply::status(410));
    let failing = Receiver::start().await;
    failing.reply_by_default(Reply::status(500));
    let ok = answering_after(0, 0).await;
    let mut admin = services[0].admin().await;
    let mut create = async |name: &str, url: String| {
        admin
            .create_webhook(withdrawal_webhook(name, &url))
            .await
            .expect("created")
            .into_inner()
            .webhook
            .expect("returned")
            .id
    };
    // 410: disabled (and, at threshold 1, its circuit opened). 500: circuit open.
    create("gone", gone.url("/hook")).await;
    create("failing", failing.url("/hook")).await;
    let toggled = create("toggled", ok.url("/hook")).await;
    let mut ingest = services[1].ingest().await;
    ingest
        .publish_event(withdrawal_approved("state-1", "W-STATE"))
        .await
        .expect("published");
    let mut admin = services[1].admin().await;
    for enabled in [false, true] {
        // `..Default::default()`: requests gain optional fields (an etag) that this test leaves unset.
        #[allow(clippy::needless_update)]
        let request = pb::SetWebhookEnabledRequest {
            id: toggled.clone(),
            enabled,
            ..Default::default()
        };
        admin.set_webhook_enabled(request).await.expect("toggled");
    }

    let expected = [
        (
            "webhooks_webhook_state_changes_total{change=\"disabled\"}",
            2.0,
        ),
        (
            "webhooks_webhook_state_changes_total{change=\"enabled\"}",
            1.0,
        ),
        (
            "webhooks_webhook_state_changes_total{change=\"circuit_opened\"}",
            2.0,
        ),
    ];
    let gauges = [
        ("webhooks_disabled_webhooks", 1.0),
        ("webhooks_circuit_open_webhooks", 1.0),
    ];
    let mut texts = Vec::new();
    for _ in 0..100 {
        texts = Vec::new();
        for port in ports {
            texts.push(scrape(port).await);
        }
        let counted = expected.iter().all(|(s, v)| summed(&texts, s) == *v);
        let gauged = gauges
            .iter()
            .all(|(s, v)| texts.iter().all(|t| sample(t, s) == Some(*v)));
        if counted && gauged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each change counted once over both instances, whichever instance made it.
    for (series, value) in expected {
        assert_eq!(summed(&texts, series), value, "{series}: {texts:?}");
    }
    // Gauges come from the database: every instance shows the same, true value.
    for (series, value) in gauges {
        for text in &texts {
            assert_eq!(sample(text, series), Some(value), "{series}: {text}");
        }
    }
    drop(services);
    database.drop_database().await;
}
