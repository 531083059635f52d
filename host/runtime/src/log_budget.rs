//! Each plugin's log budget per minute, across all of its calls.
//!
//! A single call is capped on its own (`sandbox::LOG_LINES_PER_CALL`); this cap stops a plugin
//! that is called often from flooding the log anyway. Past it, lines are dropped and counted,
//! and one summary line with the count is written when the minute is over (the first log line
//! of a later minute writes it if no timer could).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most log lines, and bytes, one plugin may write per minute, all calls together.
pub const LOG_LINES_PER_MINUTE: u32 = 1000;
pub const LOG_BYTES_PER_MINUTE: usize = 512 * 1024;

const WINDOW: Duration = Duration::from_secs(60);

/// What to do with one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Write,
    /// Over the call's own cap (the call reports it).
    OverCall,
    /// Over the plugin's budget for this minute (the minute's summary reports it).
    OverMinute,
}

#[derive(Debug)]
struct Minute {
    started: Instant,
    lines: u32,
    bytes: usize,
    dropped: u64,
}

impl Minute {
    fn new(now: Instant) -> Minute {
        Minute {
            started: now,
            lines: 0,
            bytes: 0,
            dropped: 0,
        }
    }

    fn spent(&self) -> bool {
        self.lines >= LOG_LINES_PER_MINUTE || self.bytes >= LOG_BYTES_PER_MINUTE
    }
}

/// The current minute of every plugin that logged, by plugin id.
static MINUTES: Mutex<BTreeMap<Arc<str>, Minute>> = Mutex::new(BTreeMap::new());

/// Charge one line of `bytes` (`None`: the call is over its own cap, so the line is dropped
/// either way) to `plugin`'s budget for the current minute.
pub fn admit(plugin: &Arc<str>, bytes: Option<usize>) -> Verdict {
    let now = Instant::now();
    let mut minutes = match MINUTES.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    let minute = minutes
        .entry(plugin.clone())
        .or_insert_with(|| Minute::new(now));
    if now.duration_since(minute.started) >= WINDOW {
        summarize(plugin, minute.dropped);
        *minute = Minute::new(now);
    }
    if minute.spent() {
        minute.dropped += 1;
        if minute.dropped == 1 {
            schedule_summary(plugin.clone(), minute.started);
        }
        return Verdict::OverMinute;
    }
    let Some(bytes) = bytes else {
        return Verdict::OverCall;
    };
    minute.lines += 1;
    minute.bytes = minute.bytes.saturating_add(bytes);
    Verdict::Write
}

/// At the end of the minute that started at `started`, write its summary (unless a later
/// line already did).
fn schedule_summary(plugin: Arc<str>, started: Instant) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + WINDOW)).await;
        let mut minutes = match MINUTES.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(minute) = minutes.get_mut(&plugin)
            && minute.started == started
        {
            summarize(&plugin, std::mem::take(&mut minute.dropped));
        }
    });
}

fn summarize(plugin: &str, dropped: u64) {
    if dropped > 0 {
        tracing::warn!(
            plugin,
            dropped,
            "plugin log lines dropped: over {LOG_LINES_PER_MINUTE} lines or \
             {LOG_BYTES_PER_MINUTE} bytes in one minute"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_gets_its_minute_and_no_more() {
        let plugin: Arc<str> = Arc::from("log-budget-test");
        let other: Arc<str> = Arc::from("log-budget-other");
        for _ in 0..LOG_LINES_PER_MINUTE {
            assert_eq!(admit(&plugin, Some(10)), Verdict::Write);
        }
        assert_eq!(admit(&plugin, Some(10)), Verdict::OverMinute);
        assert_eq!(admit(&plugin, None), Verdict::OverMinute);
        assert_eq!(admit(&other, None), Verdict::OverCall);
        assert_eq!(admit(&other, Some(LOG_BYTES_PER_MINUTE)), Verdict::Write);
        assert_eq!(
            admit(&other, Some(1)),
            Verdict::OverMinute,
            "bytes count too"
        );
        let minutes = MINUTES.lock().unwrap();
        assert_eq!(minutes[&plugin].dropped, 2);
    }
}
