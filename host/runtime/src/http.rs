//! The `http` host import: outbound requests behind the allow-list, with secret substitution.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use wasmtime::component::Resource;

use crate::bindings::http::{self, Error, Method, Request, Response, ResponseHead};
use crate::manifest::Origin;
use crate::sandbox::HostState;
use crate::settings::Effective;

/// Slack kept back from the call's budget so an HTTP timeout surfaces as `timeout` before the
/// epoch deadline interrupts the guest.
const DEADLINE_SLACK: Duration = Duration::from_millis(25);

const PLACEHOLDER_OPEN: &str = "{{secret:";
const PLACEHOLDER_CLOSE: &str = "}}";

/// The shared outbound client: no redirects (an allowed host must not bounce us elsewhere),
/// no proxy from the environment (it could reroute plugin traffic), and no connection to the
/// server's own listen addresses (see [`refuse_server_addresses`]).
pub fn build_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connector_layer(RefuseServerAddresses)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("sceneintruder/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Where the server itself listens. Guest mode makes the server's API an administrator's to
/// any caller on this machine, so a plugin must never reach it, whatever its manifest
/// requests or the operator grants.
static SERVER_ADDRESSES: RwLock<Vec<SocketAddr>> = RwLock::new(Vec::new());

/// Tell the runtime where the server listens, once it is bound (a later call replaces the
/// list). From then on every outbound plugin connection is checked, after the name is
/// resolved and before a byte is sent, against these addresses: one that ends at the server
/// fails with `not-allowed`, however the plugin spelled the host (`localhost`, a name that
/// resolves to the server, an IPv4-mapped address). An unspecified address (`0.0.0.0:PORT`,
/// `[::]:PORT`) stands for every address of this machine on that port. Process-wide, so it
/// holds for every runtime the process builds (a reload included). Connections are checked
/// when they are opened: call this before plugins make requests (a pooled connection opened
/// earlier is not checked again).
pub fn refuse_server_addresses(addrs: &[SocketAddr]) {
    let mut list = match SERVER_ADDRESSES.write() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    *list = addrs.to_vec();
}

/// The server address that a connection from `local` to `remote` ends at, if any.
fn server_address_hit(remote: SocketAddr, local: Option<SocketAddr>) -> Option<SocketAddr> {
    let list = match SERVER_ADDRESSES.read() {
        Ok(list) => list,
        Err(poisoned) => poisoned.into_inner(),
    };
    let remote_ip = remote.ip().to_canonical();
    list.iter()
        .find(|server| {
            server.port() == remote.port()
                && (remote_ip.is_unspecified()
                    || if server.ip().is_unspecified() {
                        is_local_address(remote_ip, local)
                    } else {
                        server.ip().to_canonical() == remote_ip
                    })
        })
        .copied()
}

/// Whether `ip` is an address of this machine: loopback, the connection's own source address,
/// or one a socket can be bound to.
fn is_local_address(ip: IpAddr, local: Option<SocketAddr>) -> bool {
    ip.is_loopback()
        || local.is_some_and(|l| l.ip().to_canonical() == ip)
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A plugin connection that ended at the server's own listen address.
#[derive(Debug)]
struct ServerAddressRefused(SocketAddr);

impl std::fmt::Display for ServerAddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is this server's own address: plugins may never call the server they run in",
            self.0
        )
    }
}

impl std::error::Error for ServerAddressRefused {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connector layer that checks where each new connection really goes (the peer address
/// after name resolution), before any request is written to it.
#[derive(Debug, Clone, Copy)]
struct RefuseServerAddresses;

impl<S> tower::Layer<S> for RefuseServerAddresses {
    type Service = ServerAddressCheck<S>;
    fn layer(&self, inner: S) -> ServerAddressCheck<S> {
        ServerAddressCheck(inner)
    }
}

#[derive(Debug, Clone)]
struct ServerAddressCheck<S>(S);

impl<S, R> tower::Service<R> for ServerAddressCheck<S>
where
    S: tower::Service<R, Error = BoxError>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.0.call(request);
        Box::pin(async move {
            let conn = connecting.await?;
            let mut extras = hyper::http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            let info = extras.get::<HttpInfo>();
            let hit = match info {
                Some(info) => server_address_hit(info.remote_addr(), Some(info.local_addr())),
                // No peer address to check: refuse while there are addresses to protect.
                None => match SERVER_ADDRESSES.read() {
                    Ok(list) => list.first().copied(),
                    Err(poisoned) => poisoned.into_inner().first().copied(),
                },
            };
            if let Some(server) = hit {
                tracing::warn!(%server, "refused a plugin connection to this server's own address");
                return Err(Box::new(ServerAddressRefused(server)) as BoxError);
            }
            Ok(conn)
        })
    }
}

/// The refusal of a connection to the server's own address, if that is what `e` is.
fn server_address_refusal(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(refused) = err.downcast_ref::<ServerAddressRefused>() {
            return Some(refused.to_string());
        }
        cause = err.source();
    }
    None
}

/// Secret values substituted lately (most recent last), so that text a plugin chooses and the
/// host shows (error details) can be redacted like a vendor's echo. Bounded: a caller's own
/// keys come and go.
static RECENT_SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
const RECENT_SECRETS_KEPT: usize = 64;

fn remember_substituted(value: &str) {
    let mut recent = match RECENT_SECRETS.lock() {
        Ok(recent) => recent,
        Err(poisoned) => poisoned.into_inner(),
    };
    recent.retain(|v| v != value);
    recent.push(value.to_string());
    let excess = recent.len().saturating_sub(RECENT_SECRETS_KEPT);
    recent.drain(..excess);
}

/// The start of `text` (enough of it to show `keep_chars` characters) with every secret
/// substituted lately replaced by `[redacted]`; a secret that begins in the part shown is
/// replaced whole, never cut in two.
pub(crate) fn redact_substituted(text: &str, keep_chars: usize) -> String {
    let recent = match RECENT_SECRETS.lock() {
        Ok(recent) => recent.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let longest = recent.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let head = match text.char_indices().nth(keep_chars.saturating_add(longest)) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    if recent.is_empty() {
        return head.to_string();
    }
    String::from_utf8_lossy(&Redactor::new(&recent).redact_all(head.as_bytes())).into_owned()
}

/// A response body being read by the guest piece by piece.
pub struct BodyStream {
    response: reqwest::Response,
    pending: Bytes,
    read_total: u64,
    /// Takes every secret substituted so far out of the body before the guest sees it.
    redactor: Redactor,
    finished: bool,
    /// The body passed `max_response_bytes`: every later read fails without reading on.
    too_large: bool,
}

/// Headers a secret may be substituted into: the ones vendors read credentials from.
const AUTH_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// Headers a plugin may not set at all: routing and connection management are the host's.
const REFUSED_HEADERS: [&str; 10] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "forwarded",
];

/// Whether a plugin may not set header `name` (lower case): routing, connection management
/// and proxying are the host's. On a CDN-fronted vendor `Host` (or a forwarding header) picks
/// the tenant that receives the bearer key.
fn refused_header(name: &str) -> bool {
    REFUSED_HEADERS.contains(&name)
        || name.starts_with("proxy-")
        || name.starts_with("x-forwarded-")
        || name == "x-real-ip"
        || name == "via"
}

/// What replaces a secret that a vendor echoes back.
const REDACTED: &[u8] = b"[redacted]";

/// Replace every `{{secret:NAME}}` in `text` with the secret's value, if the secret may be
/// sent to `origin`; every substituted value is remembered in `used` (for redaction).
fn substitute(
    text: &str,
    eff: &Effective,
    origin: &Origin,
    used: &mut Vec<String>,
) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(PLACEHOLDER_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PLACEHOLDER_OPEN.len()..];
        let end = after.find(PLACEHOLDER_CLOSE).ok_or_else(|| {
            Error::InvalidRequest("unterminated {{secret:...}} placeholder".into())
        })?;
        let name = &after[..end];
        if !eff.secret_names.contains(name) {
            return Err(Error::InvalidRequest(format!(
                "placeholder {name:?} names no key of this plugin"
            )));
        }
        let secret = eff
            .secrets
            .get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("no value is configured for {name:?}")))?;
        if !secret.origins.contains(origin) {
            tracing::warn!(plugin = %eff.plugin, secret = name, %origin, "refused to send a secret to an origin it does not belong to");
            // Error texts avoid the words the envelope's sanitiser hides, so callers see why.
            return Err(Error::NotAllowed(format!(
                "the key configured for {} is not sent to {origin}",
                join(secret.origins.iter())
            )));
        }
        let value = secret.value.expose();
        if !used.iter().any(|u| u == value) {
            used.push(value.to_string());
            remember_substituted(value);
        }
        out.push_str(value);
        rest = &after[end + PLACEHOLDER_CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    let list: Vec<String> = items.map(|i| i.to_string()).collect();
    if list.is_empty() {
        "no origin".to_string()
    } else {
        list.join(", ")
    }
}

/// Check the allow-list and build the outgoing request (secrets substituted last).
fn prepare(
    state: &mut HostState,
    req: Request,
) -> Result<(reqwest::RequestBuilder, Duration), Error> {
    let env = &mut state.call;
    env.requests += 1;
    if env.requests > env.limits.max_requests_per_call {
        return Err(Error::TooManyRequests(env.limits.max_requests_per_call));
    }
    let mut url =
        url::Url::parse(&req.url).map_err(|e| Error::InvalidRequest(format!("bad URL: {e}")))?;
    let origin = Origin::from_parsed(&url).map_err(Error::InvalidRequest)?;
    if !env.settings.allowed.contains(&origin) {
        tracing::warn!(plugin = %env.settings.plugin, %origin, "plugin request to a host it was not granted");
        return Err(Error::NotAllowed(format!(
            "{origin} is not granted to plugin {} (allowed: {})",
            env.settings.plugin,
            join(env.settings.allowed.iter())
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidRequest(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let settings = env.settings.clone();
    let used = &mut env.substituted;
    if url.query().is_some_and(|q| q.contains("secret:")) {
        let pairs = url
            .query_pairs()
            .map(|(k, v)| {
                let value = if v.contains(PLACEHOLDER_OPEN) {
                    if !settings.secret_query.contains(k.as_ref()) {
                        return Err(Error::InvalidRequest(format!(
                            "query parameter {k:?} may not carry a key: the manifest does not \
                             list it in [network]"
                        )));
                    }
                    substitute(&v, &settings, &origin, used)?
                } else {
                    v.into_owned()
                };
                Ok((k.into_owned(), value))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }

    let remaining = env.deadline.saturating_duration_since(Instant::now());
    let budget = remaining.saturating_sub(DEADLINE_SLACK);
    if budget.is_zero() {
        return Err(Error::Timeout);
    }
    let timeout = match req.timeout_ms {
        Some(ms) => budget.min(Duration::from_millis(u64::from(ms))),
        None => budget,
    };

    let method = match req.method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("bad header name {name:?}")))?;
        if refused_header(name.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "header {name} is set by the host, not by plugins"
            )));
        }
        let value = if value.contains(PLACEHOLDER_OPEN) {
            if !AUTH_HEADERS.contains(&name.as_str()) {
                return Err(Error::InvalidRequest(format!(
                    "keys go only into credential headers ({}), not into {name}",
                    AUTH_HEADERS.join(", ")
                )));
            }
            substitute(&value, &settings, &origin, used)?
        } else {
            value
        };
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| Error::InvalidRequest(format!("bad value for header {name}")))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    let mut builder = env.client.request(method, url).headers(headers);
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    Ok((builder, timeout))
}

fn transport_error(e: reqwest::Error) -> Error {
    if let Some(refusal) = server_address_refusal(&e) {
        return Error::NotAllowed(refusal);
    }
    if e.is_timeout() {
        Error::Timeout
    } else {
        // Never echo the URL: its query may carry a substituted secret.
        Error::Transport(e.without_url().to_string())
    }
}

fn head_of(response: &reqwest::Response, redactor: &Redactor) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = redactor.redact_all(v.as_bytes());
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect();
    (response.status().as_u16(), headers)
}

/// Send a request whose whole exchange, body included, must finish within its timeout
/// (reqwest enforces it while the body is read).
async fn send(state: &mut HostState, req: Request) -> Result<reqwest::Response, Error> {
    let (builder, timeout) = prepare(state, req)?;
    builder
        .timeout(timeout)
        .send()
        .await
        .map_err(transport_error)
}

impl http::Host for HostState {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let cap = self.call.limits.max_response_bytes as u64;
        let result = async {
            let mut response = send(self, req).await?;
            let redactor = Redactor::new(&self.call.substituted);
            let (status, headers) = head_of(&response, &redactor);
            if response.content_length().is_some_and(|len| len > cap) {
                return Err(Error::TooLarge(cap));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() as u64 + chunk.len() as u64 > cap {
                    return Err(Error::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body: redactor.redact_all(&body),
            })
        }
        .await;
        Ok(result)
    }

    async fn fetch_streaming(
        &mut self,
        req: Request,
    ) -> wasmtime::Result<Result<(ResponseHead, Resource<BodyStream>), Error>> {
        // Only the head is bounded here: the body is read across several guest calls, each
        // bounded by its own deadline in `read`.
        let sent = match prepare(self, req) {
            Ok((builder, timeout)) => tokio::time::timeout(timeout, builder.send()).await,
            Err(e) => return Ok(Err(e)),
        };
        let response = match sent {
            Err(_) => return Ok(Err(Error::Timeout)),
            Ok(Err(e)) => return Ok(Err(transport_error(e))),
            Ok(Ok(response)) => response,
        };
        // A body announced larger than the cap is refused before a byte of it is read.
        let cap = self.call.limits.max_response_bytes as u64;
        if response.content_length().is_some_and(|len| len > cap) {
            return Ok(Err(Error::TooLarge(cap)));
        }
        let redactor = Redactor::new(&self.call.substituted);
        let (status, headers) = head_of(&response, &redactor);
        let stream = self.table.push(BodyStream {
            response,
            pending: Bytes::new(),
            read_total: 0,
            redactor,
            finished: false,
            too_large: false,
        })?;
        Ok(Ok((ResponseHead { status, headers }, stream)))
    }
}

impl http::HostBodyStream for HostState {
    async fn read(
        &mut self,
        stream: Resource<BodyStream>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let cap = self.call.limits.max_response_bytes as u64;
        // One deadline for the whole read, however many chunks redaction makes it wait for.
        let deadline = tokio::time::Instant::from_std(self.call.deadline);
        let body = self.table.get_mut(&stream)?;
        // Redaction may hold back the start of a secret until the next chunk shows whether
        // it is one; keep reading until there is something to hand over or the body ends.
        while body.pending.is_empty() {
            if body.too_large {
                return Ok(Err(Error::TooLarge(cap)));
            }
            if body.finished {
                return Ok(Ok(None));
            }
            match tokio::time::timeout_at(deadline, body.response.chunk()).await {
                Err(_) => return Ok(Err(Error::Timeout)),
                Ok(Err(e)) => return Ok(Err(transport_error(e))),
                Ok(Ok(None)) => {
                    body.finished = true;
                    body.pending = Bytes::from(body.redactor.finish());
                }
                Ok(Ok(Some(chunk))) => {
                    body.read_total += chunk.len() as u64;
                    if body.read_total > cap {
                        body.too_large = true;
                        return Ok(Err(Error::TooLarge(cap)));
                    }
                    body.pending = Bytes::from(body.redactor.push(&chunk));
                }
            }
        }
        let take = body.pending.len().min(max_bytes.max(1) as usize);
        Ok(Ok(Some(body.pending.split_to(take).to_vec())))
    }

    async fn drop(&mut self, stream: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

/// Replaces secrets in what comes back from a vendor, also across chunk boundaries: a vendor
/// that echoes the request must not put the key into plugin memory.
pub(crate) struct Redactor {
    needles: Vec<Vec<u8>>,
    /// The tail of the last chunk that may be the start of a secret.
    carry: Vec<u8>,
}

impl Redactor {
    /// Redacts each value as sent and as it appears percent-encoded in a URL.
    pub(crate) fn new(secrets: &[String]) -> Redactor {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            for form in [secret.as_bytes().to_vec(), encoded.into_bytes()] {
                if !needles.contains(&form) {
                    needles.push(form);
                }
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor {
            needles,
            carry: Vec::new(),
        }
    }

    /// One complete value (a header, a whole body).
    pub(crate) fn redact_all(&self, bytes: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len());
        let rest = self.scan(bytes, &mut out, true);
        out.extend_from_slice(rest);
        out
    }

    /// The next chunk of a stream; returns what may be handed over now.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return chunk.to_vec();
        }
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(input.len());
        let rest = self.scan(&input, &mut out, false).to_vec();
        self.carry = rest;
        out
    }

    /// The end of the stream: whatever was held back is not a secret.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.carry)
    }

    /// Copy `input` to `out` with secrets replaced; returns the unconsumed tail (a possible
    /// secret prefix at the end, unless `complete`).
    fn scan<'a>(&self, input: &'a [u8], out: &mut Vec<u8>, complete: bool) -> &'a [u8] {
        let mut i = 0;
        'outer: while i < input.len() {
            let rest = &input[i..];
            for needle in &self.needles {
                if rest.starts_with(needle) {
                    out.extend_from_slice(REDACTED);
                    i += needle.len();
                    continue 'outer;
                }
                if !complete && rest.len() < needle.len() && needle.starts_with(rest) {
                    return rest;
                }
            }
            out.push(input[i]);
            i += 1;
        }
        &input[input.len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{BoundSecret, Secret};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    fn eff() -> Effective {
        Effective {
            plugin: Arc::from("p"),
            values: BTreeMap::new(),
            secrets: BTreeMap::from([(
                "api_key".to_string(),
                BoundSecret {
                    value: Secret::new("sk-123"),
                    origins: Arc::new(BTreeSet::from([origin("https://api.vendor.com")])),
                },
            )]),
            secret_names: BTreeSet::from(["api_key".to_string(), "other".to_string()]),
            secret_query: BTreeSet::new(),
            allowed: BTreeSet::new(),
        }
    }

    #[test]
    fn substitutes_configured_secrets_for_their_own_origin_only() {
        let e = eff();
        let vendor = origin("https://api.vendor.com");
        let mut used = Vec::new();
        assert_eq!(
            substitute("Bearer {{secret:api_key}}", &e, &vendor, &mut used).unwrap(),
            "Bearer sk-123"
        );
        assert_eq!(used, vec!["sk-123".to_string()]);
        assert_eq!(
            substitute("plain", &e, &vendor, &mut used).unwrap(),
            "plain"
        );
        assert!(matches!(
            substitute("{{secret:other}}", &e, &vendor, &mut used),
            Err(Error::InvalidRequest(m)) if m.contains("no value is configured")
        ));
        assert!(matches!(
            substitute("{{secret:HOME}}", &e, &vendor, &mut used),
            Err(Error::InvalidRequest(m)) if m.contains("names no key")
        ));
        assert!(substitute("{{secret:api_key", &e, &vendor, &mut used).is_err());
        let attacker = origin("http://attacker.test:8080");
        assert!(matches!(
            substitute("Bearer {{secret:api_key}}", &e, &attacker, &mut used),
            Err(Error::NotAllowed(m)) if m.contains("configured for https://api.vendor.com")
        ));
    }

    #[test]
    fn the_servers_own_addresses_are_never_reachable() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        refuse_server_addresses(&[addr("127.0.0.1:8080")]);
        let hit = |remote: &str| server_address_hit(addr(remote), None);
        assert_eq!(hit("127.0.0.1:8080"), Some(addr("127.0.0.1:8080")));
        assert!(hit("[::ffff:127.0.0.1]:8080").is_some(), "IPv4-mapped");
        assert!(
            hit("0.0.0.0:8080").is_some(),
            "the unspecified address is this machine"
        );
        assert!(
            hit("127.0.0.1:11434").is_none(),
            "another port on this machine"
        );
        assert!(hit("127.0.0.2:8080").is_none(), "another loopback address");
        assert!(hit("[::1]:8080").is_none());

        // Listening everywhere: every address of this machine on that port.
        refuse_server_addresses(&[addr("[::]:9000")]);
        assert!(hit("127.0.0.1:9000").is_some());
        assert!(hit("127.0.0.9:9000").is_some());
        assert!(hit("[::1]:9000").is_some());
        assert!(
            server_address_hit(addr("10.1.2.3:9000"), Some(addr("10.1.2.3:40000"))).is_some(),
            "the connection's own source address"
        );
        assert!(
            hit("192.0.2.1:9000").is_none(),
            "TEST-NET-1 is nobody's own address"
        );
        assert!(hit("127.0.0.1:9001").is_none());
        refuse_server_addresses(&[]);
        assert!(hit("127.0.0.1:8080").is_none());
    }

    #[test]
    fn text_is_redacted_of_recently_substituted_secrets() {
        let e = eff();
        let mut used = Vec::new();
        substitute(
            "Bearer {{secret:api_key}}",
            &e,
            &origin("https://api.vendor.com"),
            &mut used,
        )
        .unwrap();
        assert_eq!(
            redact_substituted("vendor said: bad key sk-123!", 100),
            "vendor said: bad key [redacted]!"
        );
    }

    #[test]
    fn redaction_covers_whole_bodies_and_chunk_boundaries() {
        let r = Redactor::new(&["sk-123".to_string(), "a b&c".to_string()]);
        assert_eq!(
            r.redact_all(b"auth=Bearer sk-123; q=a+b%26c; raw=a b&c"),
            b"auth=Bearer [redacted]; q=[redacted]; raw=[redacted]".to_vec()
        );
        let mut stream = Redactor::new(&["sk-123".to_string()]);
        let mut out = Vec::new();
        for chunk in [&b"xx sk"[..], b"-1", b"23 yy s", b"k-9", b" sk-12"] {
            out.extend(stream.push(chunk));
        }
        out.extend(stream.finish());
        assert_eq!(out, b"xx [redacted] yy sk-9 sk-12".to_vec());
        let none = Redactor::new(&[]);
        assert_eq!(none.redact_all(b"sk-123"), b"sk-123".to_vec());
    }
}
