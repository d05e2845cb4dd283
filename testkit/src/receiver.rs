//! One scriptable HTTP receiver on 127.0.0.1 for every suite: it records each request as it
//! arrives and answers as scripted (status, headers, body, a fixed or random delay, or never),
//! counting the requests it has not answered yet.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::PATIENCE;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's path.
    pub path: String,
    /// Its headers (the signature headers among them).
    pub headers: HeaderMap,
    /// Its body, as sent.
    pub body: Bytes,
    /// When it arrived, for ordering and timing checks.
    pub at: Instant,
    /// The status the receiver answered (or would have, for a hang).
    pub status: u16,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> String {
        self.header("webhook-id")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.body))
    }

    /// The `type` of the JSON body.
    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    /// `data.event_id` of the body.
    pub fn event_id(&self) -> String {
        let body = self.json();
        body["data"]["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("body has no data.event_id: {body}"))
            .to_owned()
    }

    /// The id of the client request the body is about (`data.<kind>.id`).
    pub fn request_id(&self) -> String {
        let data = &self.json()["data"];
        [
            "withdrawal",
            "prop_trading_participation",
            "prop_trading_live_stage",
        ]
        .iter()
        .find_map(|kind| data[*kind]["id"].as_str())
        .unwrap_or_default()
        .to_owned()
    }

    /// `data.approval_node` of the body (`None` for a rejection).
    pub fn approval_node(&self) -> Option<u64> {
        self.json()["data"]["approval_node"].as_u64()
    }
}

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers to add.
    pub headers: Vec<(&'static str, String)>,
    /// How long to wait before answering.
    pub delay: Duration,
    /// A random extra wait, up to this, on top of `delay`.
    pub jitter: Duration,
    /// The body.
    pub body: String,
    /// Never answer: the request stays in flight until the client gives up.
    pub hang: bool,
}

impl Reply {
    /// An empty answer with `status`, at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            body: String::new(),
            hang: false,
        }
    }

    /// No answer at all (a destination that accepts the connection and hangs).
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::status(200)
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Answers after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers after a random delay in `min..=max`.
    pub fn after_between(mut self, min: Duration, max: Duration) -> Self {
        self.delay = min;
        self.jitter = max.saturating_sub(min);
        self
    }

    /// Answers with `body`.
    pub fn with_body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

/// Replies given, in order, to the requests a predicate picks (see [`Receiver::script_when`]).
struct ReplyRule {
    matches: Box<dyn Fn(&Received) -> bool + Send + Sync>,
    replies: VecDeque<Reply>,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Replies to give, in order; when empty, `default_reply`.
    script: Mutex<VecDeque<Reply>>,
    default_reply: Mutex<Option<Reply>>,
    /// Replies for requests that match a predicate; consulted before `script`.
    rules: Mutex<Vec<ReplyRule>>,
    in_flight: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers as scripted (204 by
/// default).
#[derive(Clone)]
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds 127.0.0.1:0");
        let addr = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    /// The URL of `path` on this receiver (`url("")` is `http://127.0.0.1:<port>`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Replies to give next, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().expect("lock").extend(replies);
    }

    /// The reply once the script is used up.
    pub fn reply_by_default(&self, reply: Reply) {
        *self.state.default_reply.lock().expect("lock") = Some(reply);
    }

    /// Gives `replies`, in order, to the requests `matches` picks (before the general script);
    /// once they are used up those requests get the script or default reply.
    pub fn script_when(
        &self,
        matches: impl Fn(&Received) -> bool + Send + Sync + 'static,
        replies: impl IntoIterator<Item = Reply>,
    ) {
        self.state.rules.lock().expect("lock").push(ReplyRule {
            matches: Box::new(matches),
            replies: replies.into_iter().collect(),
        });
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Everything received at `path`.
    pub fn received_at(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.state.received.lock().expect("lock").len()
    }

    /// Requests received but not answered yet.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` requests arrived (at most `within`), and returns them all,
    /// however many that is.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (within [`PATIENCE`]) until what was received satisfies `check`; returns it all.
    pub async fn wait_until(
        &self,
        what: &str,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let received = self.received();
            if check(&received) {
                return received;
            }
            if tokio::time::Instant::now() >= deadline {
                let summary: Vec<String> = received
                    .iter()
                    .map(|r| format!("{} {} {}", r.path, r.status, r.text()))
                    .collect();
                panic!("receiver never got {what}; it got: {summary:#?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (within [`PATIENCE`]) until a request satisfies `check`, and returns it.
    pub async fn wait_for_one(&self, what: &str, check: impl Fn(&Received) -> bool) -> Received {
        let all = self.wait_until(what, |all| all.iter().any(&check)).await;
        all.into_iter()
            .find(|r| check(r))
            .expect("the request just seen")
    }

    /// Waits until at least `count` requests arrived at `path` and returns those.
    pub async fn wait_for_at(&self, path: &str, count: usize) -> Vec<Received> {
        self.wait_until(&format!("{count} requests at {path}"), |all| {
            all.iter().filter(|r| r.path == path).count() >= count
        })
        .await;
        self.received_at(path)
    }
}

impl ReceiverState {
    /// The reply for `received`: a matching rule's, the script's, the default, or 204.
    fn reply_for(&self, received: &Received) -> Reply {
        let ruled = self
            .rules
            .lock()
            .expect("lock")
            .iter_mut()
            .find(|rule| !rule.replies.is_empty() && (rule.matches)(received))
            .and_then(|rule| rule.replies.pop_front());
        ruled
            .or_else(|| self.script.lock().expect("lock").pop_front())
            .or_else(|| self.default_reply.lock().expect("lock").clone())
            .unwrap_or_else(|| Reply::status(204))
    }
}

/// Decrements the in-flight count however the handler ends (answered, or dropped because the
/// connection died).
struct InFlight(Arc<ReceiverState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut received = Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
        status: 0,
    };
    let reply = state.reply_for(&received);
    received.status = reply.status;
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(state.clone());
    state.received.lock().expect("lock").push(received);
    if reply.hang {
        std::future::pending::<()>().await;
    }
    let jitter = if reply.jitter.is_zero() {
        Duration::ZERO
    } else {
        rand::rng().random_range(Duration::ZERO..=reply.jitter)
    };
    let delay = reply.delay + jitter;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
