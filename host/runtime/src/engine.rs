//! Engine defaults in one place: compilation, pooling, epochs, limits.
//!
//! Numbers come from the feasibility probe (research/wasmtime-probe.md): pooling with
//! `linear_memory_keep_resident` + `pagemap_scan` brings instantiate + call + drop to ~13 µs.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

use crate::error::RuntimeError;

/// How often the epoch advances. Deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call sandbox limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of one plugin call, including its HTTP requests (milliseconds).
    pub call_timeout_ms: u64,
    /// Budget of one streamed completion from start to the last event (milliseconds).
    pub stream_timeout_ms: u64,
    /// Longest a stream may go without an event: the wait for one event, the start of the
    /// stream included (milliseconds).
    pub stream_idle_timeout_ms: u64,
    /// Largest text of one completion: `complete()`'s answer and a stream's final `done`,
    /// model name and finish reason included (bytes).
    pub max_reply_bytes: usize,
    /// Most text one stream may deliver, its deltas and its final `done` together (bytes).
    pub max_stream_bytes: usize,
    /// Most events one stream may deliver.
    pub max_stream_events: u32,
    /// Largest linear memory one instance may grow to (bytes).
    pub memory_bytes: usize,
    /// Largest HTTP response body a plugin may receive (bytes).
    pub max_response_bytes: usize,
    /// HTTP requests allowed in one call.
    pub max_requests_per_call: u32,
    /// Instances alive at once across all plugins (pool size).
    pub max_instances: u32,
    /// Instances one plugin may hold at once; 0 means a quarter of `max_instances` (at
    /// least 1). Never more than `max_instances`.
    pub max_instances_per_plugin: u32,
    /// How long a call waits for a free instance slot before failing as busy (milliseconds).
    pub queue_timeout_ms: u64,
    /// Largest output one export may write (bytes).
    pub export_max_bytes: usize,
    /// Budget of a plugin's `info()` when it is loaded (milliseconds). Plugins load in
    /// parallel, so start-up waits at most about this long for misbehaving ones.
    pub load_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout_ms: 120_000,
            stream_timeout_ms: 600_000,
            stream_idle_timeout_ms: 60_000,
            max_reply_bytes: 4 << 20,
            max_stream_bytes: 8 << 20,
            max_stream_events: 100_000,
            memory_bytes: 64 << 20,
            max_response_bytes: 32 << 20,
            max_requests_per_call: 16,
            max_instances: 128,
            max_instances_per_plugin: 0,
            queue_timeout_ms: 30_000,
            export_max_bytes: 32 << 20,
            load_timeout_ms: 5_000,
        }
    }
}

impl Limits {
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
    pub fn stream_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_timeout_ms)
    }
    pub fn load_timeout(&self) -> Duration {
        Duration::from_millis(self.load_timeout_ms)
    }
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.stream_idle_timeout_ms)
    }
    /// Instances one plugin may hold at once (see `max_instances_per_plugin`).
    pub fn instances_per_plugin(&self) -> u32 {
        let pool = self.max_instances.max(1);
        match self.max_instances_per_plugin {
            0 => (pool / 4).max(1),
            n => n.min(pool),
        }
    }
}

/// Build the engine every plugin shares.
pub fn build_engine(limits: &Limits) -> Result<Engine, RuntimeError> {
    let n = limits.max_instances.max(1);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        .max_wasm_stack(1 << 20)
        // Must exceed max_wasm_stack: host calls run on the same fiber stack.
        .async_stack_size(2 << 20);

    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // A Rust component is 3 core instances, 1 memory and 2 tables (main + shims).
        .total_core_instances(4 * n)
        .total_memories(n)
        .total_tables(2 * n)
        .total_stacks(n)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16)
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Advance the engine's epoch on a plain OS thread (a tokio task would stall when a guest
/// hogs a worker). The thread ends when the engine is dropped.
pub fn spawn_epoch_ticker(engine: &Engine) -> Result<(), RuntimeError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| RuntimeError::Engine(format!("cannot start the epoch ticker: {e}")))
}
