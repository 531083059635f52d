//! Per-call sandbox: the store's state, memory limiter, epoch deadline and error mapping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{config, log};
use crate::engine::Limits;
use crate::error::CallError;
use crate::settings::Effective;

/// Everything one call's host imports need.
pub struct CallEnv {
    pub settings: Arc<Effective>,
    pub client: reqwest::Client,
    pub limits: Arc<Limits>,
    /// When the guest is interrupted; HTTP timeouts are clamped to it.
    pub deadline: Instant,
    /// Requests made so far in this call (or stream: the budget holds across its events).
    pub requests: u32,
    /// Secret values substituted into this call's requests, redacted from what comes back.
    pub substituted: Vec<String>,
    /// The output and attachments of the export being rendered (exporter calls only).
    pub export: Option<crate::export::ExportSession>,
    /// Log lines and bytes written in this call, and lines dropped past the caps.
    pub log_lines: u32,
    pub log_bytes: usize,
    pub log_dropped: u32,
}

/// Most log lines, and bytes, one plugin call may write; the rest are dropped and counted in
/// one summary line at the end of the call. A plugin's calls together also have a budget per
/// minute ([`crate::log_budget`]).
pub const LOG_LINES_PER_CALL: u32 = 100;
pub const LOG_BYTES_PER_CALL: usize = 64 * 1024;
/// Longest log line, in characters.
pub const LOG_LINE_CHARS: usize = 1024;

/// Text a plugin chose, made safe to show (a log line, an API error's details): newlines and
/// other control characters (ANSI escapes included) and invisible direction overrides written
/// as escapes, so it can never start a forged record of its own or colour a terminal, and cut
/// to `max_chars` characters of output (`…` marks a cut).
pub fn escape_plugin_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(2)));
    let mut written = 0usize;
    for c in text.chars() {
        let start = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible_format(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
        written += out[start..].chars().count();
        if written > max_chars {
            out.truncate(start);
            out.push('…');
            break;
        }
    }
    out
}

/// Zero-width and bidirectional formatting characters: they reorder or hide what a reader sees.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The first `max_chars` characters of `text`.
fn prefix(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Refuses memory growth past the limit and remembers that it did.
pub struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
struct MemoryLimitExceeded(usize);

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            // Trap right here rather than let the guest's allocator abort later with a
            // confusing `unreachable`.
            return Err(wasmtime::Error::new(MemoryLimitExceeded(self.limit)));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The data of a plugin `Store`.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) call: CallEnv,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Create a store for one call (or one stream). The default `WasiCtx` has no preopened
/// directories, no environment and no sockets: WASI offers no way around the allow-list.
pub fn new_store(engine: &Engine, call: CallEnv) -> Store<HostState> {
    let limit = call.limits.memory_bytes;
    let deadline = call.deadline;
    let state = HostState {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            limit,
            exceeded: false,
        },
        call,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    set_deadline(&mut store, deadline);
    store
}

/// (Re)arm the deadline. Each epoch tick before it yields to the executor, so a busy guest
/// never holds a tokio worker for long. The request budget is not reset: a stream's events
/// share the one budget of the call that started it.
pub fn set_deadline(store: &mut Store<HostState>, deadline: Instant) {
    store.data_mut().call.deadline = deadline;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        Ok(if Instant::now() >= ctx.data().call.deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
}

/// Run one guest call under its budget and turn any failure into a typed `CallError`.
pub async fn guarded<T>(
    store: &mut Store<HostState>,
    budget: Duration,
    cancel: Option<&tokio_util::sync::CancellationToken>,
    call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let plugin = store.data().call.settings.plugin.to_string();
    // Backstop for host I/O that ignores the deadline: the epoch only fires inside wasm.
    let backstop = budget + Duration::from_secs(1);
    let outcome = {
        let fut = tokio::time::timeout(backstop, call(&mut *store));
        match cancel {
            Some(token) => tokio::select! {
                biased;
                _ = token.cancelled() => return Err(CallError::Cancelled),
                r = fut => r,
            },
            None => fut.await,
        }
    };
    match outcome {
        Err(_) => Err(CallError::Timeout { plugin, budget }),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(store, plugin, budget, e)),
    }
}

/// Longest trap text kept, in characters.
const TRAP_MESSAGE_CHARS: usize = 1000;

fn classify(
    store: &Store<HostState>,
    plugin: String,
    budget: Duration,
    e: wasmtime::Error,
) -> CallError {
    if store.data().limiter.exceeded || e.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return CallError::MemoryLimit {
            plugin,
            limit_bytes: store.data().limiter.limit,
        };
    }
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return CallError::Timeout { plugin, budget };
    }
    // Frame names come from the component: plugin-chosen text, made printable and short.
    let message = escape_plugin_text(&format!("{e:#}"), TRAP_MESSAGE_CHARS);
    CallError::Trap { plugin, message }
}

impl config::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.call.settings.values.get(&key).cloned())
    }

    async fn has_secret(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.call.settings.secret_usable(&key))
    }
}

impl log::Host for HostState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let settings = self.call.settings.clone();
        let call = &mut self.call;
        let over_call =
            call.log_lines >= LOG_LINES_PER_CALL || call.log_bytes >= LOG_BYTES_PER_CALL;
        let text = (!over_call).then(|| {
            let cut = prefix(&message, LOG_LINE_CHARS);
            if call.substituted.is_empty() {
                cut.to_string()
            } else {
                let redacted =
                    crate::http::Redactor::new(&call.substituted).redact_all(cut.as_bytes());
                String::from_utf8_lossy(&redacted).into_owned()
            }
        });
        match crate::log_budget::admit(&settings.plugin, text.as_ref().map(String::len)) {
            crate::log_budget::Verdict::Write => {}
            crate::log_budget::Verdict::OverCall => {
                call.log_dropped = call.log_dropped.saturating_add(1);
                return Ok(());
            }
            crate::log_budget::Verdict::OverMinute => return Ok(()),
        }
        let Some(text) = text else {
            return Ok(());
        };
        call.log_lines += 1;
        call.log_bytes += text.len();
        // The plugin id is a field of its own, set here; the plugin's text is another, quoted
        // with every newline, control character and quote escaped (`Debug`), so nothing it
        // writes can pass for a field, a record or a terminal escape.
        let plugin = &*settings.plugin;
        match level {
            log::Level::Trace => tracing::trace!(plugin, text = ?text, "plugin log"),
            log::Level::Debug => tracing::debug!(plugin, text = ?text, "plugin log"),
            log::Level::Info => tracing::info!(plugin, text = ?text, "plugin log"),
            log::Level::Warn => tracing::warn!(plugin, text = ?text, "plugin log"),
            log::Level::Error => tracing::error!(plugin, text = ?text, "plugin log"),
        }
        Ok(())
    }
}

impl crate::bindings::types::Host for HostState {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_is_escaped_and_cut() {
        assert_eq!(
            escape_plugin_text("a\nb\r\t\u{1b}[31mc\u{202e}d", 100),
            "a\\nb\\r\\t\\u{1b}[31mc\\u{202e}d"
        );
        assert_eq!(escape_plugin_text("héllo wörld", 5), "héllo…");
        // The cut counts what is shown: an escape is never split.
        assert_eq!(escape_plugin_text("ab\u{1b}", 4), "ab…");
        assert_eq!(
            escape_plugin_text(&"x".repeat(1 << 20), 10).chars().count(),
            11
        );
        assert_eq!(prefix("héllo", 2), "hé");
        assert_eq!(prefix("hé", 5), "hé");
    }
}
