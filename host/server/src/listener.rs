//! The accept loop: one hyper connection per TCP connection, with the limits of `[http]`.
//!
//! - **Connection cap** (`max_connections`): a semaphore permit per open socket, held until
//!   the socket is closed (an upgraded WebSocket keeps its permit). Over the cap a connection
//!   is answered a minimal `503 TOO_MANY_CONNECTIONS` envelope and closed.
//! - **Header read timeout** (`header_read_timeout_secs`): from the first byte of a request
//!   to the end of its headers. Enforced here rather than by hyper's own timer, which also
//!   runs while a keep-alive connection waits for its next request and so would make the
//!   idle timeout meaningless.
//! - **Idle timeout** (`idle_timeout_secs`): a connection with no request in progress (none
//!   begun since it opened or since the last response was sent) is closed after this long.
//!   A request in progress, a long model call or an SSE stream included, is never cut.
//! - **Body read timeout** (`body_read_timeout_secs`): a request body that sends nothing for
//!   this long while a handler waits for it fails, which ends the request and the connection.
//!
//! - **Request head check** (HTTP/1): before hyper parses a head, the bytes are checked for
//!   the refusals hyper would answer with an empty body: a request line over
//!   [`MAX_REQUEST_LINE`] is `414 URI_TOO_LONG`, a head over [`MAX_HEAD`] bytes or
//!   [`MAX_HEADERS`] fields is `431 HEADERS_TOO_LARGE`, a malformed `Content-Length` is
//!   `400 BAD_REQUEST`, each an envelope on a closed connection. Other malformed heads (a bad
//!   method, header name or version) still get hyper's empty `400`.
//!
//! A closed connection lingers: the server's side is shut down (the client sees the answer
//! and the end of the stream) and what the client still sends is read and dropped for a
//! short while, so an early answer (`413` before the body was read) is not lost to a reset.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures::FutureExt;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpLimits;

/// How long a closed connection's late input is still read and dropped.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and dropped while lingering.
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Refused connections being answered at once; past this they are closed without a word.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused connection gets to take its `503`.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// File descriptors kept for everything but client connections (database, plugins, logs,
/// refusals) when `max_connections` has to be lowered to fit the open-files limit.
const RESERVED_FDS: u64 = 128;
/// Longest request line (method, target, version) read; longer is `414 URI_TOO_LONG`.
/// hyper's own limit on the target is 65 534 bytes, so every target it would refuse is
/// refused here first.
const MAX_REQUEST_LINE: usize = 64 << 10;
/// Largest request head read; larger is `431 HEADERS_TOO_LARGE` (below hyper's read buffer,
/// about 400 KiB, whose overflow it answers with an empty `431`).
const MAX_HEAD: usize = 256 << 10;
/// Most header fields of a request (hyper's own limit, answered with an empty `431`).
const MAX_HEADERS: usize = 100;
/// A repeated warning (refusals, accept errors) is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Raise the soft open-files limit to the hard one (every connection is a file descriptor)
/// and log both. Returns the soft limit in force, if it can be read.
pub fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("cannot read the open-files limit: {e}");
            return None;
        }
    };
    match rlimit::increase_nofile_limit(hard) {
        Ok(now) if now > soft => {
            tracing::info!(from = soft, to = now, hard, "raised the open-files limit");
            Some(now)
        }
        Ok(now) => {
            tracing::info!(soft = now, hard, "open-files limit");
            Some(now)
        }
        Err(e) => {
            tracing::warn!(soft, hard, "cannot raise the open-files limit: {e}");
            Some(soft)
        }
    }
}

/// `max_connections`, lowered when the open-files limit could not hold that many sockets.
fn connection_cap(configured: usize) -> usize {
    let Ok(soft) = rlimit::Resource::NOFILE.get_soft() else {
        return configured;
    };
    let fit = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    if configured > fit {
        tracing::warn!(
            max_connections = configured,
            open_files_limit = soft,
            using = fit,
            "[http] max_connections does not fit the open-files limit; raise the limit \
             (ulimit -n / LimitNOFILE) or lower max_connections"
        );
        return fit;
    }
    configured
}

/// Serve `router` on `listener` until `shutdown` completes, then stop accepting, let every
/// connection finish its requests (idle ones close at once) and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    let cap = connection_cap(limits.max_connections);
    let connections = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Our watchdog times headers from their first byte; see the module docs.
        .header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        // As axum::serve: WebSockets over HTTP/2 need the CONNECT protocol.
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    let limits = Arc::new(limits);
    let mut refused_warning = Throttled::default();
    let mut accept_warning = Throttled::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if !is_connection_error(&e) {
                        accept_warning.warn(|missed| {
                            tracing::warn!(missed, "accept error: {e}");
                        });
                        // Out of file descriptors: give closing connections time to free some.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refused_warning.warn(|missed| {
                tracing::warn!(
                    %peer,
                    max_connections = cap,
                    refused_since_last_warning = missed,
                    "refusing a connection: [http] max_connections are open"
                );
            });
            refuse(stream, &refusals, cap);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            // Small writes (SSE frames, WebSocket messages) must not wait for Nagle.
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        tokio::spawn(connection(
            stream,
            peer,
            permit,
            router.clone(),
            builder.clone(),
            limits.clone(),
            signal_tx.clone(),
            close_rx.clone(),
        ));
    }
    drop(close_rx);
    drop(listener);
    tracing::debug!(
        open = cap - connections.available_permits(),
        "waiting for open connections to finish"
    );
    close_tx.closed().await;
}

/// Errors of one connection that was already gone when accepted: nothing to wait for.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A warning logged at most every [`WARN_EVERY`], with the count of those skipped.
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    missed: u64,
}

impl Throttled {
    fn warn(&mut self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.missed += 1;
            return;
        }
        log(self.missed);
        self.last = Some(now);
        self.missed = 0;
    }
}

/// Answer a connection over the cap with `503 TOO_MANY_CONNECTIONS` and close it.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, cap: usize) {
    let Ok(slot) = refusals.clone().try_acquire_owned() else {
        return;
    };
    let answer = envelope_answer(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "TOO_MANY_CONNECTIONS",
        "连接数已达上限",
        &format!(
            "the server has its [http] max_connections ({cap}) connections open; retry shortly"
        ),
        "retry-after: 1\r\n",
    );
    tokio::spawn(async move {
        let mut stream = stream;
        let written = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
        if matches!(written, Ok(Ok(()))) {
            drain(&mut stream, Instant::now() + REFUSAL_TIME).await;
        }
        drop(slot);
    });
}

/// A complete HTTP/1.1 answer carrying an error envelope, closing the connection.
/// `extra_headers` are whole lines, each ending in CRLF.
fn envelope_answer(
    status: axum::http::StatusCode,
    code: &str,
    message: &str,
    details: &str,
    extra_headers: &str,
) -> String {
    let body = serde_json::json!({
        "success": false,
        "error": { "code": code, "message": message, "details": details },
        "timestamp": crate::api::envelope::timestamp(),
    })
    .to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\n{extra_headers}connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
}

/// A request head refused before hyper parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadRefusal {
    UriTooLong,
    HeadTooLarge,
    BadContentLength,
}

impl HeadRefusal {
    fn answer(self) -> String {
        use axum::http::StatusCode;
        let (status, message, details) = match self {
            HeadRefusal::UriTooLong => (
                StatusCode::URI_TOO_LONG,
                "请求地址过长",
                format!("the request line is longer than {MAX_REQUEST_LINE} bytes"),
            ),
            HeadRefusal::HeadTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "请求头过大",
                format!(
                    "the request head is larger than {MAX_HEAD} bytes or has more than \
                     {MAX_HEADERS} header fields"
                ),
            ),
            HeadRefusal::BadContentLength => (
                StatusCode::BAD_REQUEST,
                "无效的请求",
                "Content-Length must be one non-negative integer".to_string(),
            ),
        };
        let code = crate::error::status_code(status);
        envelope_answer(status, code, message, &details, "")
    }
}

/// The bytes of one HTTP/1 request head as they arrive, checked for what hyper would refuse
/// with an empty body.
#[derive(Default)]
struct HeadCheck {
    buf: Vec<u8>,
    /// Whether the head being read is still checked (not complete, not given up on).
    active: bool,
}

impl HeadCheck {
    /// A new request head begins with the next bytes.
    fn begin(&mut self) {
        self.buf.clear();
        self.active = true;
    }

    /// Add bytes of the head; the refusal, once the head is known to be refused.
    fn feed(&mut self, bytes: &[u8]) -> Option<HeadRefusal> {
        if !self.active {
            return None;
        }
        let room = (MAX_HEAD + 1).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let verdict = check_head(&self.buf);
        match verdict {
            HeadVerdict::Incomplete => None,
            HeadVerdict::Fine | HeadVerdict::NotOurs => {
                self.active = false;
                self.buf = Vec::new();
                None
            }
            HeadVerdict::Refused(refusal) => {
                self.active = false;
                self.buf = Vec::new();
                Some(refusal)
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum HeadVerdict {
    /// More bytes are needed.
    Incomplete,
    /// A complete head with nothing to refuse.
    Fine,
    /// Not the start of a request line: left to hyper.
    NotOurs,
    Refused(HeadRefusal),
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Check the (partial) head in `buf`.
fn check_head(buf: &[u8]) -> HeadVerdict {
    // Empty lines before a request line are ignored (RFC 9112 §2.2), as hyper does.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let head = &buf[start..];
    // A method token, then a space: else this is not a head we know how to read.
    match head.iter().position(|&b| !is_tchar(b)) {
        Some(0) => return HeadVerdict::NotOurs,
        Some(i) if head[i] != b' ' => return HeadVerdict::NotOurs,
        None if head.len() > 32 => return HeadVerdict::NotOurs,
        None => return HeadVerdict::Incomplete,
        Some(_) => {}
    }
    let Some(line_end) = head.iter().position(|&b| b == b'\n') else {
        return if head.len() > MAX_REQUEST_LINE {
            HeadVerdict::Refused(HeadRefusal::UriTooLong)
        } else {
            HeadVerdict::Incomplete
        };
    };
    if line_end > MAX_REQUEST_LINE {
        return HeadVerdict::Refused(HeadRefusal::UriTooLong);
    }
    let mut fields = 0;
    let mut lengths: Vec<&[u8]> = Vec::new();
    let mut at = line_end + 1;
    loop {
        let Some(len) = head[at..].iter().position(|&b| b == b'\n') else {
            return if head.len() > MAX_HEAD {
                HeadVerdict::Refused(HeadRefusal::HeadTooLarge)
            } else {
                HeadVerdict::Incomplete
            };
        };
        let line = head[at..at + len]
            .strip_suffix(b"\r")
            .unwrap_or(&head[at..at + len]);
        at += len + 1;
        if line.is_empty() {
            break;
        }
        fields += 1;
        if fields > MAX_HEADERS || at > MAX_HEAD {
            return HeadVerdict::Refused(HeadRefusal::HeadTooLarge);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].eq_ignore_ascii_case(b"content-length")
        {
            lengths.push(&line[colon + 1..]);
        }
    }
    if at > MAX_HEAD {
        return HeadVerdict::Refused(HeadRefusal::HeadTooLarge);
    }
    if !content_lengths_agree(&lengths) {
        return HeadVerdict::Refused(HeadRefusal::BadContentLength);
    }
    HeadVerdict::Fine
}

/// Whether every `Content-Length` value (comma lists included) is the same run of digits,
/// hyper's rule.
fn content_lengths_agree(values: &[&[u8]]) -> bool {
    let mut seen: Option<u64> = None;
    for value in values {
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return false;
            }
            let Some(n) = std::str::from_utf8(item).ok().and_then(|t| t.parse().ok()) else {
                return false;
            };
            if seen.is_some_and(|s| s != n) {
                return false;
            }
            seen = Some(n);
        }
    }
    true
}

/// Read and drop what the client still sends until it closes, `deadline`, or
/// [`LINGER_MAX_BYTES`].
async fn drain(stream: &mut TcpStream, deadline: Instant) {
    let mut buf = [0u8; 4096];
    let mut read = 0;
    while read < LINGER_MAX_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n,
            _ => return,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<HttpLimits>,
    signal_tx: watch::Sender<()>,
    close_rx: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(TrackedIo {
        stream: Some(stream),
        activity: activity.clone(),
        permit: Some(permit),
        head: HeadCheck::default(),
        refused: None,
    });
    let body_timeout = limits.body_read_timeout;
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = Busy::begin(activity.clone());
            req.extensions_mut().insert(ConnectInfo(peer));
            let req = req.map(|body| Body::new(ReadTimeoutBody::new(body, body_timeout)));
            let response = router.clone().oneshot(req);
            async move {
                let response = match response.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // The request is in progress until its response body is dropped (sent).
                Ok::<_, Infallible>(response.map(|body| Body::new(WithGuard { body, _busy: busy })))
            }
        })
    };
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut watchdog = pin!(activity.watchdog(limits.header_read_timeout, limits.idle_timeout));
    let mut signal = pin!(signal_tx.closed().fuse());
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                break;
            }
            reason = &mut watchdog => {
                tracing::debug!(%peer, "closing the connection: {reason}");
                break;
            }
            _ = &mut signal => conn.as_mut().graceful_shutdown(),
        }
    }
    drop(close_rx);
}

/// What one connection is doing, for its watchdog. Times are nanoseconds since `origin`.
struct Activity {
    origin: Instant,
    /// Requests whose response has not been sent yet.
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened).
    idle_since: AtomicU64,
    /// When the first byte of the next request arrived; 0: none yet.
    head_started: AtomicU64,
    /// HTTP/2 (prior knowledge): frames between streams are not requests.
    http2: AtomicBool,
    classified: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            classified: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.origin + Duration::from_nanos(nanos)
    }

    /// Bytes arrived from the client.
    fn on_read(&self, bytes: &[u8]) {
        if !self.classified.swap(true, Ordering::SeqCst) {
            self.http2
                .store(bytes.starts_with(b"PRI * HTTP/2.0"), Ordering::SeqCst);
        }
        if self.in_flight.load(Ordering::SeqCst) == 0
            && !self.http2.load(Ordering::SeqCst)
            && self.head_started.load(Ordering::SeqCst) == 0
        {
            self.head_started.store(self.now(), Ordering::SeqCst);
        }
    }

    /// Resolves with the reason once the connection has to be closed. No wake-ups are
    /// needed: a request that begins later than now has its header deadline at least
    /// `header_timeout` away, so checking that often is never late (and costs one timer per
    /// connection, nothing per request).
    async fn watchdog(&self, header_timeout: Duration, idle_timeout: Duration) -> &'static str {
        let sleep = tokio::time::sleep(header_timeout);
        let mut sleep = pin!(sleep);
        loop {
            let now = Instant::now();
            let mut wake = now + header_timeout;
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                let (deadline, reason) = match self.head_started.load(Ordering::SeqCst) {
                    0 => (
                        self.at(self.idle_since.load(Ordering::SeqCst)) + idle_timeout,
                        "idle timeout ([http] idle_timeout_secs)",
                    ),
                    started => (
                        self.at(started) + header_timeout,
                        "request headers not received in time ([http] header_read_timeout_secs)",
                    ),
                };
                if deadline <= now {
                    return reason;
                }
                wake = wake.min(deadline);
            }
            sleep.as_mut().reset(wake);
            sleep.as_mut().await;
        }
    }
}

/// A request in progress on its connection (dropped with its response body).
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.head_started.store(0, Ordering::SeqCst);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::SeqCst);
        activity.head_started.store(0, Ordering::SeqCst);
        activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct WithGuard {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for WithGuard {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails when no data arrives for `timeout` while it is being read.
struct ReadTimeoutBody {
    body: Incoming,
    timeout: Duration,
    /// Made on the first wait (a body read in one go never needs it).
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` times the current wait.
    armed: bool,
}

impl ReadTimeoutBody {
    fn new(body: Incoming, timeout: Duration) -> ReadTimeoutBody {
        ReadTimeoutBody {
            body,
            timeout,
            sleep: None,
            armed: false,
        }
    }
}

/// The error a stalled request body ends with.
#[derive(Debug, thiserror::Error)]
#[error("no request body data for {0} s ([http] body_read_timeout_secs)")]
struct BodyReadTimeout(u64);

impl http_body::Body for ReadTimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.armed {
                    this.armed = true;
                    sleep.as_mut().reset(deadline);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout.as_secs())))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket: notes arriving bytes for the watchdog, holds the connection's
/// permit, and lingers when dropped.
struct TrackedIo {
    /// `Some` until dropped.
    stream: Option<TcpStream>,
    activity: Arc<Activity>,
    permit: Option<OwnedSemaphorePermit>,
    /// The HTTP/1 request head being read.
    head: HeadCheck,
    /// A head refused by [`HeadCheck`]: hyper reads the end of the stream from then on and
    /// the answer is written when the socket is dropped.
    refused: Option<HeadRefusal>,
}

fn gone() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused.is_some() {
            // The end of the stream: hyper stops without answering a partial head.
            return Poll::Ready(Ok(()));
        }
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(Err(gone()));
        };
        let before = buf.filled().len();
        let result = Pin::new(stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let activity = &this.activity;
            let new_head = activity.in_flight.load(Ordering::SeqCst) == 0
                && activity.head_started.load(Ordering::SeqCst) == 0;
            activity.on_read(&buf.filled()[before..]);
            if activity.http2.load(Ordering::SeqCst) {
                return result;
            }
            if new_head {
                this.head.begin();
            }
            if let Some(refusal) = this.head.feed(&buf.filled()[before..]) {
                tracing::debug!(?refusal, "refused a request head");
                this.refused = Some(refusal);
                buf.set_filled(before);
            }
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_write(cx, buf),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_flush(cx),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream.as_mut() {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Err(gone())),
        }
    }
}

impl Drop for TrackedIo {
    fn drop(&mut self) {
        let (Some(mut stream), Ok(runtime)) =
            (self.stream.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let permit = self.permit.take();
        let answer = self.refused.map(HeadRefusal::answer);
        runtime.spawn(async move {
            if let Some(answer) = answer {
                let _ = tokio::time::timeout(LINGER, stream.write_all(answer.as_bytes())).await;
            }
            let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
            drain(&mut stream, Instant::now() + LINGER).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{HeadCheck, HeadRefusal, HeadVerdict, MAX_HEAD, MAX_HEADERS, check_head};

    fn refused(head: &[u8]) -> HeadVerdict {
        check_head(head)
    }

    #[test]
    fn ordinary_heads_pass() {
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"\r\nPOST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n{}",
            b"POST /x HTTP/1.1\r\ncontent-length: 3, 3\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
        ] {
            assert_eq!(check_head(head), HeadVerdict::Fine, "{head:?}");
        }
        assert_eq!(
            check_head(b"GET / HTTP/1.1\r\nHost"),
            HeadVerdict::Incomplete
        );
        assert_eq!(check_head(b"GE"), HeadVerdict::Incomplete);
        // Body bytes of an earlier request, TLS, HTTP/2 frames: left to hyper.
        assert_eq!(check_head(b"{\"a\":1}"), HeadVerdict::NotOurs);
        assert_eq!(check_head(b"Host: a\r\n\r\n"), HeadVerdict::NotOurs);
    }

    #[test]
    fn what_hyper_refuses_emptily_is_refused_here() {
        for value in ["-1", "", "1x", "2, 3", "+5"] {
            let head = format!("POST / HTTP/1.1\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(
                refused(head.as_bytes()),
                HeadVerdict::Refused(HeadRefusal::BadContentLength),
                "{value:?}"
            );
        }
        let head = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            refused(head),
            HeadVerdict::Refused(HeadRefusal::BadContentLength)
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(70_000));
        assert_eq!(
            refused(long.as_bytes()),
            HeadVerdict::Refused(HeadRefusal::UriTooLong)
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            refused(many.as_bytes()),
            HeadVerdict::Refused(HeadRefusal::HeadTooLarge)
        );
    }

    #[test]
    fn a_head_is_checked_across_reads_and_capped() {
        let mut check = HeadCheck::default();
        check.begin();
        assert_eq!(check.feed(b"GET / HTTP/1.1\r\nX-Big: "), None);
        let chunk = vec![b'a'; 8192];
        let mut verdict = None;
        for _ in 0..(MAX_HEAD / chunk.len() + 2) {
            verdict = check.feed(&chunk);
            if verdict.is_some() {
                break;
            }
        }
        assert_eq!(verdict, Some(HeadRefusal::HeadTooLarge));
        assert!(check.buf.len() <= MAX_HEAD + 1);
        // Once decided, later bytes (a body) are not looked at until the next head.
        check.begin();
        assert_eq!(check.feed(b"GET / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(check.feed(&chunk), None);
    }
}
