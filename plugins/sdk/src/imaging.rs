//! Helpers every image provider needs (feature `vision`): the endpoint and its path join, the
//! model and size settings, base64 images, content types, and vendor errors in one shape.
//!
//! ```
//! use sceneintruder_plugin_sdk::imaging;
//!
//! assert_eq!(
//!     imaging::join_path("https://api.example/v1/", "/images/generations"),
//!     "https://api.example/v1/images/generations"
//! );
//! assert_eq!(imaging::format_of("image/jpeg"), "jpg");
//! assert_eq!(imaging::decode_base64_image("data:image/png;base64,aGk=").unwrap(), b"hi");
//! ```

use base64::Engine as _;

use crate::types::{ProviderError, RateLimit, UpstreamError};

/// Longest vendor body quoted in an error, in bytes.
pub const ERROR_BODY_BYTES: usize = 240;

/// The endpoint: the `base_url` setting (the one whose origin the host grants; the settings
/// API's `endpoint` is stored under it), trimmed, without trailing `/`. It must be an `http` or
/// `https` URL, else `not-configured` with `<provider> endpoint required`.
pub fn endpoint(provider: &str) -> Result<String, ProviderError> {
    let value = crate::config::get_non_empty("base_url")
        .or_else(|| crate::config::get_non_empty("endpoint"))
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .unwrap_or_default();
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value)
    } else {
        Err(ProviderError::NotConfigured(format!(
            "{provider} endpoint required"
        )))
    }
}

/// Append `path` to `endpoint` with URL path-join semantics: one `/` between segments, `.` and
/// `..` resolved, no trailing `/`; the endpoint's query string is kept.
pub fn join_path(endpoint: &str, path: &str) -> String {
    let (base, query) = match endpoint.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (endpoint, None),
    };
    // Keep `scheme://authority` as it is; join only the path.
    let (origin, base_path) = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            match after.find('/') {
                Some(j) => (&base[..i + 3 + j], &after[j..]),
                None => (base, ""),
            }
        }
        None => ("", base),
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in base_path.split('/').chain(path.split('/')) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut url = format!("{origin}/{}", segments.join("/"));
    if url.ends_with('/') && !segments.is_empty() {
        url.pop();
    }
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// `(w, h)`, each replaced by `default` when zero.
pub fn size_or(width: u32, height: u32, default: u32) -> (u32, u32) {
    let pick = |v: u32| if v == 0 { default } else { v };
    (pick(width), pick(height))
}

/// The vendor model id for catalog key `key` (or `default_key` when empty): the setting
/// `model_<key>` when set, else the setting `model`, else the key itself.
pub fn vendor_model(key: &str, default_key: &str) -> String {
    let key = model_key(key, default_key);
    model_override(&key).unwrap_or(key)
}

/// The catalog key asked for: `key` trimmed, or `default_key` when blank.
pub fn model_key(key: &str, default_key: &str) -> String {
    let key = key.trim();
    if key.is_empty() { default_key } else { key }.to_string()
}

/// The operator's vendor model id for catalog key `key`: the setting `model_<key>`, else
/// `model`; `None` when neither is set (the plugin then picks its own id for the key).
pub fn model_override(key: &str) -> Option<String> {
    crate::config::get_non_empty(&format!("model_{key}"))
        .or_else(|| crate::config::get_non_empty("model"))
}

/// The size string for catalog key `key`: the setting `size_<key>`, else `size`, else
/// `"<w>x<h>"` (zero sides become 1024).
pub fn size_setting(key: &str, width: u32, height: u32) -> String {
    size_override(key).unwrap_or_else(|| {
        let (w, h) = size_or(width, height, 1024);
        format!("{w}x{h}")
    })
}

/// The operator's size string for catalog key `key`: the setting `size_<key>`, else `size`;
/// `None` when neither is set (the plugin then derives one from the requested size).
pub fn size_override(key: &str) -> Option<String> {
    crate::config::get_non_empty(&format!("size_{key}"))
        .or_else(|| crate::config::get_non_empty("size"))
}

/// `(w, h)` from a size string `"<w>x<h>"` (also `*` or `X` between); `None` for anything
/// else (`"2K"`, `"auto"`, zero sides).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.trim().split_once(['x', 'X', '*'])?;
    let (w, h) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// The entry of `supported` closest to `(w, h)`: nearest aspect ratio first, then nearest
/// area (for vendors that draw only a few fixed sizes). `(w, h)` when `supported` is empty.
pub fn nearest_size(width: u32, height: u32, supported: &[(u32, u32)]) -> (u32, u32) {
    let (w, h) = size_or(width, height, 1024);
    let ln_ratio = |a: f64, b: f64| (a / b).ln().abs();
    let distance = |&(sw, sh): &(u32, u32)| {
        let aspect = ln_ratio(
            f64::from(sw) / f64::from(sh.max(1)),
            f64::from(w) / f64::from(h),
        );
        let area = ln_ratio(f64::from(sw) * f64::from(sh), f64::from(w) * f64::from(h));
        // Aspect ratios closer than 1% count as equal; the area decides between them.
        ((aspect * 100.0).round(), area)
    };
    supported
        .iter()
        .copied()
        .min_by(|a, b| {
            let (a, b) = (distance(a), distance(b));
            a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
        })
        .unwrap_or((w, h))
}

/// What a vendor accepts as a free-form size: each side within `min_side..=max_side` and a
/// multiple of `multiple`, the pixel count within `min_pixels..=max_pixels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    pub min_side: u32,
    pub max_side: u32,
    pub multiple: u32,
    pub min_pixels: u64,
    pub max_pixels: u64,
}

/// `(w, h)` (zero sides 1024) scaled as a whole, keeping its aspect ratio, into `range`, then
/// each side rounded to the range's multiple. A size that already fits only gets rounded.
/// (`max_pixels: u64::MAX` and `min_pixels: 0` leave the pixel count free.)
pub fn fit_size(width: u32, height: u32, range: &SizeRange) -> (u32, u32) {
    let step = range.multiple.max(1);
    let lowest = range.min_side.div_ceil(step) * step;
    let highest = (range.max_side / step * step).max(lowest);
    let (w, h) = size_or(width, height, 1024);
    let (wf, hf) = (f64::from(w), f64::from(h));
    let area = wf * hf;
    let up = (f64::from(range.min_side) / wf.min(hf)).max((range.min_pixels as f64 / area).sqrt());
    let down =
        (f64::from(range.max_side) / wf.max(hf)).min((range.max_pixels as f64 / area).sqrt());
    // When no scale satisfies both ends (an extreme aspect ratio), the upper limits win.
    let scale = if up > down {
        down
    } else {
        1f64.clamp(up, down)
    };
    // Round towards the limit that moved the size, so rounding does not cross it again.
    let round = if scale > 1.0 {
        f64::ceil
    } else if scale < 1.0 {
        f64::floor
    } else {
        f64::round
    };
    let side = |v: f64| {
        let rounded = round(v * scale / f64::from(step)) * f64::from(step);
        (rounded as u32).clamp(lowest, highest)
    };
    let (mut w, mut h) = (side(wf), side(hf));
    let pixels = |w: u32, h: u32| u64::from(w) * u64::from(h);
    // Rounding may cross a pixel limit by a step: shrink the longer side, grow the shorter.
    while pixels(w, h) > range.max_pixels && w.max(h) > lowest {
        if w >= h { w -= step } else { h -= step }
    }
    while pixels(w, h) < range.min_pixels && w.min(h) < highest {
        if w <= h { w += step } else { h += step }
    }
    (w, h)
}

/// The vendor model id for catalog key `key`: the operator's setting when given, else the id
/// the catalog `(key, display name, vendor id)` lists for the key, else the key itself.
pub fn catalog_model_id(
    catalog: &[(&str, &str, &str)],
    key: &str,
    configured: Option<String>,
) -> String {
    configured.unwrap_or_else(|| {
        catalog
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(key, |(_, _, id)| id)
            .to_string()
    })
}

/// `POST <endpoint><generation_path or default_path>` with the Bearer key and a JSON body; a
/// non-2xx answer is [`failure`]`(provider, "request", ..)`, a 2xx body is parsed as JSON.
pub fn post_generation<T: serde::de::DeserializeOwned>(
    provider: &str,
    endpoint: &str,
    default_path: &str,
    body: &serde_json::Value,
    timeout_ms: Option<u32>,
) -> Result<T, ProviderError> {
    let path =
        crate::config::get_non_empty("generation_path").unwrap_or_else(|| default_path.to_string());
    let mut request = crate::http::post_json(
        &join_path(endpoint, &path),
        vec![crate::http::bearer("api_key")],
        body,
    );
    request.timeout_ms = timeout_ms;
    let response = crate::http::send_mapped(&request, |status, headers, body| {
        failure(provider, "request", status, headers, body)
    })?;
    crate::http::parse_json(&response.body)
}

/// Decode an image given as plain base64 or as a data URL (`data:image/png;base64,...`).
pub fn decode_base64_image(text: &str) -> Result<Vec<u8>, ProviderError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ProviderError::BadResponse("empty base64 image".into()));
    }
    let payload = match text.find(',') {
        Some(i) if i > 0 && text[..i].contains("base64") => &text[i + 1..],
        _ => text,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| ProviderError::BadResponse(format!("invalid base64 image: {e}")))?;
    if bytes.is_empty() {
        return Err(ProviderError::BadResponse("decoded empty image".into()));
    }
    Ok(bytes)
}

/// Standard base64 of `bytes` (no data-URL prefix), e.g. for an img2img input.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `jpg`, `webp` or `png`, from a content type.
pub fn format_of(content_type: &str) -> &'static str {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("jpeg") || ct.contains("jpg") {
        "jpg"
    } else if ct.contains("webp") {
        "webp"
    } else {
        "png"
    }
}

/// The content type for a format (`jpg`, `webp`, else PNG).
pub fn content_type_of(format: &str) -> &'static str {
    match format {
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "image/png",
    }
}

/// The content type an image URL suggests by its file extension (`.jpeg`/`.jpg`, `.webp`,
/// else PNG), for a result the host downloads (the host sniffs the bytes in the end).
pub fn content_type_of_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    content_type_of(format_of(extension))
}

/// A non-2xx vendor answer as a typed error whose message reads
/// `<provider> <action> failed: status=<code> body=<body, whitespace collapsed, 240 bytes>`.
pub fn failure(
    provider: &str,
    action: &str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> ProviderError {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut message = format!("{provider} {action} failed: status={status}");
    if !collapsed.is_empty() {
        let cut = crate::http::truncate(&collapsed, ERROR_BODY_BYTES);
        let cut = cut
            .strip_suffix('…')
            .map_or(cut.clone(), |c| format!("{c}..."));
        message.push_str(&format!(" body={cut}"));
    }
    match crate::http::status_error(status, headers, body) {
        ProviderError::BadRequest(_) => {
            ProviderError::BadRequest(UpstreamError { status, message })
        }
        ProviderError::Unauthorized(_) => {
            ProviderError::Unauthorized(UpstreamError { status, message })
        }
        ProviderError::RateLimited(limit) => ProviderError::RateLimited(RateLimit {
            retry_after_ms: limit.retry_after_ms,
            message,
        }),
        _ => ProviderError::Upstream(UpstreamError { status, message }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_like_urls() {
        let cases = [
            (
                "https://dashscope.aliyuncs.com/api/v1",
                "/services/aigc/video-generation/video-synthesis",
                "https://dashscope.aliyuncs.com/api/v1/services/aigc/video-generation/video-synthesis",
            ),
            (
                "https://a.example",
                "images/generations",
                "https://a.example/images/generations",
            ),
            (
                "https://a.example/v1//",
                "//x/./y/",
                "https://a.example/v1/x/y",
            ),
            (
                "https://a.example/v1/beta",
                "../v2/go",
                "https://a.example/v1/v2/go",
            ),
            (
                "https://a.example/v1?k=1",
                "/images",
                "https://a.example/v1/images?k=1",
            ),
        ];
        for (endpoint, path, want) in cases {
            assert_eq!(join_path(endpoint, path), want, "{endpoint} + {path}");
        }
    }

    #[test]
    fn base64_images_plain_or_data_urls() {
        assert_eq!(decode_base64_image("aGk=").unwrap(), b"hi");
        assert_eq!(
            decode_base64_image(" data:image/png;base64,aGk= ").unwrap(),
            b"hi"
        );
        assert!(
            matches!(decode_base64_image("  "), Err(ProviderError::BadResponse(m)) if m == "empty base64 image")
        );
        assert!(
            matches!(decode_base64_image("data:image/png;base64,"), Err(ProviderError::BadResponse(m)) if m == "decoded empty image")
        );
        assert!(decode_base64_image("not base64!").is_err());
    }

    #[test]
    fn formats_follow_the_content_type() {
        assert_eq!(format_of("image/JPEG"), "jpg");
        assert_eq!(format_of("image/jpg"), "jpg");
        assert_eq!(format_of("image/webp"), "webp");
        assert_eq!(format_of("image/png"), "png");
        assert_eq!(format_of(""), "png");
        assert_eq!(content_type_of("jpg"), "image/jpeg");
        assert_eq!(size_or(0, 300, 512), (512, 300));
        assert_eq!(
            content_type_of_url("https://cdn.example/a/b.jpeg?X-Sig=1.png"),
            "image/jpeg"
        );
        assert_eq!(
            content_type_of_url("https://cdn.example/b.WEBP"),
            "image/webp"
        );
        assert_eq!(
            content_type_of_url("https://cdn.example/v1.2/image"),
            "image/png"
        );
    }

    #[test]
    fn sizes_parse_snap_and_fit() {
        assert_eq!(parse_size(" 1024x768 "), Some((1024, 768)));
        assert_eq!(parse_size("512*512"), Some((512, 512)));
        assert_eq!(parse_size("2K"), None);
        assert_eq!(parse_size("0x512"), None);

        let gpt = [(1024, 1024), (1536, 1024), (1024, 1536)];
        assert_eq!(nearest_size(512, 512, &gpt), (1024, 1024));
        assert_eq!(nearest_size(1920, 1080, &gpt), (1536, 1024));
        assert_eq!(nearest_size(600, 800, &gpt), (1024, 1536));
        assert_eq!(nearest_size(0, 0, &gpt), (1024, 1024));
        let squares = [(256, 256), (512, 512), (1024, 1024)];
        assert_eq!(nearest_size(500, 520, &squares), (512, 512));
        assert_eq!(nearest_size(300, 200, &[]), (300, 200));

        let large = SizeRange {
            min_side: 64,
            max_side: 4096,
            multiple: 64,
            min_pixels: 3_686_400,
            max_pixels: 16_777_216,
        };
        assert_eq!(fit_size(512, 512, &large), (1920, 1920));
        assert_eq!(fit_size(2048, 2048, &large), (2048, 2048));
        let (w, h) = fit_size(512, 768, &large);
        assert!(
            w * h >= 3_686_400 && w % 64 == 0 && h % 64 == 0 && h > w,
            "{w}x{h}"
        );
        assert_eq!(fit_size(8000, 8000, &large), (4096, 4096));

        let glm = SizeRange {
            min_side: 1024,
            max_side: 2048,
            multiple: 32,
            min_pixels: 0,
            max_pixels: 1 << 22,
        };
        assert_eq!(fit_size(512, 512, &glm), (1024, 1024));
        assert_eq!(fit_size(1280, 1280, &glm), (1280, 1280));
        assert_eq!(fit_size(1000, 1000, &glm), (1024, 1024));
        let (w, h) = fit_size(1920, 1080, &glm);
        assert!(
            w <= 2048 && h >= 1024 && w % 32 == 0 && h % 32 == 0,
            "{w}x{h}"
        );
        assert!(u64::from(w) * u64::from(h) <= 1 << 22);
        // An aspect ratio beyond the range keeps within the sides.
        let (w, h) = fit_size(4000, 100, &glm);
        assert!(
            (1024..=2048).contains(&w) && (1024..=2048).contains(&h),
            "{w}x{h}"
        );
    }

    #[test]
    fn vendor_failures_are_typed_and_quote_the_body() {
        let body = format!("{{\"error\":  \"bad\n key\"}} {}", "x".repeat(400));
        match failure("openai", "request", 401, &[], body.as_bytes()) {
            ProviderError::Unauthorized(e) => {
                assert!(
                    e.message.starts_with(
                        "openai request failed: status=401 body={\"error\": \"bad key\"}"
                    ),
                    "{}",
                    e.message
                );
                assert!(e.message.ends_with("..."), "{}", e.message);
                assert!(e.message.len() < 320, "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        match failure("ark", "request", 500, &[], b"") {
            ProviderError::Upstream(e) => assert_eq!(e.message, "ark request failed: status=500"),
            other => panic!("{other:?}"),
        }
    }
}
