//! Serving a stored blob over HTTP: the sniffed content type, validators (`ETag`,
//! `Last-Modified`), conditional requests (`304`) and single byte ranges (`206`, `416`), so
//! images cache well and video players can seek.
//!
//! Routes build the [`BlobKey`] from their validated path ids and hand it here; nothing from
//! the request names a location.

use std::ops::RangeInclusive;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sceneintruder_blobs::{BlobError, BlobKey, BlobMeta, BlobStore};

use crate::error::{Resource, ServerError};

/// `Cache-Control` of blobs that may change under the same URL (frame images, references).
pub const NO_STORE: &str = "no-store";

/// Reads retried when the blob is replaced between its metadata and its bytes.
const ATTEMPTS: usize = 3;

/// Answer a `GET`/`HEAD` of the blob under `key`: `200` with the bytes, `304` for a matching
/// `If-None-Match` / `If-Modified-Since`, `206` for one satisfiable `Range: bytes=…`, `416`
/// for an unsatisfiable one; a missing blob is the envelope 404 of `missing`.
pub async fn serve(
    store: &BlobStore,
    key: &BlobKey,
    method: &Method,
    headers: &HeaderMap,
    cache_control: &str,
    missing: Resource,
) -> Response {
    for _ in 0..ATTEMPTS {
        let meta = match store.head(key).await {
            Ok(meta) => meta,
            Err(e) => return ServerError::blob(missing, e).into_response(),
        };
        let validators = validators(&meta, cache_control);
        if not_modified(headers, &meta) {
            return with_headers(StatusCode::NOT_MODIFIED, validators, Body::empty());
        }
        let part = match requested_range(headers, &meta) {
            Requested::Whole => None,
            Requested::Part(range) => Some(range),
            Requested::Unsatisfiable => return unsatisfiable(&meta, validators),
        };
        let (status, length) = match &part {
            Some(range) => (StatusCode::PARTIAL_CONTENT, range.end() - range.start() + 1),
            None => (StatusCode::OK, meta.size),
        };
        let mut headers_out = validators;
        headers_out.insert(header::CONTENT_TYPE, content_type(&meta.content_type));
        headers_out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        if let Some(range) = &part {
            headers_out.insert(
                header::CONTENT_RANGE,
                header_value(&format!(
                    "bytes {}-{}/{}",
                    range.start(),
                    range.end(),
                    meta.size
                )),
            );
        }
        if method == Method::HEAD {
            return with_headers(status, headers_out, Body::empty());
        }
        let read = store
            .read(
                key,
                part.map(|range| *range.start()..range.end() + 1),
                Some(&meta),
            )
            .await;
        match read {
            Ok(reader) => {
                return with_headers(status, headers_out, Body::from_stream(reader.stream));
            }
            // Replaced between the metadata and the bytes: start again with the new version.
            Err(BlobError::Changed { .. }) => continue,
            Err(e) => return ServerError::blob(missing, e).into_response(),
        }
    }
    ServerError::internal(format!("blob {key} kept changing while it was read")).into_response()
}

/// What the `Range` header asks for, given the blob's size.
#[derive(Debug, PartialEq, Eq)]
enum Requested {
    Whole,
    Part(RangeInclusive<u64>),
    Unsatisfiable,
}

/// One `bytes=a-b`, `a-` or `-n` range is served as such. A malformed header, several
/// ranges, or an `If-Range` that no longer matches get the whole blob (RFC 9110 lets a
/// server ignore `Range`); ranges that all start past the end are `416`.
fn requested_range(headers: &HeaderMap, meta: &BlobMeta) -> Requested {
    let mut values = headers.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Requested::Whole;
    };
    let Ok(text) = value.to_str() else {
        return Requested::Whole;
    };
    if !if_range_matches(headers, meta) {
        return Requested::Whole;
    }
    let Ok(parsed) = http_range_header::parse_range_header(text) else {
        return Requested::Whole;
    };
    match parsed.validate(meta.size) {
        Ok(ranges) if ranges.len() == 1 => match ranges.into_iter().next() {
            Some(range) => Requested::Part(range),
            None => Requested::Whole,
        },
        // Several ranges (a multipart answer is not worth it here) or an empty blob.
        Ok(_) => Requested::Whole,
        Err(http_range_header::RangeUnsatisfiableError::Unsatisfiable) => Requested::Unsatisfiable,
        Err(_) => Requested::Whole,
    }
}

/// `If-Range`: absent, the blob's strong etag, or exactly its `Last-Modified` date.
fn if_range_matches(headers: &HeaderMap, meta: &BlobMeta) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        // Strong comparison: a weak tag never matches.
        return text == meta.etag;
    }
    http_date(text).is_some_and(|date| date.timestamp() == meta.updated.timestamp())
}

/// `If-None-Match` (weak comparison, `*` for any) or, without it, `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, meta: &BlobMeta) -> bool {
    let mut if_none_match = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if if_none_match.peek().is_some() {
        return if_none_match
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == meta.etag);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date)
        .is_some_and(|since| meta.updated.timestamp() <= since.timestamp())
}

/// An HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Headers every answer about this version carries (`200`, `206`, `304`, `416`).
fn validators(meta: &BlobMeta, cache_control: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, header_value(&meta.etag));
    headers.insert(
        header::LAST_MODIFIED,
        header_value(&meta.updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    );
    headers.insert(header::CACHE_CONTROL, header_value(cache_control));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // The type was sniffed by us; browsers must not guess another, and a blob opened on its
    // own never runs script with this origin's rights.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers
}

fn unsatisfiable(meta: &BlobMeta, validators: HeaderMap) -> Response {
    let mut response = ServerError::Rejected {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        details: format!("the blob has {} bytes", meta.size),
    }
    .into_response();
    let out = response.headers_mut();
    for (name, value) in &validators {
        out.insert(name, value.clone());
    }
    out.insert(
        header::CONTENT_RANGE,
        header_value(&format!("bytes */{}", meta.size)),
    );
    response
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn content_type(value: &str) -> HeaderValue {
    HeaderValue::from_str(value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Values built here from our own metadata are always valid header text; an empty value
/// stands in should one ever not be.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::http::Request;
    use axum::routing::get;
    use bytes::Bytes;
    use sceneintruder_blobs::conformance::{large_png, samples};
    use tower::ServiceExt;

    /// A route like the comic ones will be: ids from the path, the key built from them.
    async fn frame(
        State(store): State<BlobStore>,
        Path(frame_id): Path<String>,
        method: Method,
        headers: HeaderMap,
    ) -> Response {
        match BlobKey::comic_frame("scene_t", &frame_id) {
            Ok(key) => {
                serve(
                    &store,
                    &key,
                    &method,
                    &headers,
                    NO_STORE,
                    Resource::ComicImage,
                )
                .await
            }
            Err(e) => ServerError::blob(Resource::ComicImage, e).into_response(),
        }
    }

    fn app(store: BlobStore) -> Router {
        Router::new()
            .route("/frames/{frame_id}", get(frame))
            .with_state(store)
    }

    async fn call(
        store: &BlobStore,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = app(store.clone())
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, headers, body)
    }

    fn text(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    fn stores() -> Vec<(BlobStore, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().expect("dir");
        let local = BlobStore::open(&Default::default(), dir.path()).expect("local store");
        vec![(BlobStore::memory(), None), (local, Some(dir))]
    }

    async fn put(store: &BlobStore, frame: &str, bytes: Bytes) -> BlobMeta {
        store
            .put(&BlobKey::comic_frame("scene_t", frame).expect("key"), bytes)
            .await
            .expect("put")
    }

    #[tokio::test]
    async fn blob_whole_answer_carries_type_validators_and_caching() {
        for (store, _dir) in stores() {
            let meta = put(&store, "frame_1", Bytes::from_static(samples::PNG)).await;
            let (status, headers, body) = call(&store, Method::GET, "/frames/frame_1", &[]).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body.as_ref(), samples::PNG);
            assert_eq!(text(&headers, header::CONTENT_TYPE), "image/png");
            assert_eq!(
                text(&headers, header::CONTENT_LENGTH),
                samples::PNG.len().to_string()
            );
            assert_eq!(text(&headers, header::ETAG), meta.etag);
            assert!(text(&headers, header::ETAG).starts_with('"'));
            assert_eq!(text(&headers, header::CACHE_CONTROL), "no-store");
            assert_eq!(text(&headers, header::ACCEPT_RANGES), "bytes");
            assert_eq!(text(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            let modified = text(&headers, header::LAST_MODIFIED);
            assert!(modified.ends_with(" GMT"), "{modified}");
            assert_eq!(
                http_date(modified).map(|d| d.timestamp()),
                Some(meta.updated.timestamp())
            );

            // The type comes from the bytes: a JPEG stored under a frame id is served as one,
            // HTML never as HTML.
            put(&store, "frame_2", Bytes::from_static(samples::JPEG)).await;
            let (_, headers, _) = call(&store, Method::GET, "/frames/frame_2", &[]).await;
            assert_eq!(text(&headers, header::CONTENT_TYPE), "image/jpeg");
            put(&store, "frame_3", Bytes::from_static(samples::HTML)).await;
            let (_, headers, _) = call(&store, Method::GET, "/frames/frame_3", &[]).await;
            assert_eq!(
                text(&headers, header::CONTENT_TYPE),
                "application/octet-stream"
            );
            assert_eq!(text(&headers, header::CONTENT_SECURITY_POLICY), "sandbox");

            let (status, headers, body) = call(&store, Method::HEAD, "/frames/frame_1", &[]).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.is_empty());
            assert_eq!(
                text(&headers, header::CONTENT_LENGTH),
                samples::PNG.len().to_string()
            );
        }
    }

    #[tokio::test]
    async fn blob_conditional_requests_answer_304() {
        for (store, _dir) in stores() {
            let meta = put(&store, "frame_1", Bytes::from_static(samples::PNG)).await;
            let weak = format!("W/{}", meta.etag);
            let listed = format!("\"nope\", {}", meta.etag);
            for matching in [meta.etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
                let (status, headers, body) = call(
                    &store,
                    Method::GET,
                    "/frames/frame_1",
                    &[(header::IF_NONE_MATCH, matching)],
                )
                .await;
                assert_eq!(status, StatusCode::NOT_MODIFIED, "{matching}");
                assert!(body.is_empty());
                assert_eq!(text(&headers, header::ETAG), meta.etag);
                assert_eq!(text(&headers, header::CACHE_CONTROL), "no-store");
            }
            let (status, _, body) = call(
                &store,
                Method::GET,
                "/frames/frame_1",
                &[(header::IF_NONE_MATCH, "\"other\"")],
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body.as_ref(), samples::PNG);

            let later = (meta.updated + chrono::Duration::hours(1))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            let earlier = (meta.updated - chrono::Duration::hours(1))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            let (status, _, _) = call(
                &store,
                Method::GET,
                "/frames/frame_1",
                &[(header::IF_MODIFIED_SINCE, later.as_str())],
            )
            .await;
            assert_eq!(status, StatusCode::NOT_MODIFIED);
            let (status, _, _) = call(
                &store,
                Method::GET,
                "/frames/frame_1",
                &[(header::IF_MODIFIED_SINCE, earlier.as_str())],
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            // If-None-Match wins over If-Modified-Since.
            let (status, _, _) = call(
                &store,
                Method::GET,
                "/frames/frame_1",
                &[
                    (header::IF_NONE_MATCH, "\"other\""),
                    (header::IF_MODIFIED_SINCE, later.as_str()),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            // A replaced blob has a new etag: the old one no longer matches.
            put(&store, "frame_1", Bytes::from_static(samples::JPEG)).await;
            let (status, _, body) = call(
                &store,
                Method::GET,
                "/frames/frame_1",
                &[(header::IF_NONE_MATCH, meta.etag.as_str())],
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body.as_ref(), samples::JPEG);
        }
    }

    #[tokio::test]
    async fn blob_single_ranges_answer_206() {
        for (store, _dir) in stores() {
            let body = large_png(200_000);
            let len = body.len();
            let meta = put(&store, "clip", body.clone()).await;
            for (range, start, end) in [
                ("bytes=2-5", 2, 5),
                ("bytes=150000-", 150_000, len - 1),
                ("bytes=-4", len - 4, len - 1),
                ("bytes=-999999999", 0, len - 1),
                ("bytes=199990-300000", 199_990, len - 1),
                ("bytes=0-0", 0, 0),
            ] {
                let (status, headers, got) = call(
                    &store,
                    Method::GET,
                    "/frames/clip",
                    &[(header::RANGE, range)],
                )
                .await;
                assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
                assert_eq!(got.as_ref(), &body[start..=end], "{range}");
                assert_eq!(
                    text(&headers, header::CONTENT_RANGE),
                    format!("bytes {start}-{end}/{len}"),
                    "{range}"
                );
                assert_eq!(
                    text(&headers, header::CONTENT_LENGTH),
                    (end - start + 1).to_string()
                );
                assert_eq!(text(&headers, header::CONTENT_TYPE), "image/png");
                assert_eq!(text(&headers, header::ETAG), meta.etag);
            }
            // Ignored: malformed, another unit, several ranges, a stale If-Range.
            for (name, value) in [
                (header::RANGE, "bytes=abc"),
                (header::RANGE, "items=0-5"),
                (header::RANGE, "bytes=5-2"),
                (header::RANGE, "bytes=0-1,4-5"),
            ] {
                let (status, headers, got) =
                    call(&store, Method::GET, "/frames/clip", &[(name, value)]).await;
                assert_eq!(status, StatusCode::OK, "{value}");
                assert_eq!(got.len(), len, "{value}");
                assert!(headers.get(header::CONTENT_RANGE).is_none());
            }
            let (status, _, got) = call(
                &store,
                Method::GET,
                "/frames/clip",
                &[
                    (header::RANGE, "bytes=0-9"),
                    (header::IF_RANGE, "\"stale\""),
                ],
            )
            .await;
            assert_eq!((status, got.len()), (StatusCode::OK, len));
            let (status, _, got) = call(
                &store,
                Method::GET,
                "/frames/clip",
                &[
                    (header::RANGE, "bytes=0-9"),
                    (header::IF_RANGE, meta.etag.as_str()),
                ],
            )
            .await;
            assert_eq!((status, got.len()), (StatusCode::PARTIAL_CONTENT, 10));
            let modified = meta.updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let (status, _, _) = call(
                &store,
                Method::GET,
                "/frames/clip",
                &[
                    (header::RANGE, "bytes=0-9"),
                    (header::IF_RANGE, modified.as_str()),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            let (status, headers, got) = call(
                &store,
                Method::HEAD,
                "/frames/clip",
                &[(header::RANGE, "bytes=10-19")],
            )
            .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            assert!(got.is_empty());
            assert_eq!(text(&headers, header::CONTENT_LENGTH), "10");

            put(&store, "movie", Bytes::from_static(samples::MP4)).await;
            let (status, headers, got) = call(
                &store,
                Method::GET,
                "/frames/movie",
                &[(header::RANGE, "bytes=4-11")],
            )
            .await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            assert_eq!(got.as_ref(), b"ftypisom");
            assert_eq!(text(&headers, header::CONTENT_TYPE), "video/mp4");
        }
    }

    #[tokio::test]
    async fn blob_unsatisfiable_ranges_answer_416() {
        for (store, _dir) in stores() {
            let len = samples::PNG.len();
            put(&store, "frame_1", Bytes::from_static(samples::PNG)).await;
            for range in [
                format!("bytes={len}-"),
                format!("bytes={}-{}", len + 10, len + 20),
                "bytes=-0".to_string(),
            ] {
                let (status, headers, body) = call(
                    &store,
                    Method::GET,
                    "/frames/frame_1",
                    &[(header::RANGE, range.as_str())],
                )
                .await;
                assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
                assert_eq!(
                    text(&headers, header::CONTENT_RANGE),
                    format!("bytes */{len}")
                );
                let envelope: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(envelope["error"]["code"], "RANGE_NOT_SATISFIABLE");
            }
            // An empty blob has no satisfiable byte range, but a plain GET is fine.
            put(&store, "empty", Bytes::new()).await;
            let (status, headers, body) = call(&store, Method::GET, "/frames/empty", &[]).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.is_empty());
            assert_eq!(text(&headers, header::CONTENT_LENGTH), "0");
            let (status, _, _) = call(
                &store,
                Method::GET,
                "/frames/empty",
                &[(header::RANGE, "bytes=0-")],
            )
            .await;
            assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        }
    }

    #[tokio::test]
    async fn blob_missing_or_hostile_keys_answer_the_envelope() {
        for (store, _dir) in stores() {
            let (status, _, body) = call(&store, Method::GET, "/frames/frame_9", &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let envelope: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(envelope["success"], false);
            assert_eq!(envelope["error"]["code"], "COMIC_IMAGE_NOT_FOUND");
            assert_eq!(envelope["error"]["message"], "图片不存在");
            for hostile in ["..", "%2e%2e", "a%2Fb", "frame.png", "%00"] {
                let (status, _, body) =
                    call(&store, Method::GET, &format!("/frames/{hostile}"), &[]).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile}");
                let envelope: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(envelope["error"]["code"], "BAD_REQUEST");
            }
        }
    }
}
