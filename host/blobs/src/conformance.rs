//! One behaviour suite every backend must pass: the crate's unit tests run it on memory and
//! local files, the end-to-end tests on a real S3-compatible server (feature `conformance`).

use bytes::Bytes;

use crate::{BlobError, BlobKey, BlobStore, Namespace, OCTET_STREAM};

/// Small files of each kind the server stores, by their magic numbers.
pub mod samples {
    pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    pub const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    pub const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0\x30\x01\0\x9d\x01\x2a";
    pub const MP4: &[u8] = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2mp41\0\0\0\x08free";
    pub const ZIP: &[u8] = b"PK\x03\x04\x14\0\0\0\x08\0\0\0!\0";
    pub const HTML: &[u8] = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
    pub const UNKNOWN: &[u8] = b"just some words, no magic here";

    /// `(bytes, content type the store must report)`.
    pub const ALL: &[(&[u8], &str)] = &[
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (MP4, "video/mp4"),
        (ZIP, "application/zip"),
        (HTML, super::OCTET_STREAM),
        (UNKNOWN, super::OCTET_STREAM),
    ];
}

/// A PNG of `len` bytes (signature, then a pattern), for range reads past the sniffed head.
pub fn large_png(len: usize) -> Bytes {
    let mut bytes = samples::PNG.to_vec();
    let mut i: u32 = 0;
    while bytes.len() < len {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push((i >> 16) as u8);
    }
    bytes.truncate(len);
    Bytes::from(bytes)
}

/// Run every check against `store`; `run` keeps the keys of concurrent runs apart.
pub async fn run(store: &BlobStore, run: &str) {
    round_trip(store, run).await;
    ranges(store, run).await;
    overwrite(store, run).await;
    sniffing(store, run).await;
    missing(store, run).await;
    size_cap(store, run).await;
    delete_prefix(store, run).await;
    store.check().await.expect("check");
    let probes = store
        .list(&BlobKey::namespace(Namespace::System))
        .await
        .expect("list probes");
    assert!(
        probes.is_empty(),
        "check leaves no probe behind: {probes:?}"
    );
}

fn scene(run: &str, name: &str) -> String {
    format!("scene_{run}_{name}")
}

async fn round_trip(store: &BlobStore, run: &str) {
    let key = BlobKey::comic_frame(&scene(run, "rt"), "frame_1").expect("key");
    assert!(!store.exists(&key).await.expect("exists"));
    let written = store
        .put(&key, Bytes::from_static(samples::PNG))
        .await
        .expect("put");
    assert_eq!(written.size, samples::PNG.len() as u64);
    assert_eq!(written.content_type, "image/png");
    assert!(
        written.etag.len() > 2 && written.etag.starts_with('"') && written.etag.ends_with('"'),
        "strong quoted etag: {}",
        written.etag
    );
    assert!(store.exists(&key).await.expect("exists"));
    let head = store.head(&key).await.expect("head");
    assert_eq!(head, written, "head reports what put did");
    let blob = store.get(&key).await.expect("get");
    assert_eq!(blob.bytes.as_ref(), samples::PNG);
    assert_eq!(blob.meta, written);
    let empty = BlobKey::comic_frame(&scene(run, "rt"), "empty").expect("key");
    let meta = store.put(&empty, Bytes::new()).await.expect("put empty");
    assert_eq!((meta.size, meta.content_type.as_str()), (0, OCTET_STREAM));
    assert!(store.get(&empty).await.expect("get empty").bytes.is_empty());
}

async fn ranges(store: &BlobStore, run: &str) {
    let key = BlobKey::comic_frame(&scene(run, "range"), "big").expect("key");
    let body = large_png(300_000);
    let len = body.len() as u64;
    store.put(&key, body.clone()).await.expect("put");
    let part = store.get_range(&key, 2..6).await.expect("range");
    assert_eq!(part.as_ref(), &body[2..6]);
    // Far from the sniffed head: the content type still comes out right.
    let reader = store
        .read(&key, Some(250_000..250_100), None)
        .await
        .expect("read");
    assert_eq!(reader.range, 250_000..250_100);
    assert_eq!(reader.meta.content_type, "image/png");
    assert_eq!(reader.meta.size, len);
    assert_eq!(
        reader.bytes().await.expect("bytes").as_ref(),
        &body[250_000..250_100]
    );
    let tail = store
        .get_range(&key, len - 10..len + 1000)
        .await
        .expect("cut at the end");
    assert_eq!(tail.as_ref(), &body[body.len() - 10..]);
    let whole = store.read(&key, None, None).await.expect("whole");
    assert_eq!(whole.range, 0..len);
    assert_eq!(whole.bytes().await.expect("bytes"), body);
    for bad in [len..len + 5, len + 100..len + 200, 5..5] {
        match store.get_range(&key, bad.clone()).await {
            Err(BlobError::RangeNotSatisfiable { size }) => assert_eq!(size, len),
            other => panic!("{bad:?}: expected RangeNotSatisfiable, got {other:?}"),
        }
    }
}

async fn overwrite(store: &BlobStore, run: &str) {
    let key = BlobKey::comic_reference(&scene(run, "over"), "char_lin").expect("key");
    let first = store
        .put(&key, Bytes::from_static(samples::PNG))
        .await
        .expect("put");
    let second = store
        .put(&key, Bytes::from_static(samples::JPEG))
        .await
        .expect("overwrite");
    assert_ne!(first.etag, second.etag, "a new version has a new etag");
    assert_eq!(second.content_type, "image/jpeg");
    let blob = store.get(&key).await.expect("get");
    assert_eq!(blob.bytes.as_ref(), samples::JPEG);
    assert_eq!(blob.meta.content_type, "image/jpeg");
    // A read bound to the old version notices the new one.
    match store.read(&key, None, Some(&first)).await {
        Err(BlobError::Changed { .. }) => {}
        other => panic!("expected Changed, got {other:?}"),
    }
    let bound = store
        .read(&key, Some(0..3), Some(&second))
        .await
        .expect("read the current version");
    assert_eq!(
        bound.bytes().await.expect("bytes").as_ref(),
        &samples::JPEG[..3]
    );
}

async fn sniffing(store: &BlobStore, run: &str) {
    for (i, (bytes, expected)) in samples::ALL.iter().enumerate() {
        let key = BlobKey::comic_frame(&scene(run, "sniff"), &format!("f{i}")).expect("key");
        let meta = store
            .put(&key, Bytes::from_static(bytes))
            .await
            .expect("put");
        assert_eq!(meta.content_type, *expected, "put of sample {i}");
        assert_eq!(
            store.head(&key).await.expect("head").content_type,
            *expected,
            "head of sample {i}"
        );
        assert_eq!(
            store.get(&key).await.expect("get").meta.content_type,
            *expected,
            "get of sample {i}"
        );
    }
}

async fn missing(store: &BlobStore, run: &str) {
    let key = BlobKey::comic_frame(&scene(run, "missing"), "nothing").expect("key");
    assert!(store.get(&key).await.expect_err("get").is_not_found());
    assert!(store.head(&key).await.expect_err("head").is_not_found());
    assert!(
        store
            .read(&key, Some(0..10), None)
            .await
            .expect_err("read")
            .is_not_found()
    );
    assert!(
        store
            .get_range(&key, 0..10)
            .await
            .expect_err("range")
            .is_not_found()
    );
    assert!(!store.exists(&key).await.expect("exists"));
    store.delete(&key).await.expect("deleting nothing is fine");
}

async fn size_cap(store: &BlobStore, run: &str) {
    let capped = store.with_max_object_bytes(16);
    let key = BlobKey::comic_frame(&scene(run, "cap"), "frame_1").expect("key");
    match capped.put(&key, Bytes::from(vec![7u8; 17])).await {
        Err(BlobError::TooLarge { size: 17, max: 16 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(
        !store.exists(&key).await.expect("exists"),
        "nothing written"
    );
    capped
        .put(&key, Bytes::from(vec![7u8; 16]))
        .await
        .expect("at the cap");
}

async fn delete_prefix(store: &BlobStore, run: &str) {
    let doomed = scene(run, "del");
    // Shares the doomed id as a string prefix, not as a path segment.
    let sibling = format!("{doomed}0");
    let mut keys = Vec::new();
    for frame in ["frame_1", "frame_2", "frame_3"] {
        keys.push(BlobKey::comic_frame(&doomed, frame).expect("key"));
    }
    keys.push(BlobKey::comic_reference(&doomed, "char_lin").expect("key"));
    let survivor = BlobKey::comic_frame(&sibling, "frame_1").expect("key");
    for key in keys.iter().chain([&survivor]) {
        store
            .put(key, Bytes::from_static(samples::PNG))
            .await
            .expect("put");
    }
    let prefix = BlobKey::comic(&doomed).expect("prefix");
    let listed = store.list(&prefix).await.expect("list");
    let mut expected: Vec<String> = keys.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(
        listed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(store.delete_prefix(&prefix).await.expect("delete"), 4);
    for key in &keys {
        assert!(!store.exists(key).await.expect("exists"), "{key} deleted");
    }
    assert!(store.list(&prefix).await.expect("list").is_empty());
    assert!(
        store.exists(&survivor).await.expect("exists"),
        "sibling kept"
    );
    assert_eq!(store.delete_prefix(&prefix).await.expect("again"), 0);
    store.delete(&survivor).await.expect("delete");
    assert!(!store.exists(&survivor).await.expect("exists"));
}
