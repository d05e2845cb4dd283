//! The fast local receiver: a hyper HTTP/1.1 server on 127.0.0.1 that verifies every Standard
//! Webhooks signature (its own HMAC-SHA256 code, not the service's), rejects and counts bad
//! ones with 401, and records when each delivery arrived (by `webhook-id` and the body's
//! `data.event_id`). Paths `/hook/<n>` answer 204 at once; paths `/hang/<n>` verify, then hold
//! the request for 30 s before answering (the "hanging endpoint").

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use uuid::Uuid;

/// How long a hanging endpoint holds a request.
pub const HANG: Duration = Duration::from_secs(30);
/// Largest body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// Standard Webhooks' usual timestamp tolerance.
const TOLERANCE_SECS: i64 = 300;

/// One verified delivery.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// `data.event_id` of the body.
    pub event_id: Uuid,
    /// Index of the endpoint (the `<n>` of the path).
    pub endpoint: u16,
    /// When the request was read.
    pub at: Instant,
}

struct Endpoint {
    index: u16,
    key: Vec<u8>,
    hang: bool,
}

#[derive(Default)]
struct Log {
    receipts: Vec<Receipt>,
    seen: HashSet<u128>,
}

#[derive(Default)]
struct State {
    endpoints: RwLock<HashMap<String, Arc<Endpoint>>>,
    log: Mutex<Log>,
    /// Verified, first-time deliveries (any endpoint).
    ok: AtomicU64,
    /// Verified repeats of a webhook-id already received (at-least-once redeliveries).
    duplicates: AtomicU64,
    /// Requests whose signature or timestamp did not verify (answered 401).
    signature_failures: AtomicU64,
    /// Requests to a path no webhook was registered for, or malformed (answered 400/404).
    bad_requests: AtomicU64,
    /// Requests a hanging endpoint took.
    hang_requests: AtomicU64,
    /// Verified first-time deliveries per endpoint index.
    per_endpoint: Mutex<HashMap<u16, u64>>,
}

/// Counters of a receiver.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counts {
    /// Verified first-time deliveries.
    pub ok: u64,
    /// Verified repeats.
    pub duplicates: u64,
    /// Signature or timestamp failures.
    pub signature_failures: u64,
    /// Unknown paths or malformed requests.
    pub bad_requests: u64,
    /// Requests held by hanging endpoints.
    pub hang_requests: u64,
}

/// A running receiver; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    _server: Arc<ServerTask>,
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection task.
        self.0.abort();
    }
}

impl Receiver {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the receiver could not bind 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Self {
            addr,
            state,
            _server: Arc::new(ServerTask(task)),
        })
    }

    /// Registers endpoint `index` with its `whsec_...` secret; returns its URL.
    pub fn register(&self, index: u16, secret: &str, hang: bool) -> anyhow::Result<String> {
        let key = decode_secret(secret)?;
        let path = if hang {
            format!("/hang/{index}")
        } else {
            format!("/hook/{index}")
        };
        let endpoint = Arc::new(Endpoint { index, key, hang });
        self.state
            .endpoints
            .write()
            .map_err(|_| anyhow::anyhow!("receiver state poisoned"))?
            .insert(path.clone(), endpoint);
        Ok(format!("http://{}{path}", self.addr))
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        let s = &self.state;
        Counts {
            ok: s.ok.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            signature_failures: s.signature_failures.load(Ordering::Relaxed),
            bad_requests: s.bad_requests.load(Ordering::Relaxed),
            hang_requests: s.hang_requests.load(Ordering::Relaxed),
        }
    }

    /// Verified first-time deliveries so far (all endpoints).
    pub fn ok(&self) -> u64 {
        self.state.ok.load(Ordering::Relaxed)
    }

    /// Verified first-time deliveries to one endpoint.
    pub fn ok_at(&self, endpoint: u16) -> u64 {
        self.state
            .per_endpoint
            .lock()
            .map(|m| m.get(&endpoint).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// First receipt time of each event at `endpoint`.
    pub fn receipts_at(&self, endpoint: u16) -> HashMap<Uuid, Instant> {
        let mut out = HashMap::new();
        if let Ok(log) = self.state.log.lock() {
            for r in log.receipts.iter().filter(|r| r.endpoint == endpoint) {
                out.entry(r.event_id).or_insert(r.at);
            }
        }
        out
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                eprintln!("receiver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: StatusCode) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let endpoint = state
        .endpoints
        .read()
        .ok()
        .and_then(|m| m.get(request.uri().path()).cloned());
    let Some(endpoint) = endpoint else {
        state.bad_requests.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::NOT_FOUND);
    };
    let header = |name: &str| -> String {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            state.bad_requests.fetch_add(1, Ordering::Relaxed);
            return reply(StatusCode::BAD_REQUEST);
        }
    };
    let at = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if !verify(&endpoint.key, &id, &timestamp, &body, &signature, now) {
        state.signature_failures.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::UNAUTHORIZED);
    }
    if endpoint.hang {
        state.hang_requests.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(HANG).await;
        return reply(StatusCode::NO_CONTENT);
    }
    let Some(event_id) = event_id_of(&body) else {
        state.bad_requests.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::BAD_REQUEST);
    };
    let message = id
        .strip_prefix("msg_")
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .map(|u| u.as_u128())
        .unwrap_or_else(|| {
            // Not a msg_<uuid>: still deduplicate by a hash of the id.
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            u128::from(h.finish())
        });
    let first = match state.log.lock() {
        Ok(mut log) => {
            let first = log.seen.insert(message);
            if first {
                log.receipts.push(Receipt {
                    event_id,
                    endpoint: endpoint.index,
                    at,
                });
            }
            first
        }
        Err(_) => false,
    };
    if first {
        if let Ok(mut per) = state.per_endpoint.lock() {
            *per.entry(endpoint.index).or_insert(0) += 1;
        }
        state.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    reply(StatusCode::NO_CONTENT)
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn decode_secret(secret: &str) -> anyhow::Result<Vec<u8>> {
    let encoded = secret
        .strip_prefix("whsec_")
        .context("the bench only uses whsec_ secrets")?;
    STANDARD
        .decode(encoded)
        .context("the secret is not valid base64")
}

/// Standard Webhooks verification: any `v1,<base64>` entry of `signature` must be the
/// HMAC-SHA256 of `{id}.{timestamp}.{body}` under `key` (compared in constant time), and the
/// timestamp must be within 5 minutes of `now`.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if id.is_empty() || (now - ts).abs() > TOLERANCE_SECS {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok())
}

#[derive(serde::Deserialize)]
struct Body {
    data: Data,
}

#[derive(serde::Deserialize)]
struct Data {
    event_id: Uuid,
}

fn event_id_of(body: &[u8]) -> Option<Uuid> {
    serde_json::from_slice::<Body>(body)
        .ok()
        .map(|b| b.data.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the Standard Webhooks reference libraries.
    #[test]
    fn verifies_the_reference_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let now = 1614265330;
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            body,
            good,
            now
        ));
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            body,
            &format!("v1,AAAA {good}"),
            now
        ));
        assert!(!verify(&key, "msg_other", "1614265330", body, good, now));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            body,
            good,
            now + 301
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "x",
            body,
            good,
            now
        ));
    }

    #[test]
    fn reads_the_event_id() {
        let id = Uuid::now_v7();
        let body =
            format!(r#"{{"type":"withdrawal.approved","data":{{"event_id":"{id}","x":1}}}}"#);
        assert_eq!(event_id_of(body.as_bytes()), Some(id));
        assert_eq!(event_id_of(b"{}"), None);
    }
}
