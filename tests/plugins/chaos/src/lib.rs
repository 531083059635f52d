//! Test-only LLM provider that misbehaves on purpose. The request's `model` picks the
//! behaviour:
//!
//! * `echo` — text = the last user message, finish `stop`, no HTTP (cheap; used by benches);
//! * `loop` — spins forever (the host's CPU deadline must stop it);
//! * `oom` — allocates and touches 1 MiB blocks until the host's memory limit stops it;
//! * `trap` — panics;
//! * `fetch:<url>` — `GET <url>?key={{secret:api_key}}` with `Authorization: Bearer
//!   {{secret:api_key}}`; text = `status=<code> body=<body>`;
//! * `snoop` — tries every way it has to find the secret; one `probe=result` line per probe;
//! * `body-secret:<url>` — `POST` with the placeholder in the path and in the body, where the
//!   host must not substitute it; text = `status=<code> body=<body>`;
//! * `many-fetches:<url>:<n>` — `n` GETs; text = how many got a response;
//! * `header:<name>:<url>` — `GET <url>` with header `<name>: {{secret:api_key}}` (the host
//!   fills only credential headers and refuses routing headers such as `Host`);
//! * `relay:<url>` — `GET <url>` with the key in `Authorization`, read once whole and once as
//!   a stream, then `POST` everything that came back (headers and bodies) to `<url>/report`:
//!   whatever a vendor echoes reaches plugin memory only redacted;
//! * `get:<url>` — a plain `GET <url>` (no key); text = `status=<code> body=<body>` for a
//!   2xx answer, else an `upstream` error with the status;
//! * `reconfigure:<origin>` — `POST <origin>/api/settings` with a JSON body that makes
//!   `reconfigured-by-plugin` the default model of `chaos` (a plugin trying to administer the
//!   server it runs in); text as for `get:`;
//! * `error-flood` — an `upstream` error whose message is 1 MiB of text full of ANSI escapes,
//!   newlines and forged log records;
//! * anything else — `invalid-request`.
//!
//! Streaming: `echo` streams the user text word by word; `stream-fetch:<url>:<n>` makes one
//! `GET <url>` per event for `n` events (the call's request budget holds for the whole
//! stream; a `<url>` that answers slowly makes a stream that stalls between events);
//! other models are `invalid-request`.
//!
//! Replies past the host's caps:
//!
//! * `flood:<n_mib>` (stream) — deltas of 64 KiB until `n_mib` MiB, then a short `done`;
//! * `flood-complete:<n_mib>` — a `complete()` text of `n_mib` MiB; as a stream, one `done`
//!   with that text;
//! * `events:<n>` (stream) — `n` one-byte deltas, then `done`;
//! * `stream-body:<url>` — `GET <url>` read as a streamed body to its end; text = `read <n>
//!   bytes` (the host's per-request response cap holds for streamed bodies too).

use sceneintruder_plugin_sdk::http::{self, Method, Request};
use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Role, StreamEvent, Usage,
};
use sceneintruder_plugin_sdk::streams::{self, EventSource};
use sceneintruder_plugin_sdk::{config, types};
use std::collections::VecDeque;
use std::hint::black_box;

struct Plugin;

/// `info()` with the `info_fetch` setting (a URL) looks for what it must not have at load:
/// the `api_key` secret and the network (`GET <info_fetch>` with the key). It logs what it
/// found, one line starting `info() probe:`, and loads either way.
fn info_probe() {
    let Some(url) = config::get("info_fetch").filter(|u| !u.is_empty()) else {
        return;
    };
    let req = Request {
        method: Method::Get,
        url,
        headers: vec![http::bearer("api_key")],
        body: None,
        timeout_ms: None,
    };
    let fetched = match http::fetch(&req) {
        Ok(resp) => format!("status {}", resp.status),
        Err(e) => format!("error {e:?}"),
    };
    sceneintruder_plugin_sdk::log::info(&format!(
        "info() probe: has_secret(api_key)={} get(api_key)={:?} fetch={fetched}",
        config::has_secret("api_key"),
        config::get("api_key"),
    ));
}

/// A plain GET (no key); a non-2xx answer is an `upstream` error.
fn get(url: &str) -> Result<String, ProviderError> {
    let req = Request {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![],
        body: None,
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    ok_or_upstream(&resp)
}

/// Try to change the server's settings through its own API at `origin`.
fn reconfigure(origin: &str) -> Result<String, ProviderError> {
    let req = Request {
        method: Method::Post,
        url: format!("{}/api/settings", origin.trim_end_matches('/')),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(
            br#"{"llm_provider":"chaos","llm_config":{"default_model":"reconfigured-by-plugin"}}"#
                .to_vec(),
        ),
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    ok_or_upstream(&resp)
}

fn ok_or_upstream(resp: &http::Response) -> Result<String, ProviderError> {
    if (200..300).contains(&resp.status) {
        Ok(status_and_body(resp))
    } else {
        Err(ProviderError::Upstream(types::UpstreamError {
            status: resp.status,
            message: String::from_utf8_lossy(&resp.body).into_owned(),
        }))
    }
}

/// 1 MiB of error text that tries to forge log records and colour the terminal.
fn error_flood() -> ProviderError {
    let line = "boom\n2026-01-01T00:00:00Z ERROR forged record\r\u{1b}[31mred\u{1b}[0m ";
    let mut message = String::with_capacity((1 << 20) + line.len());
    while message.len() < 1 << 20 {
        message.push_str(line);
    }
    ProviderError::Upstream(types::UpstreamError {
        status: 500,
        message,
    })
}

/// The catalog: `echo`, plus as many more as the `catalog_size` setting says (a hostile
/// plugin's huge catalog), named per `catalog_style` (`control`: a control character in the
/// id; `long`: a 10,000-character id).
fn catalog() -> Vec<ModelInfo> {
    let mut models = vec![ModelInfo {
        context_window: 8192,
        streaming: true,
        ..types::unknown_model("echo")
    }];
    let extra: usize = config::get("catalog_size")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let style = config::get("catalog_style").unwrap_or_default();
    for i in 0..extra {
        let id = match style.as_str() {
            "control" => format!("model\u{1b}[31m{i}"),
            "long" => format!("{i}{}", "m".repeat(10_000)),
            _ => format!("model-{i}"),
        };
        models.push(types::unknown_model(&id));
    }
    models
}

fn last_user_message(req: &CompletionRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

fn words(s: &str) -> u32 {
    u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX)
}

fn echo(req: &CompletionRequest) -> CompletionResponse {
    let text = last_user_message(req);
    let prompt = req.messages.iter().map(|m| words(&m.content)).sum::<u32>();
    let output = words(&text);
    CompletionResponse {
        text,
        finish_reason: "stop".into(),
        usage: Some(Usage {
            prompt_tokens: prompt,
            output_tokens: output,
            total_tokens: prompt + output,
        }),
        model: req.model.clone(),
    }
}

fn text(req: &CompletionRequest, text: String) -> CompletionResponse {
    CompletionResponse {
        text,
        finish_reason: "stop".into(),
        usage: None,
        model: req.model.clone(),
    }
}

fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

fn hog_memory() -> ! {
    const MIB: usize = 1 << 20;
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; MIB];
        // Touch every page so the memory is really used.
        for i in (0..MIB).step_by(4096) {
            block[i] = (i as u8) | 1;
        }
        blocks.push(black_box(block));
        black_box(&blocks);
    }
}

/// `url` with `name=value` appended to its query string.
fn with_query(url: &str, name: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={value}")
}

/// `url` with `/segment` appended to its path (before any query string).
fn with_path_segment(url: &str, segment: &str) -> String {
    match url.split_once('?') {
        Some((path, query)) => format!("{}/{segment}?{query}", path.trim_end_matches('/')),
        None => format!("{}/{segment}", url.trim_end_matches('/')),
    }
}

fn status_and_body(resp: &http::Response) -> String {
    format!(
        "status={} body={}",
        resp.status,
        String::from_utf8_lossy(&resp.body)
    )
}

fn fetch(url: &str) -> Result<String, ProviderError> {
    let req = Request {
        method: Method::Get,
        url: with_query(url, "key", &http::secret("api_key")),
        headers: vec![http::bearer("api_key")],
        body: None,
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    Ok(status_and_body(&resp))
}

fn body_secret(url: &str) -> Result<String, ProviderError> {
    let placeholder = http::secret("api_key");
    let req = Request {
        method: Method::Post,
        url: with_path_segment(url, &placeholder),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: Some(format!("secret={placeholder}").into_bytes()),
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    Ok(status_and_body(&resp))
}

/// Snoop, then report the findings to `url` (so a test driving the real server, which only
/// sees a pass/fail, can read what the plugin found).
fn snoop_and_report(url: &str) -> Result<String, ProviderError> {
    let report = snoop();
    let req = Request {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: Some(report.clone().into_bytes()),
        timeout_ms: None,
    };
    http::fetch(&req).map_err(ProviderError::Http)?;
    Ok(report)
}

fn many_fetches(spec: &str) -> Result<String, ProviderError> {
    let (url, n) = spec
        .rsplit_once(':')
        .and_then(|(url, n)| Some((url, n.parse::<u32>().ok()?)))
        .ok_or_else(|| ProviderError::InvalidRequest("expected many-fetches:<url>:<n>".into()))?;
    let mut ok = 0u32;
    for _ in 0..n {
        let req = Request {
            method: Method::Get,
            url: url.to_string(),
            headers: vec![],
            body: None,
            timeout_ms: None,
        };
        http::fetch(&req).map_err(ProviderError::Http)?;
        ok += 1;
    }
    Ok(ok.to_string())
}

fn header_secret(spec: &str) -> Result<String, ProviderError> {
    let (name, url) = spec
        .split_once(':')
        .ok_or_else(|| ProviderError::InvalidRequest("expected header:<name>:<url>".into()))?;
    let req = Request {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![(name.to_string(), http::secret("api_key"))],
        body: None,
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    Ok(status_and_body(&resp))
}

/// Fetch `url` with header `name` set to a plain (spoofed) value.
fn header_plain(spec: &str) -> Result<String, ProviderError> {
    let (name, url) = spec
        .split_once(':')
        .ok_or_else(|| ProviderError::InvalidRequest("expected plainheader:<name>:<url>".into()))?;
    let req = Request {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![(name.to_string(), "evil.example".to_string())],
        body: None,
        timeout_ms: None,
    };
    let resp = http::fetch(&req).map_err(ProviderError::Http)?;
    Ok(status_and_body(&resp))
}

/// Fetch `url` with the key, whole and streamed, and send everything received to
/// `<url>/report`, so a test can see exactly what entered plugin memory.
fn relay(url: &str) -> Result<String, ProviderError> {
    let req = Request {
        method: Method::Get,
        url: url.to_string(),
        headers: vec![http::bearer("api_key")],
        body: None,
        timeout_ms: None,
    };
    let whole = http::fetch(&req).map_err(ProviderError::Http)?;
    let (head, stream) = http::fetch_streaming(&req).map_err(ProviderError::Http)?;
    let mut streamed = Vec::new();
    // Tiny reads: a secret split across reads must still arrive redacted.
    while let Some(chunk) = stream.read(3).map_err(ProviderError::Http)? {
        streamed.extend_from_slice(&chunk);
    }
    let report = format!(
        "whole.headers={:?}\nwhole.body={}\nstream.headers={:?}\nstream.body={}",
        whole.headers,
        String::from_utf8_lossy(&whole.body),
        head.headers,
        String::from_utf8_lossy(&streamed)
    );
    let post = Request {
        method: Method::Post,
        url: format!("{}/report", url.trim_end_matches('/')),
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: Some(report.clone().into_bytes()),
        timeout_ms: None,
    };
    http::fetch(&post).map_err(ProviderError::Http)?;
    Ok(report)
}

/// Every way the guest has to look for the secret. One `probe=result` line each; results
/// are `{:?}`-formatted so they stay on one line.
fn snoop() -> String {
    let mut lines = Vec::new();
    for key in ["api_key", "secret", "API_KEY", "base_url", "access_token"] {
        lines.push(format!("config.get({key})={:?}", config::get(key)));
    }
    lines.push(format!(
        "config.has_secret(api_key)={}",
        config::has_secret("api_key")
    ));
    lines.push(format!(
        "env.vars={:?}",
        std::env::vars().collect::<Vec<_>>()
    ));
    lines.push(format!(
        "env.args={:?}",
        std::env::args().collect::<Vec<_>>()
    ));
    lines.push(format!(
        "env.var(api_key)={:?}",
        std::env::var("api_key").ok()
    ));
    lines.push(format!("env.current_dir={:?}", std::env::current_dir()));
    lines.push(format!(
        "fs.read_dir(/)={:?}",
        std::fs::read_dir("/").map(|d| d
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect::<Vec<_>>())
    ));
    for path in [
        "/etc/passwd",
        "./plugin.toml",
        "plugin.toml",
        "/proc/self/environ",
    ] {
        lines.push(format!(
            "fs.read_to_string({path})={:?}",
            std::fs::read_to_string(path)
        ));
    }
    lines.join("\n")
}

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        info_probe();
        // A copy installed under another id says so through `info_id`; `info_spin` makes
        // info() never return (the host's load deadline must fail it).
        if config::get("info_spin").as_deref() == Some("true") {
            spin();
        }
        ProviderInfo {
            id: config::get("info_id")
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| "chaos".into()),
            display_name: "Chaos".into(),
            default_model: "echo".into(),
            models: catalog(),
        }
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        let model = req.model.as_str();
        if model == "echo" {
            return Ok(echo(&req));
        }
        let out = match model {
            "loop" => spin(),
            "oom" => hog_memory(),
            "trap" => panic!("chaos trap"),
            "snoop" => snoop(),
            "error-flood" => return Err(error_flood()),
            _ => {
                if let Some(url) = model.strip_prefix("fetch:") {
                    fetch(url)?
                } else if let Some(url) = model.strip_prefix("snoop:") {
                    snoop_and_report(url)?
                } else if let Some(url) = model.strip_prefix("body-secret:") {
                    body_secret(url)?
                } else if let Some(spec) = model.strip_prefix("many-fetches:") {
                    many_fetches(spec)?
                } else if let Some(spec) = model.strip_prefix("header:") {
                    header_secret(spec)?
                } else if let Some(count) = model.strip_prefix("logs:") {
                    // A log flood whose lines try to forge records and colour the terminal.
                    let count: u32 = count.parse().unwrap_or(0);
                    for i in 0..count {
                        sceneintruder_plugin_sdk::log::info(&format!(
                            "line {i}\n2026-01-01T00:00:00Z ERROR forged record\r\u{1b}[31mred"
                        ));
                    }
                    format!("wrote {count} lines")
                } else if let Some(spec) = model.strip_prefix("plainheader:") {
                    header_plain(spec)?
                } else if let Some(url) = model.strip_prefix("relay:") {
                    relay(url)?
                } else if let Some(url) = model.strip_prefix("get:") {
                    get(url)?
                } else if let Some(origin) = model.strip_prefix("reconfigure:") {
                    reconfigure(origin)?
                } else if let Some(n_mib) = model.strip_prefix("flood-complete:") {
                    "x".repeat(mib(n_mib)?)
                } else if let Some(url) = model.strip_prefix("stream-body:") {
                    stream_body(url)?
                } else {
                    return Err(ProviderError::InvalidRequest(format!(
                        "unknown chaos model `{model}`"
                    )));
                }
            }
        };
        Ok(text(&req, out))
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(catalog())
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        if let Some(spec) = req.model.strip_prefix("stream-fetch:") {
            let (url, n) = spec
                .rsplit_once(':')
                .and_then(|(url, n)| Some((url.to_string(), n.parse::<u32>().ok()?)))
                .ok_or_else(|| {
                    ProviderError::InvalidRequest("expected stream-fetch:<url>:<n>".into())
                })?;
            return Ok(streams::open(FetchStream { url, left: n }));
        }
        if let Some(n_mib) = req.model.strip_prefix("flood:") {
            return Ok(streams::open(Flood { left: mib(n_mib)? }));
        }
        if let Some(n_mib) = req.model.strip_prefix("flood-complete:") {
            let done = text(&req, "x".repeat(mib(n_mib)?));
            return Ok(streams::open(EchoStream {
                pieces: VecDeque::new(),
                done: Some(done),
            }));
        }
        if let Some(n) = req.model.strip_prefix("events:") {
            let left = n
                .parse()
                .map_err(|_| ProviderError::InvalidRequest("expected events:<n>".into()))?;
            return Ok(streams::open(Events { left }));
        }
        if req.model != "echo" {
            return Err(ProviderError::InvalidRequest(format!(
                "model `{}` cannot stream",
                req.model
            )));
        }
        let done = echo(&req);
        // Word by word, keeping the whitespace so the deltas concatenate to the text.
        let pieces: VecDeque<String> = done
            .text
            .split_inclusive(char::is_whitespace)
            .map(str::to_string)
            .collect();
        Ok(streams::open(EchoStream {
            pieces,
            done: Some(done),
        }))
    }

    fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
        streams::next_event(stream)
    }

    fn close_stream(stream: u32) {
        streams::close(stream)
    }
}

struct EchoStream {
    pieces: VecDeque<String>,
    done: Option<CompletionResponse>,
}

impl EventSource for EchoStream {
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
        if let Some(piece) = self.pieces.pop_front() {
            return Ok(StreamEvent::Delta(piece));
        }
        self.done
            .take()
            .map(StreamEvent::Done)
            .ok_or_else(|| ProviderError::InvalidRequest("stream has finished".into()))
    }
}

/// One GET per event; `done` after `left` events.
struct FetchStream {
    url: String,
    left: u32,
}

impl EventSource for FetchStream {
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
        if self.left == 0 {
            return Ok(StreamEvent::Done(CompletionResponse {
                text: String::new(),
                finish_reason: "stop".into(),
                usage: None,
                model: String::new(),
            }));
        }
        self.left -= 1;
        let resp = http::fetch(&http::get(&self.url, vec![])).map_err(ProviderError::Http)?;
        Ok(StreamEvent::Delta(format!("{} ", resp.status)))
    }
}

/// Read `GET <url>` as a streamed body to its end, keeping only the count.
fn stream_body(url: &str) -> Result<String, ProviderError> {
    let (_, stream) =
        http::fetch_streaming(&http::get(url, vec![])).map_err(ProviderError::Http)?;
    let mut read = 0usize;
    while let Some(chunk) = stream.read(64 << 10).map_err(ProviderError::Http)? {
        read += chunk.len();
    }
    Ok(format!("read {read} bytes"))
}

/// `<n_mib>` of a flood spec, in bytes.
fn mib(n_mib: &str) -> Result<usize, ProviderError> {
    n_mib
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << 20))
        .ok_or_else(|| ProviderError::InvalidRequest(format!("bad size `{n_mib}` (MiB)")))
}

/// Deltas of 64 KiB until `left` bytes are sent, then a short `done`.
struct Flood {
    left: usize,
}

impl EventSource for Flood {
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
        if self.left == 0 {
            return Ok(StreamEvent::Done(CompletionResponse {
                text: "flooded".into(),
                finish_reason: "stop".into(),
                usage: None,
                model: String::new(),
            }));
        }
        let n = self.left.min(64 << 10);
        self.left -= n;
        Ok(StreamEvent::Delta("x".repeat(n)))
    }
}

/// `left` one-byte deltas, then `done`.
struct Events {
    left: u32,
}

impl EventSource for Events {
    fn next_event(&mut self) -> Result<StreamEvent, ProviderError> {
        if self.left == 0 {
            return Ok(StreamEvent::Done(CompletionResponse {
                text: String::new(),
                finish_reason: "stop".into(),
                usage: None,
                model: String::new(),
            }));
        }
        self.left -= 1;
        Ok(StreamEvent::Delta("x".into()))
    }
}

llm::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::llm::{Message, Reasoning, ResponseFormat};

    fn req(model: &str, user: &str) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![
                Message {
                    role: Role::User,
                    content: "first".into(),
                },
                Message {
                    role: Role::Assistant,
                    content: "reply".into(),
                },
                Message {
                    role: Role::User,
                    content: user.into(),
                },
            ],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning: Reasoning::Default,
        }
    }

    #[test]
    fn echo_and_stream() {
        let r = Plugin::complete(req("echo", "hello  big world")).unwrap();
        assert_eq!(r.text, "hello  big world");
        assert_eq!(r.finish_reason, "stop");
        let id = Plugin::start_stream(req("echo", "hello  big world")).unwrap();
        let mut text = String::new();
        loop {
            match Plugin::next_event(id).unwrap() {
                StreamEvent::Delta(d) => text.push_str(&d),
                StreamEvent::Done(r) => {
                    assert_eq!(r.text, "hello  big world");
                    break;
                }
            }
        }
        assert_eq!(text, "hello  big world");
        Plugin::close_stream(id);
        assert!(Plugin::start_stream(req("trap", "x")).is_err());
    }

    #[test]
    fn unknown_models_and_specs() {
        assert!(matches!(
            Plugin::complete(req("nope", "x")),
            Err(ProviderError::InvalidRequest(_))
        ));
        assert!(matches!(
            many_fetches("http://x:1/a"),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn floods_and_event_counts() {
        let id = Plugin::start_stream(req("flood:1", "x")).unwrap();
        let mut bytes = 0;
        let mut deltas = 0;
        while let StreamEvent::Delta(d) = Plugin::next_event(id).unwrap() {
            bytes += d.len();
            deltas += 1;
        }
        assert_eq!((bytes, deltas), (1 << 20, 16));
        let r = Plugin::complete(req("flood-complete:2", "x")).unwrap();
        assert_eq!(r.text.len(), 2 << 20);
        let id = Plugin::start_stream(req("events:3", "x")).unwrap();
        let mut deltas = 0;
        while let StreamEvent::Delta(_) = Plugin::next_event(id).unwrap() {
            deltas += 1;
        }
        assert_eq!(deltas, 3);
        assert!(Plugin::start_stream(req("flood:many", "x")).is_err());
    }

    #[test]
    fn an_error_flood_is_a_mebibyte_of_hostile_text() {
        match Plugin::complete(req("error-flood", "x")) {
            Err(ProviderError::Upstream(u)) => {
                assert!(u.message.len() >= 1 << 20);
                assert!(u.message.contains('\u{1b}') && u.message.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn url_helpers() {
        assert_eq!(with_query("http://h/a", "key", "v"), "http://h/a?key=v");
        assert_eq!(
            with_query("http://h/a?x=1", "key", "v"),
            "http://h/a?x=1&key=v"
        );
        assert_eq!(with_path_segment("http://h/a/", "s"), "http://h/a/s");
        assert_eq!(with_path_segment("http://h/a?x=1", "s"), "http://h/a/s?x=1");
    }
}
