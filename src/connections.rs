//! Connection limits of the gRPC port and the web console, so that no peer can hoard them.
//!
//! hyper and tonic bound what happens inside a connection once it speaks HTTP: streams per
//! HTTP/2 connection, keepalive PINGs that a live peer must answer, the HTTP/1 header read time.
//! Nothing bounds who holds the socket itself: a peer that opens TCP connections and sends
//! nothing, or stops after the HTTP/2 preface, keeps a file descriptor and a task forever, and
//! enough of them exhaust the process. [`ConnectionGuard`] closes that gap:
//!
//! - every accepted socket takes a slot of one budget shared by the gRPC port and the console
//!   (`WEBHOOKS_MAX_CONNECTIONS`): the limit that matters is the process's file descriptors,
//!   whichever port they are spent on. With no slot left, the socket is accepted and closed at
//!   once, so the client fails fast instead of waiting in the kernel's backlog until its own
//!   deadline;
//! - each socket is wrapped in [`GuardedIo`], which fails the connection (hyper then drops it)
//!   when the client's first message (the HTTP/2 preface and SETTINGS frame, or an HTTP/1 request
//!   head) has not arrived within `WEBHOOKS_HANDSHAKE_TIMEOUT`, or when no byte has moved in
//!   either direction for `WEBHOOKS_CONNECTION_IDLE_TIMEOUT`.
//!
//! Idle counts writes as well as reads: an HTTP/1.1 gRPC-Web stream (what a browser uses over
//! `http://`) has no PING, and the client sends nothing while the server streams to it. HTTP/2
//! connections get keepalive PINGs well within the idle timeout, so a quiet but live client (a
//! `WatchDeliveries` stream waiting for updates) keeps its connection, and one that does not
//! answer them is closed by hyper after the keepalive timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::ServerTlsConfig;
use tonic::transport::server::{Connected, TcpIncoming};

/// The connection limits of one instance (see the `WEBHOOKS_MAX_CONNECTIONS` … settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Connections open at once on the gRPC port and the console together.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams (RPCs) one connection may have open.
    pub max_concurrent_streams: u32,
    /// How long a connection may go without a byte read or written; `None` never.
    pub idle_timeout: Option<Duration>,
    /// How long a new connection has to send its first message; `None` forever.
    pub handshake_timeout: Option<Duration>,
    /// How often HTTP/2 connections are PINGed; `None` never.
    pub keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl ConnectionSettings {
    /// Checks that the settings work together: PINGs must come well within the idle timeout,
    /// or quiet but live HTTP/2 clients would be cut.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(interval), Some(idle)) = (self.keepalive_interval, self.idle_timeout)
            && interval * 2 > idle
        {
            return Err(format!(
                "WEBHOOKS_HTTP2_KEEPALIVE_INTERVAL ({interval:?}) must be at most half of \
                 WEBHOOKS_CONNECTION_IDLE_TIMEOUT ({idle:?}), so that live HTTP/2 clients answer \
                 a PING before their connection counts as idle"
            ));
        }
        Ok(())
    }
}

/// Enforces [`ConnectionSettings`] on the listeners of one instance. Clones share the budget of
/// open connections.
#[derive(Debug, Clone)]
pub struct ConnectionGuard {
    settings: ConnectionSettings,
    /// One permit per open connection; a semaphore's `try_acquire` is a compare-and-swap, so
    /// accepting takes no lock.
    slots: Arc<Semaphore>,
    /// When a refusal was last logged (milliseconds since `started`), so a flood of refused
    /// connections logs once every few seconds rather than once each.
    last_refusal_log: Arc<AtomicU64>,
    started: Instant,
}

/// Refusals are logged at most this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl ConnectionGuard {
    /// A guard with `settings.max_connections` free slots.
    pub fn new(settings: ConnectionSettings) -> Self {
        Self {
            settings,
            slots: Arc::new(Semaphore::new(
                settings.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            last_refusal_log: Arc::new(AtomicU64::new(u64::MAX)),
            started: Instant::now(),
        }
    }

    /// Applies the HTTP/2 limits (streams per connection, keepalive PINGs) to a server.
    pub fn configure<L>(&self, server: tonic::transport::Server<L>) -> tonic::transport::Server<L> {
        server
            .max_concurrent_streams(self.settings.max_concurrent_streams)
            .http2_keepalive_interval(self.settings.keepalive_interval)
            .http2_keepalive_timeout(Some(self.settings.keepalive_timeout))
    }

    /// A server for one of the two ports: the HTTP/2 limits applied, HTTP/1.1 accepted too
    /// (gRPC-Web; plain gRPC over HTTP/2 passes the translation untouched), speaking TLS with
    /// `tls` when set. Also whether it encrypts, for [`ConnectionGuard::incoming`].
    pub fn server(
        &self,
        tls: Option<ServerTlsConfig>,
    ) -> anyhow::Result<(tonic::transport::Server, bool)> {
        use anyhow::Context as _;
        let builder = self.configure(tonic::transport::Server::builder().accept_http1(true));
        match tls {
            Some(tls) => {
                let builder = builder
                    .tls_config(tls)
                    .context("invalid TLS certificate or key")?;
                Ok((builder, true))
            }
            None => Ok((builder, false)),
        }
    }

    /// Bounds the TLS handshake by the handshake timeout: under TLS, [`GuardedIo`] sees only
    /// ciphertext and cannot tell when the HTTP handshake is done.
    pub fn tls(&self, tls: ServerTlsConfig) -> ServerTlsConfig {
        match self.settings.handshake_timeout {
            Some(timeout) => tls.timeout(timeout),
            None => tls,
        }
    }

    /// The connections `listener` accepts, each holding a slot and wrapped in [`GuardedIo`];
    /// a connection over the cap is closed as soon as it is accepted. `tls`: the server decrypts
    /// them, so the handshake timeout is left to [`ConnectionGuard::tls`].
    pub fn incoming(
        &self,
        listener: TcpListener,
        tls: bool,
    ) -> impl Stream<Item = io::Result<GuardedIo<TcpStream>>> + use<> {
        let guard = self.clone();
        // Small replies must not wait for Nagle's algorithm (40 ms stalls otherwise).
        TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .filter_map(move |accepted| match accepted {
                Ok(stream) => match guard.slots.clone().try_acquire_owned() {
                    Ok(slot) => Some(Ok(GuardedIo::new(
                        stream,
                        slot,
                        guard.settings.idle_timeout,
                        guard.settings.handshake_timeout.filter(|_| !tls),
                    ))),
                    Err(_) => {
                        guard.refuse(stream);
                        None
                    }
                },
                Err(error) => Some(Err(error)),
            })
    }

    /// Closes a connection accepted over the cap: the client sees the connection closed at
    /// once (UNAVAILABLE in a gRPC client) and may retry elsewhere.
    fn refuse(&self, stream: TcpStream) {
        // A reset rather than an orderly close: the client's first read fails ("connection
        // reset") instead of looking like a server that hung up mid-handshake, and no TIME_WAIT
        // is left behind per refused connection. Zero linger never blocks the closing thread.
        let _ = stream.set_zero_linger();
        drop(stream);
        crate::metrics::record_refused_connection();
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_refusal_log.load(Ordering::Relaxed);
        let due = last == u64::MAX
            || now.saturating_sub(last)
                >= u64::try_from(REFUSAL_LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if due
            && self
                .last_refusal_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = self.settings.max_connections,
                "refusing connections: WEBHOOKS_MAX_CONNECTIONS are open"
            );
        }
    }
}

/// An accepted connection that fails its next read or write once its handshake is late or it
/// has been idle too long (see the module documentation). It holds its slot of the connection
/// budget until it is dropped.
#[derive(Debug)]
pub struct GuardedIo<T> {
    inner: T,
    /// Armed at the nearest deadline; `None` when neither timeout applies.
    timer: Option<Pin<Box<Sleep>>>,
    idle_timeout: Option<Duration>,
    /// When the first message must have arrived by; `None` once it has (or when not checked).
    handshake_deadline: Option<Instant>,
    handshake: Handshake,
    /// The last read or write that moved a byte. Set on every such call: a clock read is cheap
    /// next to the system call, and re-arming the timer is left to when it fires.
    last_activity: Instant,
    _slot: OwnedSemaphorePermit,
}

impl<T> GuardedIo<T> {
    fn new(
        inner: T,
        slot: OwnedSemaphorePermit,
        idle_timeout: Option<Duration>,
        handshake_timeout: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        let handshake_deadline = handshake_timeout.map(|timeout| now + timeout);
        let mut io = Self {
            inner,
            timer: None,
            idle_timeout,
            handshake_deadline,
            handshake: Handshake::default(),
            last_activity: now,
            _slot: slot,
        };
        io.timer = io
            .next_deadline()
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline)));
        io
    }

    /// The nearest of the handshake deadline and the idle deadline.
    fn next_deadline(&self) -> Option<Instant> {
        let idle = self.idle_timeout.map(|idle| self.last_activity + idle);
        match (self.handshake_deadline, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records bytes read, and whether they complete the client's first message.
    fn on_read(&mut self, bytes: &[u8]) {
        self.last_activity = Instant::now();
        if self.handshake_deadline.is_some() && self.handshake.feed(bytes) {
            self.handshake_deadline = None;
        }
    }

    /// Ready with the error that ends the connection once a deadline has passed; registers the
    /// timer otherwise. Called only when the socket itself is pending.
    /// What a write of the inner stream gave: bytes written count as activity, and a write that
    /// waits still fails once a deadline passes.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_deadline(cx).map(Err),
        }
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let Some(timer) = self.timer.as_mut() else {
                return Poll::Pending;
            };
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            if self
                .handshake_deadline
                .is_some_and(|deadline| now >= deadline)
            {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP handshake within WEBHOOKS_HANDSHAKE_TIMEOUT",
                ));
            }
            if self
                .idle_timeout
                .is_some_and(|idle| now >= self.last_activity + idle)
            {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for WEBHOOKS_CONNECTION_IDLE_TIMEOUT",
                ));
            }
            // Activity moved the idle deadline (or the handshake is done): sleep until the next.
            match (self.next_deadline(), self.timer.as_mut()) {
                (Some(deadline), Some(timer)) => timer.as_mut().reset(deadline),
                _ => {
                    self.timer = None;
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.on_read(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.poll_deadline(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for GuardedIo<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// The HTTP/2 connection preface every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/2 frame header: length (3 bytes), type, flags, stream id (4 bytes).
const FRAME_HEADER: usize = 9;
/// The end of an HTTP/1 request head.
const END_OF_HEAD: u32 = u32::from_be_bytes(*b"\r\n\r\n");

/// Follows a connection's first bytes until its first message is complete: the HTTP/2 preface
/// and the frame after it (which must be SETTINGS; hyper refuses anything else), or an HTTP/1
/// request head. Fed only until then, so later traffic is never scanned.
#[derive(Debug, Default)]
struct Handshake {
    /// Bytes fed so far.
    seen: usize,
    /// The first frame's header once its bytes have arrived.
    frame_header: [u8; FRAME_HEADER],
    /// Set when a byte differed from the preface: the client speaks HTTP/1.
    not_http2: bool,
    /// The last four bytes, to find the end of an HTTP/1 head.
    last_four: u32,
}

impl Handshake {
    /// Feeds bytes read; true once the first message is complete.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            let at = self.seen;
            self.seen += 1;
            self.last_four = (self.last_four << 8) | u32::from(byte);
            if self.not_http2 {
                if self.last_four == END_OF_HEAD {
                    return true;
                }
                continue;
            }
            match PREFACE.get(at) {
                Some(&expected) if expected != byte => {
                    self.not_http2 = true;
                    if self.last_four == END_OF_HEAD {
                        return true;
                    }
                }
                Some(_) => {}
                None => {
                    let in_header = at - PREFACE.len();
                    if let Some(slot) = self.frame_header.get_mut(in_header) {
                        *slot = byte;
                    }
                    if self.seen >= self.first_frame_end() {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Where the first HTTP/2 frame ends, once its header is known (`usize::MAX` before).
    fn first_frame_end(&self) -> usize {
        let header_end = PREFACE.len() + FRAME_HEADER;
        if self.seen < header_end {
            return usize::MAX;
        }
        let [a, b, c, ..] = self.frame_header;
        let length = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        header_end + length
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_frame(payload: &[u8]) -> Vec<u8> {
        let length = payload.len();
        let mut frame = vec![
            (length >> 16) as u8,
            (length >> 8) as u8,
            length as u8,
            4,
            0,
        ];
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn the_http2_handshake_ends_with_the_first_settings_frame() {
        let mut handshake = Handshake::default();
        assert!(!handshake.feed(PREFACE), "the preface alone is not enough");
        let frame = settings_frame(&[0, 3, 0, 0, 0, 100]);
        assert!(!handshake.feed(&frame[..10]));
        assert!(handshake.feed(&frame[10..]));

        let mut byte_by_byte = Handshake::default();
        let all: Vec<u8> = PREFACE.iter().copied().chain(settings_frame(&[])).collect();
        let done: Vec<bool> = all.iter().map(|b| byte_by_byte.feed(&[*b])).collect();
        assert_eq!(done.iter().position(|d| *d), Some(all.len() - 1));
    }

    #[test]
    fn the_http1_handshake_ends_with_the_request_head() {
        let mut handshake = Handshake::default();
        assert!(!handshake.feed(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(handshake.feed(b"\r\n"));
        let mut prefix_of_preface = Handshake::default();
        assert!(!prefix_of_preface.feed(b"PRI / HTTP/1.1\r\n"));
        assert!(prefix_of_preface.feed(b"\r\n"));
    }

    #[test]
    fn keepalive_must_come_well_within_the_idle_timeout() {
        let mut settings = ConnectionSettings {
            max_connections: 10,
            max_concurrent_streams: 10,
            idle_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Some(Duration::from_secs(10)),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
        };
        assert!(settings.validate().is_ok());
        settings.keepalive_interval = Some(Duration::from_secs(31));
        assert!(settings.validate().is_err());
        settings.keepalive_interval = None;
        assert!(settings.validate().is_ok());
    }
}
