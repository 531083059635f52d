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
/// one summary line at the end of the call.
pub const LOG_LINES_PER_CALL: u32 = 100;
pub const LOG_BYTES_PER_CALL: usize = 64 * 1024;
/// Longest log line, in characters.
pub const LOG_LINE_CHARS: usize = 1024;

/// A plugin's log text made safe for a log file: cut to [`LOG_LINE_CHARS`], newlines and other
/// control characters (ANSI escapes included) written as escapes, so a plugin can never start
/// a forged record of its own or colour the terminal.
pub fn escape_log(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(LOG_LINE_CHARS * 2));
    for c in message.chars().take(LOG_LINE_CHARS) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
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
    let mut message = format!("{e:#}");
    if message.len() > 1000 {
        let cut = (0..=1000)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push('…');
    }
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
        let plugin = &*settings.plugin;
        let call = &mut self.call;
        if call.log_lines >= LOG_LINES_PER_CALL || call.log_bytes >= LOG_BYTES_PER_CALL {
            call.log_dropped = call.log_dropped.saturating_add(1);
            return Ok(());
        }
        let message = escape_log(&message);
        call.log_lines += 1;
        call.log_bytes += message.len();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl crate::bindings::types::Host for HostState {}
