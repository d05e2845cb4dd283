//! Harness of the console's browser test: a receiver that fails its first request (so Resend has
//! something to fix), a check that the console's page is really served, and the story script
//! run with node, talked to over its stdin and stdout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The repository root (where `console/` is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the story saves its screenshots: `target/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("console-screenshots")
}

/// The Chromium the story drives: `CHROMIUM_PATH`, or Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Panics, saying how to fix it, when something the story needs is missing: it is never skipped.
pub fn check_prerequisites() {
    let root = repo_root();
    assert!(
        root.join("console/node_modules/playwright-core").is_dir(),
        "console/node_modules is not installed: run scripts/build-console.sh (scripts/test.sh does)"
    );
    assert!(
        root.join("console/dist/index.html").is_file(),
        "console/dist is not built: run scripts/build-console.sh, then build again (scripts/test.sh does)"
    );
    let chromium = chromium_path();
    assert!(
        chromium.is_file(),
        "{} is missing: install Debian's chromium (`apt-get install chromium`; scripts/test.sh does) \
         or set CHROMIUM_PATH",
        chromium.display()
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is not on PATH (Node.js 20 or newer is needed; scripts/build-console.sh installs it): {node:?}"
    );
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub status: u16,
    pub webhook_id: String,
    pub signature: String,
    pub body: String,
}

/// A real HTTP server on 127.0.0.1 that answers its first request 500 ("receiver is warming
/// up") and every later one 200 with a JSON body of a few KiB (so the console shows a large body
/// collapsed), recording each.
#[derive(Clone)]
pub struct FlakyReceiver {
    pub addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

struct ReceiverState {
    count: AtomicUsize,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FlakyReceiver {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ReceiverState {
            count: AtomicUsize::new(0),
            received: received.clone(),
        });
        let app = axum::Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let addr = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

async fn answer(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let first = state.count.fetch_add(1, Ordering::SeqCst) == 0;
    let (status, text) = if first {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "receiver is warming up".to_owned(),
        )
    } else {
        let log: Vec<String> = (1..=120)
            .map(|i| format!("\"step {i}: stored and queued\""))
            .collect();
        (
            StatusCode::OK,
            format!("{{\"accepted\":true,\"log\":[{}]}}", log.join(",")),
        )
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    state.received.lock().expect("lock").push(Received {
        status: status.as_u16(),
        webhook_id: header("webhook-id"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    (status, text)
}

/// One plain HTTP/1.1 GET: (status, headers and body as text).
async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

/// Waits until the console serves the built app's page (not the "not built" page).
pub async fn wait_for_console(addr: &str) {
    let began = Instant::now();
    let mut last = String::from("no answer yet");
    while began.elapsed() < Duration::from_secs(30) {
        match http_get(addr, "/").await {
            Ok((200, page)) if page.contains("<div id=\"root\">") => return,
            Ok((status, page)) => {
                assert!(
                    !page.contains("was not built"),
                    "the binary was built without the console's files: run scripts/build-console.sh \
                     before cargo (scripts/test.sh does)"
                );
                last = format!("{status}: {}", page.chars().take(300).collect::<String>());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the console on {addr} did not serve its page within 30 s (last: {last})");
}
