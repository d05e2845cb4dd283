//! What only the console's browser test needs besides `testkit`: a receiver that fails its first
//! request (so Resend has something to fix), a check that the console's page is really served,
//! and where the story script, its browser and its screenshots are.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::{Receiver, Reply};
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

/// A receiver that answers its first request 500 ("receiver is warming up") and every later one
/// 200 with a JSON body of a few KiB (so the console shows a large body collapsed).
pub async fn flaky_receiver() -> Receiver {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500).with_body("receiver is warming up")]);
    let log: Vec<String> = (1..=120)
        .map(|i| format!("\"step {i}: stored and queued\""))
        .collect();
    receiver.reply_by_default(Reply::status(200).with_body(&format!(
        "{{\"accepted\":true,\"log\":[{}]}}",
        log.join(",")
    )));
    receiver
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
