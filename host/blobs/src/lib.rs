//! Binary artefacts of SceneIntruder (reference uploads, frame images, later video clips and
//! renders) behind one [`BlobStore`], built on `object_store`: a folder under the data dir by
//! default (`<data-dir>/blobs`), any S3-compatible store when several servers share it.
//!
//! - Keys are [`BlobKey`]s, built only from validated segments: nothing a request sends can
//!   name a path of its own.
//! - The content type is sniffed from the bytes (never taken from a name or a client), kept as
//!   an object attribute where the backend has them (S3, memory) and sniffed again from the
//!   first bytes where it does not (local files).
//! - Writes are atomic: the local backend writes a temporary file beside the target and
//!   renames it into place; S3 replaces objects whole. A reader sees the old bytes or the new.
//! - Metadata about blobs (who owns them, what they are for) lives in the database, not here.

mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod key;

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, GetResult, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutOptions, PutPayload,
};

pub use config::{Backend, BlobConfig, DEFAULT_MAX_OBJECT_BYTES, LOCAL_DIR, S3Options};
pub use key::{BlobKey, MAX_SEGMENT_LEN, MAX_SEGMENTS, Namespace, validate_segment};

/// The type of bytes nothing more specific was recognised in.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// How many leading bytes the content type is sniffed from.
pub const SNIFF_BYTES: usize = 4096;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A key segment outside the allowed alphabet or length (the caller's input).
    #[error("invalid blob key: {reason}")]
    InvalidKey { reason: String },
    /// No blob under this key.
    #[error("blob {key} not found")]
    NotFound { key: String },
    /// A `put` over the configured `max_object_bytes`; nothing was written.
    #[error("blob of {size} bytes is over the limit of {max} bytes (max_object_bytes)")]
    TooLarge { size: u64, max: u64 },
    /// A range that starts at or past the end of the blob.
    #[error("range starts past the end of the {size}-byte blob")]
    RangeNotSatisfiable { size: u64 },
    /// A read bound to one version (`if_match`) found another: the blob was replaced meanwhile.
    #[error("blob {key} changed while it was read")]
    Changed { key: String },
    /// A configuration the store cannot be built from.
    #[error("blob store configuration: {message}")]
    Config { message: String },
    /// The backend failed (I/O, network, permissions).
    #[error("blob store: {0}")]
    Backend(#[source] object_store::Error),
}

impl BlobError {
    fn from_store(key: &BlobKey, e: object_store::Error) -> BlobError {
        match e {
            object_store::Error::NotFound { .. } => BlobError::NotFound {
                key: key.to_string(),
            },
            object_store::Error::Precondition { .. } => BlobError::Changed {
                key: key.to_string(),
            },
            other => BlobError::Backend(other),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, BlobError::NotFound { .. })
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    /// A strong entity tag, quoted, ready for an `ETag` header (`"…"`).
    pub etag: String,
    /// Sniffed from the bytes when they were stored (or read, see the crate docs).
    pub content_type: String,
    pub updated: DateTime<Utc>,
    /// The backend's own etag, which its conditional reads compare against.
    store_etag: Option<String>,
}

/// A blob read whole.
#[derive(Debug, Clone)]
pub struct Blob {
    pub meta: BlobMeta,
    pub bytes: Bytes,
}

/// A blob (or a range of it) being read: its metadata, the byte range and the bytes as a
/// stream, so large clips are never held in memory whole.
pub struct BlobReader {
    pub meta: BlobMeta,
    /// Which bytes `stream` yields (half-open).
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobReader")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    /// Collect the stream.
    pub async fn bytes(self) -> Result<Bytes, BlobError> {
        let mut out =
            Vec::with_capacity(usize::try_from(self.range.end - self.range.start).unwrap_or(0));
        let mut stream = self.stream;
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }
}

/// The blob store of the process: cheap to clone, one backend inside.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Whether the backend keeps object attributes (the content type): S3 and memory do,
    /// the local filesystem does not.
    attributes: bool,
    max_object_bytes: u64,
    description: String,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.inner.backend)
            .field("store", &self.inner.description)
            .field("max_object_bytes", &self.inner.max_object_bytes)
            .finish()
    }
}

impl BlobStore {
    /// The store `config` names. Local folders are created; nothing is sent to a remote
    /// store yet (see [`BlobStore::check`]).
    pub fn open(config: &BlobConfig, data_dir: &FsPath) -> Result<BlobStore, BlobError> {
        let built = config::build(config, data_dir)?;
        let max_object_bytes = config.max_object_bytes.unwrap_or(DEFAULT_MAX_OBJECT_BYTES);
        if max_object_bytes == 0 {
            return Err(BlobError::Config {
                message: "max_object_bytes must be at least 1".into(),
            });
        }
        Ok(BlobStore {
            inner: Arc::new(Inner {
                attributes: built.backend != Backend::Local,
                store: built.store,
                backend: built.backend,
                max_object_bytes,
                description: built.description,
            }),
        })
    }

    /// An empty store in memory (tests).
    pub fn memory() -> BlobStore {
        BlobStore::open(
            &BlobConfig {
                url: Some("memory://".into()),
                ..Default::default()
            },
            FsPath::new("."),
        )
        .unwrap_or_else(|e| unreachable!("an in-memory store always builds: {e}"))
    }

    /// This store with another size cap per `put`.
    pub fn with_max_object_bytes(&self, max: u64) -> BlobStore {
        BlobStore {
            inner: Arc::new(Inner {
                store: self.inner.store.clone(),
                backend: self.inner.backend,
                attributes: self.inner.attributes,
                max_object_bytes: max.max(1),
                description: self.inner.description.clone(),
            }),
        }
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Where the blobs are, for logs (`file:///…`, `s3://bucket/prefix at endpoint`).
    pub fn describe(&self) -> &str {
        &self.inner.description
    }

    pub fn max_object_bytes(&self) -> u64 {
        self.inner.max_object_bytes
    }

    /// Store `bytes` under `key`, replacing what was there (atomically).
    pub async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<BlobMeta, BlobError> {
        let size = bytes.len() as u64;
        if size > self.inner.max_object_bytes {
            return Err(BlobError::TooLarge {
                size,
                max: self.inner.max_object_bytes,
            });
        }
        let content_type = sniff(&bytes);
        let mut options = PutOptions::default();
        if self.inner.attributes {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.into());
            options.attributes = attributes;
        }
        let path = key.path();
        self.inner
            .store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        // The stored version's own metadata (the etag a later read reports, the store's clock).
        let meta = self
            .inner
            .store
            .head(&path)
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        Ok(blob_meta(&meta, content_type.to_string()))
    }

    /// The blob under `key`, whole.
    pub async fn get(&self, key: &BlobKey) -> Result<Blob, BlobError> {
        let result = self.get_opts(key, GetOptions::default()).await?;
        let attributes_type = content_type_attribute(&result);
        let meta = result.meta.clone();
        let bytes = result
            .bytes()
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        let content_type = attributes_type.unwrap_or_else(|| sniff(&bytes).to_string());
        Ok(Blob {
            meta: blob_meta(&meta, content_type),
            bytes,
        })
    }

    /// Bytes `range` of the blob under `key`, cut at its end; a range that starts at or past
    /// the end is [`BlobError::RangeNotSatisfiable`].
    pub async fn get_range(&self, key: &BlobKey, range: Range<u64>) -> Result<Bytes, BlobError> {
        self.read(key, Some(range), None).await?.bytes().await
    }

    /// The blob's metadata, without its bytes (beyond the few sniffed where needed).
    pub async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let result = self
            .get_opts(key, GetOptions::default().with_head(true))
            .await?;
        let meta = result.meta.clone();
        let content_type = match content_type_attribute(&result) {
            Some(t) => t,
            None => self.sniff_stored(key, &meta).await?,
        };
        Ok(blob_meta(&meta, content_type))
    }

    pub async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        match self.inner.store.head(&key.path()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(BlobError::Backend(e)),
        }
    }

    /// Read `range` (or everything) of the blob under `key` as a stream. With `expected` (from
    /// [`BlobStore::head`]) the read fails with [`BlobError::Changed`] if the blob was replaced
    /// since, so metadata and bytes always belong to one version.
    pub async fn read(
        &self,
        key: &BlobKey,
        range: Option<Range<u64>>,
        expected: Option<&BlobMeta>,
    ) -> Result<BlobReader, BlobError> {
        if let Some(r) = &range
            && r.start >= r.end
        {
            let size = self.head(key).await?.size;
            return Err(BlobError::RangeNotSatisfiable { size });
        }
        let options = GetOptions::default()
            .with_range(range.clone().map(GetRange::Bounded))
            .with_if_match(expected.and_then(|m| m.store_etag.clone()));
        let result = match self.get_opts(key, options).await {
            Ok(result) => result,
            Err(BlobError::Backend(e)) if range.is_some() => {
                // Backends word a range past the end differently (or as a 416 from S3): ask
                // for the size and say so plainly, else report the backend's error.
                let size = self.head(key).await?.size;
                return match range {
                    Some(r) if r.start >= size => Err(BlobError::RangeNotSatisfiable { size }),
                    _ => Err(BlobError::Backend(e)),
                };
            }
            Err(e) => return Err(e),
        };
        let meta = result.meta.clone();
        let content_type = match content_type_attribute(&result) {
            Some(t) => t,
            None => self.sniff_stored(key, &meta).await?,
        };
        let range = result.range.clone();
        let owned_key = key.clone();
        let stream = result
            .into_stream()
            .map_err(move |e| BlobError::from_store(&owned_key, e))
            .boxed();
        Ok(BlobReader {
            meta: blob_meta(&meta, content_type),
            range,
            stream,
        })
    }

    /// Remove the blob under `key`; a missing blob is not an error.
    pub async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.inner.store.delete(&key.path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BlobError::Backend(e)),
        }
    }

    /// Remove every blob under `prefix` (whole segments: `comics/scene_1` never touches
    /// `comics/scene_10`). Returns how many were removed.
    pub async fn delete_prefix(&self, prefix: &BlobKey) -> Result<u64, BlobError> {
        let store = &self.inner.store;
        let locations = store
            .list(Some(&prefix.path()))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = 0;
        let mut results = store.delete_stream(locations);
        while let Some(result) = results.next().await {
            match result {
                Ok(_) => deleted += 1,
                // Gone meanwhile (another server deleting the same scene): fine.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(BlobError::Backend(e)),
            }
        }
        Ok(deleted)
    }

    /// Keys of every blob under `prefix`, sorted.
    pub async fn list(&self, prefix: &BlobKey) -> Result<Vec<BlobKey>, BlobError> {
        let metas: Vec<ObjectMeta> = self
            .inner
            .store
            .list(Some(&prefix.path()))
            .try_collect()
            .await
            .map_err(BlobError::Backend)?;
        let mut keys = Vec::with_capacity(metas.len());
        for meta in metas {
            let parts: Vec<String> = meta
                .location
                .parts()
                .map(|p| p.as_ref().to_string())
                .collect();
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            // Anything else in the bucket (not written through a key) is not ours to list.
            if let Ok(key) = BlobKey::from_segments(&parts) {
                keys.push(key);
            }
        }
        keys.sort_by_key(|k| k.to_string());
        Ok(keys)
    }

    /// Prove the store can be written and read: put, read back and delete one small probe.
    /// Start-up calls it so a wrong bucket, endpoint or credential fails there, plainly.
    pub async fn check(&self) -> Result<(), BlobError> {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let probe = BlobKey::namespace(Namespace::System)
            .child(&format!("probe-{}-{nanos}", std::process::id()))?;
        let written = self.put(&probe, Bytes::from_static(b"probe")).await?;
        let read = self.get(&probe).await;
        self.delete(&probe).await?;
        let read = read?;
        if read.bytes.as_ref() != b"probe" || read.meta.size != written.size {
            return Err(BlobError::Config {
                message: "the store returned other bytes than were written".into(),
            });
        }
        Ok(())
    }

    async fn get_opts(&self, key: &BlobKey, options: GetOptions) -> Result<GetResult, BlobError> {
        self.inner
            .store
            .get_opts(&key.path(), options)
            .await
            .map_err(|e| BlobError::from_store(key, e))
    }

    /// The content type of a stored blob from its first bytes (backends without attributes),
    /// bound to the version `meta` describes.
    async fn sniff_stored(&self, key: &BlobKey, meta: &ObjectMeta) -> Result<String, BlobError> {
        if meta.size == 0 {
            return Ok(OCTET_STREAM.into());
        }
        let end = meta.size.min(SNIFF_BYTES as u64);
        let options = GetOptions::default()
            .with_range(Some(GetRange::Bounded(0..end)))
            .with_if_match(meta.e_tag.clone());
        let head = self
            .get_opts(key, options)
            .await?
            .bytes()
            .await
            .map_err(|e| BlobError::from_store(key, e))?;
        Ok(sniff(&head).to_string())
    }
}

/// The media type of `bytes` from their leading magic numbers, else
/// `application/octet-stream`. Text formats (HTML, XML, scripts) are never reported: served
/// from this origin they could run script, and nothing stored here should be a page.
pub fn sniff(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    match infer::get(head) {
        Some(kind) if kind.matcher_type() != infer::MatcherType::Text => kind.mime_type(),
        _ => OCTET_STREAM,
    }
}

fn content_type_attribute(result: &GetResult) -> Option<String> {
    result
        .attributes
        .get(&Attribute::ContentType)
        .map(|v| v.as_ref().trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Our metadata from the backend's: a strong, quoted etag whatever the backend wrote.
fn blob_meta(meta: &ObjectMeta, content_type: String) -> BlobMeta {
    BlobMeta {
        size: meta.size,
        etag: http_etag(meta),
        content_type,
        updated: meta.last_modified,
        store_etag: meta.e_tag.clone(),
    }
}

/// The backend's etag as a strong HTTP entity tag. S3 quotes its MD5, the local backend
/// quotes inode-mtime-size, memory uses a bare counter; anything unusable (missing, weak, or
/// with characters an entity tag may not hold) is replaced by one from size and time.
fn http_etag(meta: &ObjectMeta) -> String {
    let opaque = meta
        .e_tag
        .as_deref()
        .map(|t| t.trim().trim_matches('"'))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)));
    match opaque {
        Some(tag) => format!("\"{tag}\""),
        None => format!(
            "\"{:x}-{:x}\"",
            meta.size,
            meta.last_modified.timestamp_micros()
        ),
    }
}

#[cfg(test)]
mod tests;
