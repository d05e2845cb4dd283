//! The load generator: webhooks set up through the admin API, events published through the
//! real ingest API (`PublishEvent` / `PublishEvents`), closed-loop (callers as fast as acks
//! come back, optionally held back by a backlog cap) or open-loop (a fixed rate, paced by a
//! tokio interval, whatever the acks do), and WatchDeliveries subscribers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use uuid::Uuid;
use webhooks::proto::v1 as pb;
use webhooks::proto::v1::event_ingest_client::EventIngestClient;
use webhooks::proto::v1::webhook_admin_client::WebhookAdminClient;

use crate::receiver::Receiver;

/// A measurement window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start (after warm-up).
    pub start: Instant,
    /// End; generators stop here.
    pub end: Instant,
}

impl Window {
    /// Starts after `warmup` from now and lasts `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now() + warmup;
        Self {
            start,
            end: start + duration,
        }
    }

    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// Creates `count` webhooks (withdrawals approved at `node`) on the receiver, with endpoint
/// indexes from `first_index`; `hang` makes them hanging endpoints.
pub async fn create_webhooks(
    channel: &Channel,
    receiver: &Receiver,
    first_index: u16,
    count: u16,
    node: u32,
    hang: bool,
) -> anyhow::Result<()> {
    let mut admin = WebhookAdminClient::new(channel.clone());
    for index in first_index..first_index + count {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let url = receiver.register(index, &secret, hang)?;
        admin
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(pb::Webhook {
                    name: format!("bench endpoint {index}"),
                    destination_url: url,
                    function: pb::Function::Withdrawal as i32,
                    events: Some(pb::EventSelection {
                        approval_nodes: vec![node],
                        rejection: false,
                    }),
                    ..Default::default()
                }),
                secret,
                ..Default::default()
            })
            .await
            .with_context(|| format!("CreateWebhook for endpoint {index} failed"))?;
    }
    Ok(())
}

/// Creates one webhook (withdrawals approved at `node`) per URL, with fresh secrets, for a
/// receiver that verifies nothing (the nginx judge).
pub async fn create_webhooks_at(
    channel: &Channel,
    urls: &[String],
    node: u32,
) -> anyhow::Result<()> {
    let mut admin = WebhookAdminClient::new(channel.clone());
    for (index, url) in urls.iter().enumerate() {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        admin
            .create_webhook(pb::CreateWebhookRequest {
                webhook: Some(pb::Webhook {
                    name: format!("bench judge endpoint {index}"),
                    destination_url: url.clone(),
                    function: pb::Function::Withdrawal as i32,
                    events: Some(pb::EventSelection {
                        approval_nodes: vec![node],
                        rejection: false,
                    }),
                    ..Default::default()
                }),
                secret: format!("whsec_{}", STANDARD.encode(key)),
                ..Default::default()
            })
            .await
            .with_context(|| format!("CreateWebhook for {url} failed"))?;
    }
    Ok(())
}

/// Keeps `count` up to date with the database's SUCCEEDED deliveries (every 250 ms) until the
/// returned task is aborted: the delivered count when the receiver counts nothing.
pub fn count_succeeded(
    db: tokio_postgres::Client,
    count: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(n) = crate::pgstats::count_status(&db, "succeeded").await {
                count.store(n.max(0) as u64, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// Makes unique withdrawal decisions (unique idempotency keys and request ids, so deliveries
/// are never held back by per-request ordering).
pub struct Events {
    prefix: String,
    next: AtomicU64,
    node: u32,
}

impl Events {
    /// Events approved at `node` (which selects the fan-out: the webhooks listening on it).
    pub fn new(label: &str, node: u32) -> Arc<Self> {
        Arc::new(Self {
            prefix: format!("{label}-{}", &Uuid::new_v4().simple().to_string()[..8]),
            next: AtomicU64::new(0),
            node,
        })
    }

    /// The next decision.
    pub fn next(&self) -> pb::PublishEventRequest {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        pb::PublishEventRequest {
            idempotency_key: format!("bench-{}-{n}", self.prefix),
            decision: pb::Decision::Approved as i32,
            approval_node: Some(self.node),
            occurred_at: None,
            request: Some(pb::publish_event_request::Request::Withdrawal(
                pb::WithdrawalRequest {
                    id: format!("WD-{}-{n}", self.prefix),
                    client_id: format!("C-{}", n % 5000),
                    client_name: "Ada Lovelace".into(),
                    client_email: "ada@example.com".into(),
                    trading_account: "MT5-123456".into(),
                    amount: "1250.00".into(),
                    currency: "USD".into(),
                    payment_method: "bank_transfer".into(),
                    beneficiary: Some(pb::Beneficiary {
                        account_holder: "Ada Lovelace".into(),
                        bank_name: "Example Bank".into(),
                        iban: "GB33BUKB20201555555555".into(),
                        swift_code: "BUKBGB22".into(),
                        ..Default::default()
                    }),
                    submitted_at: None,
                    status: "approved".into(),
                    remarks: "benchmark".into(),
                },
            )),
        }
    }
}

/// Holds publishers back while more than `cap` published deliveries are not yet received.
#[derive(Clone)]
pub struct Gate {
    /// Most deliveries outstanding.
    pub cap: u64,
    /// Deliveries each acknowledged event creates.
    pub fanout: u64,
    /// Where deliveries are counted.
    pub receiver: Receiver,
    /// Deliveries published so far (shared by the callers).
    pub published: Arc<AtomicU64>,
    /// Delivered so far as counted elsewhere (the database, for a receiver that counts
    /// nothing); the receiver's count when none.
    pub delivered: Option<Arc<AtomicU64>>,
}

impl Gate {
    fn outstanding(&self) -> u64 {
        let delivered = match &self.delivered {
            Some(d) => d.load(Ordering::Relaxed),
            None => self.receiver.ok(),
        };
        self.published
            .load(Ordering::Relaxed)
            .saturating_sub(delivered)
    }
}

/// Acknowledgement times of events acknowledged inside the window.
#[derive(Default)]
pub struct Acks(Mutex<Vec<Ack>>);

/// One acknowledged event: its id, when its publish call started and when it was answered.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// The event's id (`data.event_id` in the body).
    pub event_id: Uuid,
    /// When the publish call was sent.
    pub sent: Instant,
    /// When its answer arrived.
    pub acked: Instant,
}

impl Acks {
    fn record(&self, results: &[pb::PublishEventResponse], sent: Instant, acked: Instant) {
        if let Ok(mut acks) = self.0.lock() {
            for r in results {
                if let Ok(event_id) = Uuid::parse_str(&r.event_id) {
                    acks.push(Ack {
                        event_id,
                        sent,
                        acked,
                    });
                }
            }
        }
    }

    /// Everything recorded.
    pub fn take(&self) -> Vec<Ack> {
        self.0
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }
}

/// What publishers did.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Successful calls (any time).
    pub calls: u64,
    /// Events acknowledged (any time).
    pub events: u64,
    /// Events acknowledged inside the window.
    pub window_events: u64,
    /// Calls acknowledged inside the window.
    pub window_calls: u64,
    /// Call latencies inside the window, µs.
    pub call_latency_us: Vec<i64>,
    /// Failed calls.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Open loop: events not sent because too many calls were in flight.
    pub overflow: u64,
}

impl Published {
    fn merge(&mut self, other: Published) {
        self.calls += other.calls;
        self.events += other.events;
        self.window_events += other.window_events;
        self.window_calls += other.window_calls;
        self.call_latency_us.extend(other.call_latency_us);
        self.errors += other.errors;
        self.overflow += other.overflow;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn ok(&mut self, window: &Window, sent: Instant, acked: Instant, events: usize) {
        self.calls += 1;
        self.events += events as u64;
        if window.contains(acked) {
            self.window_calls += 1;
            self.window_events += events as u64;
            self.call_latency_us
                .push((acked - sent).as_micros().min(i64::MAX as u128) as i64);
        }
    }

    fn failed(&mut self, error: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

async fn publish(
    client: &mut EventIngestClient<Channel>,
    events: &Events,
    batch: usize,
) -> Result<Vec<pb::PublishEventResponse>, tonic::Status> {
    if batch <= 1 {
        let answer = client.publish_event(events.next()).await?;
        Ok(vec![answer.into_inner()])
    } else {
        let request = pb::PublishEventsRequest {
            events: (0..batch).map(|_| events.next()).collect(),
        };
        Ok(client.publish_events(request).await?.into_inner().results)
    }
}

/// How closed-loop callers publish.
pub struct ClosedLoop {
    /// Concurrent callers.
    pub callers: usize,
    /// Events per call (1: PublishEvent, more: PublishEvents).
    pub batch: usize,
    /// Measurement window; callers stop at its end.
    pub window: Window,
    /// Backlog cap, if any.
    pub gate: Option<Gate>,
    /// Record acks inside the window.
    pub acks: Option<Arc<Acks>>,
    /// Stop once this many events were acknowledged (fixed-size workloads).
    pub max_events: Option<u64>,
}

/// Runs closed-loop callers until the window ends (or `max_events` are published).
pub async fn closed_loop(channels: &[Channel], events: Arc<Events>, spec: ClosedLoop) -> Published {
    let mut callers = JoinSet::new();
    let issued = Arc::new(AtomicU64::new(0));
    for i in 0..spec.callers.max(1) {
        let mut client = EventIngestClient::new(channels[i % channels.len()].clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let events = events.clone();
        let gate = spec.gate.clone();
        let acks = spec.acks.clone();
        let (window, batch, max_events, issued) = (
            spec.window,
            spec.batch.max(1),
            spec.max_events,
            issued.clone(),
        );
        callers.spawn(async move {
            let mut stats = Published::default();
            'calls: loop {
                if Instant::now() >= window.end {
                    break;
                }
                if let Some(max) = max_events
                    && issued.fetch_add(batch as u64, Ordering::Relaxed) >= max
                {
                    break;
                }
                if let Some(gate) = &gate {
                    while gate.outstanding() > gate.cap {
                        if Instant::now() >= window.end {
                            break 'calls;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                let sent = Instant::now();
                match publish(&mut client, &events, batch).await {
                    Ok(results) => {
                        let acked = Instant::now();
                        if let Some(gate) = &gate {
                            gate.published
                                .fetch_add(results.len() as u64 * gate.fanout, Ordering::Relaxed);
                        }
                        if let Some(acks) = &acks
                            && window.contains(acked)
                        {
                            acks.record(&results, sent, acked);
                        }
                        stats.ok(&window, sent, acked, results.len());
                    }
                    Err(status) => {
                        stats.failed(format!("{:?}: {}", status.code(), status.message()));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            stats
        });
    }
    let mut total = Published::default();
    while let Some(done) = callers.join_next().await {
        if let Ok(stats) = done {
            total.merge(stats);
        }
    }
    total
}

/// Publishes single events at `rate` per second, open loop: one call started per due event
/// whatever the previous ones do (at most `max_in_flight` at once; beyond, events are counted as
/// overflow and not sent). Stops at the window's end and waits for the calls in flight.
pub async fn open_loop(
    channels: &[Channel],
    events: Arc<Events>,
    rate: f64,
    window: Window,
    acks: Arc<Acks>,
    max_in_flight: usize,
) -> Published {
    let shared = Arc::new(Mutex::new(Published::default()));
    let mut calls = JoinSet::new();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut next_channel = 0usize;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        while calls.try_join_next().is_some() {}
        let due = ((now - started).as_secs_f64() * rate) as u64;
        while sent < due {
            sent += 1;
            if calls.len() >= max_in_flight {
                if let Ok(mut s) = shared.lock() {
                    s.overflow += 1;
                }
                continue;
            }
            let mut client =
                EventIngestClient::new(channels[next_channel % channels.len()].clone());
            next_channel += 1;
            let request = events.next();
            let (shared, acks) = (shared.clone(), acks.clone());
            calls.spawn(async move {
                let at = Instant::now();
                let answer = client.publish_event(request).await;
                let acked = Instant::now();
                let Ok(mut s) = shared.lock() else { return };
                match answer {
                    Ok(answer) => {
                        let results = [answer.into_inner()];
                        if window.contains(acked) {
                            acks.record(&results, at, acked);
                        }
                        s.ok(&window, at, acked, 1);
                    }
                    Err(status) => s.failed(format!("{:?}: {}", status.code(), status.message())),
                }
            });
        }
    }
    // Calls have a 30 s deadline on the channel, so this ends.
    while calls.join_next().await.is_some() {}
    shared.lock().map(|s| s.clone()).unwrap_or_default()
}

/// The part of a `DeliveryUpdate` the bench's watchers decode: its cursor (field 1). prost skips
/// the other fields without building them, so a watcher still reads every message off the wire
/// (HTTP/2, gRPC framing, the protobuf wire format) but does not allocate the strings and
/// messages a console would. On these 2 cores the clients share the CPU with the service, and
/// full decoding made them most of the watchers' cost (BENCHMARKS.md).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateCursor {
    /// `DeliveryUpdate.cursor`.
    #[prost(string, tag = "1")]
    pub cursor: String,
}

/// How the bench's watchers decode what they receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatcherDecode {
    /// Each update's cursor only (checked to increase).
    Cursor,
    /// Each update whole, as `DeliveryUpdate` (what a console does), cursors checked too.
    Full,
}

impl WatcherDecode {
    /// The flag's value.
    pub fn as_str(self) -> &'static str {
        match self {
            WatcherDecode::Cursor => "cursor",
            WatcherDecode::Full => "full",
        }
    }
}

/// WatchDeliveries subscribers that read everything they are sent.
pub struct Watchers {
    tasks: JoinSet<()>,
    /// Updates received by all watchers.
    pub received: Arc<AtomicU64>,
    /// Streams that failed or ended early, and updates whose cursor did not follow the last.
    pub errors: Arc<AtomicU64>,
    /// The first failure.
    pub first_error: Arc<Mutex<Option<String>>>,
}

/// One watcher's stream, in the form `decode` asks for: the cursor of each update.
async fn open_watch(
    channel: Channel,
    decode: WatcherDecode,
) -> Result<futures_util::stream::BoxStream<'static, Result<String, tonic::Status>>, tonic::Status>
{
    use futures_util::StreamExt;
    let request = pb::WatchDeliveriesRequest::default();
    Ok(match decode {
        WatcherDecode::Full => WebhookAdminClient::new(channel)
            .watch_deliveries(request)
            .await?
            .into_inner()
            .map(|update| update.map(|u| u.cursor))
            .boxed(),
        WatcherDecode::Cursor => {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let codec =
                tonic_prost::ProstCodec::<pb::WatchDeliveriesRequest, UpdateCursor>::default();
            grpc.server_streaming(
                tonic::Request::new(request),
                http::uri::PathAndQuery::from_static(
                    "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries",
                ),
                codec,
            )
            .await?
            .into_inner()
            .map(|update| update.map(|u| u.cursor))
            .boxed()
        }
    })
}

impl Watchers {
    /// Opens `n` unfiltered streams over `channels` (no per-call deadline), decoding as
    /// `decode` says, and waits until every one is established (at most 30 s).
    pub async fn open(
        channels: &[Channel],
        n: usize,
        decode: WatcherDecode,
    ) -> anyhow::Result<Self> {
        let received = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let opened = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let channel = channels[i % channels.len()].clone();
            let (received, errors, first_error, opened) = (
                received.clone(),
                errors.clone(),
                first_error.clone(),
                opened.clone(),
            );
            tasks.spawn(async move {
                use futures_util::StreamExt;
                let fail = |e: String| {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = first_error.lock() {
                        first.get_or_insert(e);
                    }
                };
                let mut stream = match open_watch(channel, decode).await {
                    Ok(stream) => stream,
                    Err(status) => {
                        return fail(format!("{:?}: {}", status.code(), status.message()));
                    }
                };
                opened.fetch_add(1, Ordering::Relaxed);
                let mut last = 0i64;
                loop {
                    match stream.next().await {
                        Some(Ok(cursor)) => {
                            received.fetch_add(1, Ordering::Relaxed);
                            match cursor.parse::<i64>() {
                                Ok(cursor) if cursor > last => last = cursor,
                                _ => {
                                    return fail(format!(
                                        "update cursor {cursor:?} does not follow {last}"
                                    ));
                                }
                            }
                        }
                        None => return fail("the stream ended".to_owned()),
                        Some(Err(status)) => {
                            return fail(format!("{:?}: {}", status.code(), status.message()));
                        }
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while (opened.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed)) < n as u64 {
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "only {} of {n} WatchDeliveries streams opened within 30 s",
                    opened.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if errors.load(Ordering::Relaxed) > 0 {
            let first = first_error
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            anyhow::bail!("WatchDeliveries failed to open: {first}");
        }
        Ok(Self {
            tasks,
            received,
            errors,
            first_error,
        })
    }

    /// Closes every stream.
    pub fn close(mut self) {
        self.tasks.abort_all();
    }
}

/// The bench's WatchDeliveries clients in a process of their own (this executable, run with
/// `--watch-clients ADDR`), so that their CPU is measured apart from the bench's and the
/// service's: the watchers scenario's figure is then about the service.
pub struct WatcherProcess {
    child: tokio::process::Child,
    /// The client process.
    pub pid: u32,
    /// Updates received by all its watchers (as last reported, every 100 ms).
    pub received: Arc<AtomicU64>,
    /// Streams that failed or ended early.
    pub errors: Arc<AtomicU64>,
    /// The first failure.
    pub first_error: Arc<Mutex<Option<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl WatcherProcess {
    /// Starts `n` watchers of the service at `addr` in a child process and waits until every
    /// stream is open.
    pub async fn spawn(
        addr: std::net::SocketAddr,
        n: usize,
        decode: WatcherDecode,
    ) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe().context("finding the bench executable failed")?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                "--watch-clients",
                &addr.to_string(),
                "--watchers",
                &n.to_string(),
                "--watcher-decode",
                decode.as_str(),
            ])
            // The child ends when its stdin closes, so it never outlives the bench.
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the watcher-client process failed")?;
        let pid = child
            .id()
            .context("the watcher-client process has no pid")?;
        let stdout = child
            .stdout
            .take()
            .context("the watcher-client process has no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        match tokio::time::timeout(Duration::from_secs(40), lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "opened" => {}
            Ok(Ok(Some(line))) => anyhow::bail!("the watcher clients failed: {line}"),
            other => anyhow::bail!("the watcher clients did not start: {other:?}"),
        }
        let received = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let (r, e, f) = (received.clone(), errors.clone(), first_error.clone());
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                // "received <updates> <errors> [first error]"
                let mut parts = line.splitn(4, ' ');
                if parts.next() != Some("received") {
                    continue;
                }
                let number = |p: Option<&str>| p.and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = number(parts.next()) {
                    r.store(n, Ordering::Relaxed);
                }
                if let Some(n) = number(parts.next()) {
                    e.store(n, Ordering::Relaxed);
                }
                if let Some(message) = parts.next().filter(|m| !m.is_empty())
                    && let Ok(mut first) = f.lock()
                {
                    first.get_or_insert_with(|| message.to_owned());
                }
            }
        });
        Ok(Self {
            child,
            pid,
            received,
            errors,
            first_error,
            reader,
        })
    }

    /// Stops the client process.
    pub async fn close(mut self) {
        self.reader.abort();
        let _ = self.child.kill().await;
    }
}

/// The child side of [`WatcherProcess`]: opens `n` unfiltered streams to the service at `addr`
/// over 4 connections, says `opened` (or `error ...`), then reports its counts every 100 ms
/// until its stdin closes.
pub async fn run_watch_clients(
    addr: std::net::SocketAddr,
    n: usize,
    decode: WatcherDecode,
) -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .with_context(|| format!("could not connect to the service at {addr}"))?,
        );
    }
    let watchers = match Watchers::open(&channels, n, decode).await {
        Ok(watchers) => watchers,
        Err(e) => {
            println!("error {e:#}");
            return Ok(());
        }
    };
    println!("opened");
    let mut stdin_closed = tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    });
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stdin_closed => break,
        }
        let first = watchers
            .first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        println!(
            "received {} {} {}",
            watchers.received.load(Ordering::Relaxed),
            watchers.errors.load(Ordering::Relaxed),
            first.replace('\n', " ")
        );
    }
    watchers.close();
    Ok(())
}
