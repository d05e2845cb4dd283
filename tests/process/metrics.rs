//! The Prometheus endpoint, scraped from a real process after real deliveries.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use testkit::{Service, TestDatabase, free_port, withdrawal_approved, withdrawal_webhook};

use crate::support::{BIN, answering_after};

/// GETs `/metrics` over a plain TCP connection.
async fn scrape(port: u16) -> String {
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
fn sample(text: &str, series: &str) -> Option<f64> {
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
