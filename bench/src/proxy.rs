//! A counting TCP proxy between the service and Postgres (127.0.0.1 only): it forwards bytes
//! unchanged and reads the frontend side of the wire protocol to count what the service asks
//! for: statements executed (each extended-protocol `Execute` and each simple `Query`), by SQL
//! text, plus `Parse` messages (statements prepared) and round trips (`Sync` and `Query`).
//!
//! This is the service's own view of its SQL ("calls" per statement, as pg_stat_statements
//! would count them) and needs no server configuration. It adds a hop, so scenarios that
//! measure speed never go through it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Message counts, by SQL text and by kind.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Executions per normalised SQL text (Execute of a portal, or a simple Query).
    pub statements: HashMap<String, u64>,
    /// `Parse` messages (statements prepared, named or not).
    pub parses: u64,
    /// Round trips: `Sync` plus simple `Query` messages.
    pub round_trips: u64,
    /// Connections opened through the proxy.
    pub connections: u64,
    /// Connections whose protocol stream could not be followed (counts stop there).
    pub unparsed_connections: u64,
}

impl Counts {
    /// Every statement executed.
    pub fn total_statements(&self) -> u64 {
        self.statements.values().sum()
    }

    /// What happened since `earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut statements = HashMap::new();
        for (sql, n) in &self.statements {
            let before = earlier.statements.get(sql).copied().unwrap_or(0);
            if *n > before {
                statements.insert(sql.clone(), n - before);
            }
        }
        Counts {
            statements,
            parses: self.parses.saturating_sub(earlier.parses),
            round_trips: self.round_trips.saturating_sub(earlier.round_trips),
            connections: self.connections.saturating_sub(earlier.connections),
            unparsed_connections: self
                .unparsed_connections
                .saturating_sub(earlier.unparsed_connections),
        }
    }
}

/// A running proxy; it stops accepting when dropped (open connections end with the service).
pub struct Proxy {
    /// Where the service should connect.
    pub addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("the SQL-counting proxy could not bind 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let task = tokio::spawn(accept(listener, upstream, counts.clone()));
        Ok(Self { addr, counts, task })
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, counts: Arc<Mutex<Counts>>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        if let Ok(mut c) = counts.lock() {
            c.connections += 1;
        }
        let counts = counts.clone();
        connections.spawn(async move {
            let _ = relay(client, upstream, counts).await;
        });
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    counts: Arc<Mutex<Counts>>,
) -> anyhow::Result<()> {
    let mut client = client;
    // The service asks for TLS first (sslmode=prefer, its default): refuse it here, as a server
    // without TLS would, so the service goes on in plain text and the stream can be read.
    let mut first = [0u8; 8];
    client.read_exact(&mut first).await?;
    if u32::from_be_bytes([first[4], first[5], first[6], first[7]]) == SSL_REQUEST {
        client.write_all(b"N").await?;
        client.read_exact(&mut first).await?;
    }
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let downstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut parser = Frontend::default();
    server_write.write_all(&first).await?;
    parser.feed(&first, &counts);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = client_read.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        server_write.write_all(&buffer[..n]).await?;
        let broken_before = parser.broken;
        parser.feed(&buffer[..n], &counts);
        if parser.broken
            && !broken_before
            && let Ok(mut c) = counts.lock()
        {
            c.unparsed_connections += 1;
        }
    }
    let _ = server_write.shutdown().await;
    let _ = downstream.await;
    Ok(())
}

/// Follows the frontend half of one connection's protocol stream.
#[derive(Default)]
struct Frontend {
    pending: Vec<u8>,
    started: bool,
    broken: bool,
    /// Prepared statement name -> SQL.
    statements: HashMap<String, String>,
    /// Portal name -> SQL.
    portals: HashMap<String, String>,
}

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

impl Frontend {
    fn feed(&mut self, bytes: &[u8], counts: &Mutex<Counts>) {
        if self.broken {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            if !self.started {
                // Untyped start-up packets: length, then a code.
                if rest.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if !(8..=10_000).contains(&len) {
                    self.broken = true;
                    return;
                }
                if rest.len() < len {
                    break;
                }
                let code = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
                if code == SSL_REQUEST || code == GSSENC_REQUEST {
                    // `relay` refuses the service's SSLRequest itself; were the server to accept
                    // encryption, the stream could not be read any more.
                    self.broken = code == GSSENC_REQUEST;
                } else {
                    self.started = true;
                }
                at += len;
                continue;
            }
            if rest.len() < 5 {
                break;
            }
            let kind = rest[0];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if !(4..=(1 << 30)).contains(&len) {
                self.broken = true;
                return;
            }
            if rest.len() < 1 + len {
                break;
            }
            let body = rest[5..1 + len].to_vec();
            at += 1 + len;
            self.message(kind, &body, counts);
        }
        self.pending.drain(..at);
    }

    fn message(&mut self, kind: u8, body: &[u8], counts: &Mutex<Counts>) {
        let Ok(mut c) = counts.lock() else { return };
        match kind {
            b'Q' => {
                let sql = cstr(body, 0).0;
                *c.statements.entry(normalise(&sql)).or_insert(0) += 1;
                c.round_trips += 1;
            }
            b'P' => {
                let (name, next) = cstr(body, 0);
                let (sql, _) = cstr(body, next);
                self.statements.insert(name, normalise(&sql));
                c.parses += 1;
            }
            b'B' => {
                let (portal, next) = cstr(body, 0);
                let (statement, _) = cstr(body, next);
                let sql = self
                    .statements
                    .get(&statement)
                    .cloned()
                    .unwrap_or_else(|| format!("<unknown prepared statement {statement}>"));
                self.portals.insert(portal, sql);
            }
            b'E' => {
                let (portal, _) = cstr(body, 0);
                let sql = self
                    .portals
                    .get(&portal)
                    .cloned()
                    .unwrap_or_else(|| "<unknown portal>".to_owned());
                *c.statements.entry(sql).or_insert(0) += 1;
            }
            b'S' => c.round_trips += 1,
            b'C' => {
                // Close: 'S' statement or 'P' portal, then the name.
                if let Some((&which, name)) = body.split_first() {
                    let (name, _) = cstr(name, 0);
                    if which == b'S' {
                        self.statements.remove(&name);
                    } else {
                        self.portals.remove(&name);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The NUL-terminated string at `from`, and the offset after it.
fn cstr(body: &[u8], from: usize) -> (String, usize) {
    let rest = body.get(from..).unwrap_or_default();
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    (
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        from + end + 1,
    )
}

/// One line, single spaces.
fn normalise(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn counts_extended_and_simple_statements() {
        let counts = Mutex::new(Counts::default());
        let mut f = Frontend::default();
        let mut startup = Vec::new();
        startup.extend_from_slice(&16u32.to_be_bytes());
        startup.extend_from_slice(&196_608u32.to_be_bytes());
        startup.extend_from_slice(b"user\0pg\0");
        let mut stream = startup;
        stream.extend(typed(b'P', b"s1\0SELECT  1\n FROM t\0\0\0"));
        stream.extend(typed(b'B', b"\0s1\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        stream.extend(typed(b'S', b""));
        stream.extend(typed(b'B', b"\0s1\0\0\0\0\0\0\0"));
        stream.extend(typed(b'E', b"\0\0\0\0\0"));
        stream.extend(typed(b'S', b""));
        stream.extend(typed(b'Q', b"BEGIN\0"));
        // Fed in awkward pieces.
        for chunk in stream.chunks(3) {
            f.feed(chunk, &counts);
        }
        let c = counts.lock().unwrap();
        assert!(!f.broken);
        assert_eq!(c.statements.get("SELECT 1 FROM t"), Some(&2));
        assert_eq!(c.statements.get("BEGIN"), Some(&1));
        assert_eq!(c.parses, 1);
        assert_eq!(c.round_trips, 3);
    }
}
