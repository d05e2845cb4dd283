//! Connections cannot be hoarded: silent sockets, half-finished HTTP/2 handshakes and idle
//! connections are closed, the open connections of an instance are capped (refused at once above
//! it), and HTTP/2 connections are limited in streams, on the gRPC port and the console alike.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use testkit::{Receiver, spawn_app_with, wait_until, withdrawal_event};

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
/// Time allowed beyond a timeout for the service (on a shared, busy machine) to act on it.
const MARGIN: Duration = Duration::from_secs(3);

/// Reads (and discards) until the peer closes the connection: true if it did by `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// How many of `streams` the peer closed by `deadline`.
async fn count_closed(streams: &mut [TcpStream], deadline: Instant) -> usize {
    let results =
        futures_util::future::join_all(streams.iter_mut().map(|s| closed_by(s, deadline))).await;
    results.into_iter().filter(|closed| *closed).count()
}

/// `count` connections to `addr`, each having sent `first` (maybe nothing).
async fn open(addr: SocketAddr, count: usize, first: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        if !first.is_empty() {
            stream.write_all(first).await.expect("writes");
        }
        streams.push(stream);
    }
    streams
}

/// A new client with its own connection.
async fn fresh_client(addr: SocketAddr) -> WebhookAdminClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects");
    WebhookAdminClient::new(channel)
}

async fn list(client: &WebhookAdminClient<Channel>) -> Result<(), tonic::Status> {
    client
        .clone()
        .list_webhooks(pb::ListWebhooksRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn two_thousand_silent_connections_are_closed_within_the_handshake_timeout() {
    testkit::os::raise_fd_limit(8192);
    let app = spawn_app_with(&["--handshake-timeout", "1s"]).await;

    let mut silent = open(app.addr, 2000, b"").await;
    let last_opened = Instant::now();
    list(&app.admin)
        .await
        .expect("the service answers while they hang");

    let closed = count_closed(&mut silent, last_opened + Duration::from_secs(1) + MARGIN).await;
    assert_eq!(
        closed, 2000,
        "every silent connection is closed within the handshake timeout"
    );
    list(&app.admin).await.expect("the service answers after");
    list(&fresh_client(app.addr).await)
        .await
        .expect("and takes new connections");
}

#[tokio::test]
async fn a_connection_that_stops_after_the_http2_preface_is_closed() {
    let app = spawn_app_with(&["--handshake-timeout", "1s"]).await;

    let mut preface_only = open(app.addr, 50, PREFACE).await;
    let handshaken = [PREFACE, EMPTY_SETTINGS].concat();
    let mut complete = open(app.addr, 1, &handshaken).await;
    let last_opened = Instant::now();

    let closed = count_closed(
        &mut preface_only,
        last_opened + Duration::from_secs(1) + MARGIN,
    )
    .await;
    assert_eq!(
        closed, 50,
        "a preface without SETTINGS is closed within the handshake timeout"
    );
    assert_eq!(
        count_closed(&mut complete, Instant::now() + Duration::from_millis(200)).await,
        0,
        "a connection that sent its SETTINGS is past the handshake and stays open"
    );
    list(&app.admin).await.expect("the service answers");
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once_and_served_again_once_a_slot_frees() {
    // The harness's client holds one of the three slots.
    let app = spawn_app_with(&["--max-connections", "3"]).await;
    let mut held = open(app.addr, 2, b"").await;

    // Reset as soon as accepted: by the time connect() returns, or on the first read.
    let refused_at_once = match TcpStream::connect(app.addr).await {
        Ok(mut over) => closed_by(&mut over, Instant::now() + Duration::from_secs(2)).await,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(
        refused_at_once,
        "the connection over the cap is closed at once"
    );
    let started = Instant::now();
    let refused = tokio::time::timeout(Duration::from_secs(5), async {
        let channel = Channel::from_shared(format!("http://{}", app.addr))
            .expect("valid endpoint")
            .connect_lazy();
        list(&WebhookAdminClient::new(channel)).await
    })
    .await
    .expect("a refused client fails fast, it does not hang");
    let status = refused.expect_err("a client over the cap is refused");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "fast failure");
    list(&app.admin)
        .await
        .expect("connections under the cap are served");

    held.truncate(1);
    wait_until(
        "a freed slot takes a new client",
        Duration::from_secs(5),
        || async {
            let channel = Channel::from_shared(format!("http://{}", app.addr))
                .ok()?
                .connect()
                .await
                .ok()?;
            list(&WebhookAdminClient::new(channel)).await.ok()
        },
    )
    .await;
}

/// The SETTINGS the server sends on a new HTTP/2 connection, as (identifier, value) pairs.
async fn server_settings(addr: SocketAddr) -> Vec<(u16, u32)> {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(&[PREFACE, EMPTY_SETTINGS].concat())
        .await
        .expect("writes");
    let read = async {
        loop {
            let mut header = [0u8; 9];
            stream.read_exact(&mut header).await?;
            let length =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; length];
            stream.read_exact(&mut payload).await?;
            let is_ack = header[4] & 1 == 1;
            if header[3] == 4 && !is_ack {
                return Ok::<_, std::io::Error>(
                    payload
                        .chunks_exact(6)
                        .map(|p| {
                            (
                                u16::from_be_bytes([p[0], p[1]]),
                                u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                            )
                        })
                        .collect(),
                );
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server sends its SETTINGS")
        .expect("reads the SETTINGS frame")
}

#[tokio::test]
async fn streams_per_connection_are_capped_and_advertised() {
    const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;
    let app = spawn_app_with(&["--max-concurrent-streams", "7"]).await;
    let settings = server_settings(app.addr).await;
    assert!(
        settings.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 7)),
        "SETTINGS advertise 7 streams: {settings:?}"
    );

    // One connection: 7 open streams, and the 8th waits for one of them to end.
    let client = fresh_client(app.addr).await;
    let watch = || {
        let mut client = client.clone();
        async move {
            client
                .watch_deliveries(pb::WatchDeliveriesRequest::default())
                .await
                .expect("watch opens")
                .into_inner()
        }
    };
    let mut open_streams = Vec::new();
    for _ in 0..7 {
        open_streams.push(watch().await);
    }
    let eighth = tokio::spawn(watch());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!eighth.is_finished(), "the 8th stream waits for a free one");
    open_streams.pop();
    tokio::time::timeout(Duration::from_secs(5), eighth)
        .await
        .expect("the 8th stream opens once one ends")
        .expect("the watch task does not panic");
}

#[tokio::test]
async fn a_quiet_watch_stream_outlives_the_idle_timeout_while_a_deaf_connection_is_closed() {
    let app = spawn_app_with(&[
        "--connection-idle-timeout",
        "2s",
        "--http2-keepalive-interval",
        "500ms",
        "--http2-keepalive-timeout",
        "1s",
    ])
    .await;
    let receiver = Receiver::start().await;
    app.create_webhook(
        &receiver.url("/hook"),
        pb::Function::Withdrawal,
        &[1],
        false,
    )
    .await;
    // Its own connection, so nothing but the watch (and the PINGs) keeps it busy.
    let mut stream = fresh_client(app.addr)
        .await
        .watch_deliveries(pb::WatchDeliveriesRequest::default())
        .await
        .expect("watch opens")
        .into_inner();
    // Past the handshake, then deaf: it never answers the server's PINGs.
    let mut deaf = open(app.addr, 1, &[PREFACE, EMPTY_SETTINGS].concat()).await;
    let opened = Instant::now();

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        count_closed(&mut deaf, opened + Duration::from_secs(2) + MARGIN).await,
        1,
        "a connection that does not answer PINGs is closed"
    );
    app.ingest
        .clone()
        .publish_event(withdrawal_event(
            "quiet-1",
            "W-QUIET",
            pb::Decision::Approved,
            Some(1),
        ))
        .await
        .expect("published");
    let update = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an update arrives on the quiet stream");
    let update = update
        .expect("the stream is still open")
        .expect("the stream did not fail");
    assert_eq!(update.kind, pb::UpdateKind::Created as i32);
}

#[tokio::test]
async fn the_console_port_closes_silent_half_sent_and_idle_connections() {
    let app = spawn_app_with(&[
        "--console-addr",
        "127.0.0.1:0",
        "--handshake-timeout",
        "1s",
        // Longer than the handshake timeout and its margin, so only the handshake timeout can
        // close the first connections in time.
        "--connection-idle-timeout",
        "5s",
        "--http2-keepalive-interval",
        "2s",
    ])
    .await;
    let console = app.console_addr.expect("the console listens");

    let mut silent = open(console, 200, b"").await;
    let mut half_sent = open(console, 20, b"GET / HTTP/1.1\r\nHost: console\r\n").await;
    let mut preface_only = open(console, 20, PREFACE).await;
    let last_opened = Instant::now();
    let deadline = last_opened + Duration::from_secs(1) + MARGIN;
    assert_eq!(
        count_closed(&mut silent, deadline).await,
        200,
        "silent ones"
    );
    assert_eq!(
        count_closed(&mut half_sent, deadline).await,
        20,
        "unfinished request heads"
    );
    assert_eq!(
        count_closed(&mut preface_only, deadline).await,
        20,
        "HTTP/2 prefaces without SETTINGS"
    );

    // A served HTTP/1.1 keep-alive connection is closed once idle for the idle timeout.
    let mut served = TcpStream::connect(console).await.expect("connects");
    served
        .write_all(b"GET / HTTP/1.1\r\nHost: console\r\n\r\n")
        .await
        .expect("writes");
    let mut first = [0u8; 9];
    served.read_exact(&mut first).await.expect("a response");
    assert_eq!(&first, b"HTTP/1.1 ", "the console answers");
    let answered = Instant::now();
    assert!(
        closed_by(&mut served, answered + Duration::from_secs(5) + MARGIN).await,
        "an idle keep-alive connection is closed"
    );
    assert!(
        answered.elapsed() >= Duration::from_millis(4500),
        "not before it was idle for the idle timeout: {:?}",
        answered.elapsed()
    );
}
