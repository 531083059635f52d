//! Time formats the API uses.

/// Go's RFC3339Nano in the server's local offset: trailing zeros of the fraction trimmed,
/// no fraction when it is zero, `Z` for UTC.
pub fn rfc3339_nano_local() -> String {
    format_local(chrono::Local::now())
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
