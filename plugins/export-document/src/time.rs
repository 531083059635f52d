//! Times in export documents: RFC 3339 strings, formatted in the offset each one carries
//! (which reproduces the reference's local-time rendering).

use chrono::{DateTime, FixedOffset};

/// The patterns the export templates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `YYYY-MM-DD HH:MM:SS`
    DateTime,
    /// `YYYY-MM-DD HH:MM`
    DateMinutes,
    /// `YYYY-MM-DD`
    Date,
    /// `HH:MM:SS`
    Time,
    /// `HH:MM`
    HourMinutes,
}

impl Pattern {
    fn chrono(self) -> &'static str {
        match self {
            Pattern::DateTime => "%Y-%m-%d %H:%M:%S",
            Pattern::DateMinutes => "%Y-%m-%d %H:%M",
            Pattern::Date => "%Y-%m-%d",
            Pattern::Time => "%H:%M:%S",
            Pattern::HourMinutes => "%H:%M",
        }
    }
}

/// Parse an RFC 3339 time (`None` when it is not one).
pub fn parse(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text.trim()).ok()
}

/// True for the zero time (year 1) and for anything that is not a time at all.
pub fn is_zero(text: &str) -> bool {
    parse(text).is_none_or(|t| t.timestamp() <= ZERO_UNIX)
}

/// Unix seconds of `0001-01-01T00:00:00Z`.
const ZERO_UNIX: i64 = -62_135_596_800;

/// `text` formatted with `pattern` in its own offset; the zero time (and anything
/// unparseable) renders as the zero time does (`0001-01-01 00:00:00`).
pub fn format(text: &str, pattern: Pattern) -> String {
    match parse(text) {
        Some(t) => t.format(pattern.chrono()).to_string(),
        None => zero().format(pattern.chrono()).to_string(),
    }
}

fn zero() -> DateTime<FixedOffset> {
    DateTime::from_timestamp(ZERO_UNIX, 0)
        .unwrap_or_default()
        .fixed_offset()
}

/// Seconds from `from` to `to` (0 when either is not a time).
pub fn seconds_between(from: &str, to: &str) -> f64 {
    match (parse(from), parse(to)) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_offset_the_time_carries() {
        let t = "2025-06-20T10:01:30.5+08:00";
        assert_eq!(format(t, Pattern::DateTime), "2025-06-20 10:01:30");
        assert_eq!(format(t, Pattern::DateMinutes), "2025-06-20 10:01");
        assert_eq!(format(t, Pattern::Date), "2025-06-20");
        assert_eq!(format(t, Pattern::Time), "10:01:30");
        assert_eq!(format(t, Pattern::HourMinutes), "10:01");
    }

    #[test]
    fn zero_and_garbage_render_as_the_zero_time() {
        assert!(is_zero(crate::ZERO_TIME));
        assert!(is_zero("yesterday"));
        assert!(!is_zero("2025-06-20T10:01:30Z"));
        assert_eq!(
            format(crate::ZERO_TIME, Pattern::DateTime),
            "0001-01-01 00:00:00"
        );
        assert_eq!(format("", Pattern::DateTime), "0001-01-01 00:00:00");
    }

    #[test]
    fn seconds_between_times_in_different_offsets() {
        let a = "2025-06-20T10:00:00+08:00";
        let b = "2025-06-20T02:01:30Z";
        assert_eq!(seconds_between(a, b), 90.0);
        assert_eq!(seconds_between(a, "nope"), 0.0);
    }
}
