//! The conformance suite on memory and local files, and what only the local backend shows.

use super::*;

#[tokio::test]
async fn memory_backend_passes_the_suite() {
    let store = BlobStore::memory();
    assert_eq!(store.backend(), Backend::Memory);
    conformance::run(&store, "mem").await;
}

#[tokio::test]
async fn local_backend_passes_the_suite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = BlobStore::open(&BlobConfig::default(), dir.path()).expect("open");
    assert_eq!(store.backend(), Backend::Local);
    conformance::run(&store, "local").await;
}

#[tokio::test]
async fn local_files_live_under_the_data_dir_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("dir");
    let store = BlobStore::open(&BlobConfig::default(), dir.path()).expect("open");
    assert!(store.describe().ends_with("/blobs"), "{}", store.describe());
    let key = BlobKey::comic_frame("scene_1", "frame_1").expect("key");
    store
        .put(&key, Bytes::from_static(conformance::samples::PNG))
        .await
        .expect("put");
    let folder = dir.path().join("blobs/comics/scene_1/images");
    let names: Vec<String> = std::fs::read_dir(&folder)
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    // Written to a temporary file and renamed: only the final name remains.
    assert_eq!(names, vec!["frame_1".to_string()]);
    assert_eq!(
        std::fs::read(folder.join("frame_1")).expect("file"),
        conformance::samples::PNG
    );
    store
        .delete_prefix(&BlobKey::comic("scene_1").expect("prefix"))
        .await
        .expect("delete");
    assert!(
        !dir.path().join("blobs/comics/scene_1").exists(),
        "empty folders go with their blobs"
    );
    store.check().await.expect("check");
    assert!(
        !dir.path().join("blobs/system").exists() || {
            std::fs::read_dir(dir.path().join("blobs/system"))
                .expect("system")
                .next()
                .is_none()
        }
    );
}

#[tokio::test]
async fn a_file_url_names_its_own_folder() {
    let dir = tempfile::tempdir().expect("dir");
    let elsewhere = dir.path().join("shared-blobs");
    let store = BlobStore::open(
        &BlobConfig {
            url: Some(format!("file://{}", elsewhere.display())),
            ..Default::default()
        },
        dir.path(),
    )
    .expect("open");
    let key = BlobKey::comic_reference("scene_9", "el").expect("key");
    store
        .put(&key, Bytes::from_static(b"x"))
        .await
        .expect("put");
    assert!(elsewhere.join("comics/scene_9/references/el").is_file());
    assert!(!dir.path().join("blobs").exists());
}

#[test]
fn size_cap_comes_from_the_config() {
    let dir = tempfile::tempdir().expect("dir");
    let store = BlobStore::open(&BlobConfig::default(), dir.path()).expect("open");
    assert_eq!(store.max_object_bytes(), DEFAULT_MAX_OBJECT_BYTES);
    let store = BlobStore::open(
        &BlobConfig {
            max_object_bytes: Some(1024),
            ..Default::default()
        },
        dir.path(),
    )
    .expect("open");
    assert_eq!(store.max_object_bytes(), 1024);
    let err = BlobStore::open(
        &BlobConfig {
            max_object_bytes: Some(0),
            ..Default::default()
        },
        dir.path(),
    )
    .expect_err("zero");
    assert!(err.to_string().contains("max_object_bytes"), "{err}");
}

#[test]
fn sniffing_reads_magic_numbers_only() {
    for (bytes, expected) in conformance::samples::ALL {
        assert_eq!(sniff(bytes), *expected, "{:?}", &bytes[..8]);
    }
    assert_eq!(sniff(b""), OCTET_STREAM);
    // A PNG signature only after the sniffed head does not count.
    let mut late = vec![0u8; SNIFF_BYTES];
    late.extend_from_slice(conformance::samples::PNG);
    assert_eq!(sniff(&late), OCTET_STREAM);
    assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>"), OCTET_STREAM);
    assert_eq!(sniff(b"#!/bin/sh\nrm -rf /\n"), OCTET_STREAM);
}

#[test]
fn etags_are_strong_and_quoted_whatever_the_backend_wrote() {
    let meta = |e_tag: Option<&str>| ObjectMeta {
        location: object_store::path::Path::from("a"),
        last_modified: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        size: 10,
        e_tag: e_tag.map(String::from),
        version: None,
    };
    assert_eq!(http_etag(&meta(Some("\"abc\""))), "\"abc\"");
    assert_eq!(http_etag(&meta(Some("abc-1"))), "\"abc-1\"");
    let fallback = http_etag(&meta(None));
    assert!(
        fallback.starts_with("\"a-") && fallback.ends_with('"'),
        "{fallback}"
    );
    assert_eq!(http_etag(&meta(Some("a\"b"))), fallback);
    assert_eq!(http_etag(&meta(Some("a b"))), fallback);
    assert_eq!(http_etag(&meta(Some(""))), fallback);
}
