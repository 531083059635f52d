//! Time formats the API uses.

/// Go's RFC3339Nano in the server's local offset: trailing zeros of the fraction trimmed,
/// no fraction when it is zero, `Z` for UTC.
///
/// Every response carries one, so the date, time and offset are formatted once per second
/// per thread and only the fraction per call (the full formatting was a tenth of a cached
/// read's CPU).
pub fn rfc3339_nano_local() -> String {
    use std::cell::RefCell;
    thread_local! {
        /// (unix second, its `YYYY-MM-DDTHH:MM:SS` in local time, its offset text)
        static SECOND: RefCell<(i64, String, String)> = const {
            RefCell::new((i64::MIN, String::new(), String::new()))
        };
    }
    let now = chrono::Utc::now();
    let (secs, nanos) = (now.timestamp(), now.timestamp_subsec_nanos());
    SECOND.with(|cell| {
        let mut second = cell.borrow_mut();
        if second.0 != secs {
            let whole = format_local(
                chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or(now)
                    .with_timezone(&chrono::Local),
            );
            // `whole` has no fraction: the date-time is its first 19 bytes.
            let (prefix, offset) = whole.split_at(19.min(whole.len()));
            *second = (secs, prefix.to_string(), offset.to_string());
        }
        let mut out = String::with_capacity(36);
        out.push_str(&second.1);
        if nanos > 0 {
            let digits = format!("{nanos:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out.push_str(&second.2);
        out
    })
}

/// [`rfc3339_nano_local`] of a moment given in unix milliseconds.
pub fn rfc3339_local_of_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => format_local(t.with_timezone(&chrono::Local)),
        None => rfc3339_nano_local(),
    }
}

/// [`rfc3339_nano_local`] of a given local moment.
pub fn rfc3339_of(at: chrono::DateTime<chrono::Local>) -> String {
    format_local(at)
}

fn format_local(now: chrono::DateTime<chrono::Local>) -> String {
    use chrono::SecondsFormat;
    let text = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // Split "2025-06-20T10:15:42.318027000+08:00" into fraction and offset and trim zeros.
    match text.find('.') {
        Some(dot) => {
            let offset_at = text[dot..]
                .find(['+', '-', 'Z'])
                .map(|i| dot + i)
                .unwrap_or(text.len());
            let fraction = text[dot + 1..offset_at].trim_end_matches('0');
            if fraction.is_empty() {
                format!("{}{}", &text[..dot], &text[offset_at..])
            } else {
                format!("{}.{}{}", &text[..dot], fraction, &text[offset_at..])
            }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_second_cache_formats_like_the_slow_way() {
        for _ in 0..5 {
            let fast = rfc3339_nano_local();
            let parsed = chrono::DateTime::parse_from_rfc3339(&fast).expect("rfc3339");
            let slow = format_local(parsed.with_timezone(&chrono::Local));
            assert_eq!(fast, slow);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}
