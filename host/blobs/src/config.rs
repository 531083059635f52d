//! Which backend a [`BlobConfig`] names, and how it is built.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::BlobError;

/// Default of [`BlobConfig::max_object_bytes`]: 64 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 64 << 20;

/// Folder under the data dir that holds the local store.
pub const LOCAL_DIR: &str = "blobs";

/// Where blobs live and how big one may be.
#[derive(Clone, Default)]
pub struct BlobConfig {
    /// `None` or `file://` -> `<data-dir>/blobs`; `file:///abs/dir` -> that folder;
    /// `s3://bucket[/prefix]` -> an S3-compatible store; `memory://` -> in memory (tests).
    pub url: Option<String>,
    /// Largest blob one `put` accepts; `None` -> [`DEFAULT_MAX_OBJECT_BYTES`].
    pub max_object_bytes: Option<u64>,
    /// S3 settings; each one left `None` falls back to the usual `AWS_*` variable.
    pub s3: S3Options,
}

/// Connection settings of an S3-compatible store.
#[derive(Clone, Default)]
pub struct S3Options {
    /// e.g. `http://127.0.0.1:9000` for a local MinIO; path-style requests are used.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (a local store); off by default.
    pub allow_http: Option<bool>,
}

// Hand-written so the secret never reaches a log line through `{:?}`.
impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobConfig")
            .field("url", &self.url)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("s3", &self.s3)
            .finish()
    }
}

/// Which kind of store a [`crate::BlobStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
    Memory,
}

/// A built backend: the store, its kind, and a description for logs (no credentials).
pub(crate) struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub backend: Backend,
    pub description: String,
}

/// Build the backend `config` names; local folders are created here.
pub(crate) fn build(config: &BlobConfig, data_dir: &Path) -> Result<Built, BlobError> {
    let url = config
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let Some(url) = url else {
        return local(&data_dir.join(LOCAL_DIR));
    };
    let invalid = |message: String| BlobError::Config { message };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(format!(
            "{url:?} is not a URL: use file://, s3://bucket[/prefix] or memory://"
        )));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" if rest.is_empty() => local(&data_dir.join(LOCAL_DIR)),
        "file" => {
            let parsed = url::Url::parse(url)
                .map_err(|e| invalid(format!("{url:?} is not a valid file URL: {e}")))?;
            if parsed.host_str().is_some_and(|h| h != "localhost") {
                return Err(invalid(format!(
                    "{url:?}: a file URL names a local folder (file:///path), not a host"
                )));
            }
            let dir = parsed
                .to_file_path()
                .map_err(|()| invalid(format!("{url:?} does not name an absolute folder")))?;
            local(&dir)
        }
        "memory" => Ok(Built {
            store: Arc::new(InMemory::new()),
            backend: Backend::Memory,
            description: "memory://".into(),
        }),
        "s3" => s3(rest, &config.s3),
        other => Err(invalid(format!(
            "unsupported blob store scheme {other:?}: use file://, s3://bucket[/prefix] or memory://"
        ))),
    }
}

fn local(dir: &PathBuf) -> Result<Built, BlobError> {
    std::fs::create_dir_all(dir).map_err(|e| BlobError::Config {
        message: format!("cannot create the blob folder {}: {e}", dir.display()),
    })?;
    // Deleting a scene's blobs also removes the folders they leave empty.
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| BlobError::Config {
            message: format!("cannot open the blob folder {}: {e}", dir.display()),
        })?
        .with_automatic_cleanup(true);
    Ok(Built {
        store: Arc::new(store),
        backend: Backend::Local,
        description: format!("file://{}", dir.display()),
    })
}

/// Retries of one S3 request. object_store's defaults (10 retries, 3 minutes) would hold a
/// request handler, or start-up, for minutes when the store is down.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    }
}

fn s3(rest: &str, options: &S3Options) -> Result<Built, BlobError> {
    let invalid = |message: String| BlobError::Config { message };
    let (bucket, prefix) = match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
        None => (rest, ""),
    };
    if bucket.is_empty() {
        return Err(invalid("s3:// needs a bucket: s3://bucket[/prefix]".into()));
    }
    // The usual AWS_* variables first (keys, region, endpoint, web identity, container
    // credentials...), then what the operator configured for this store.
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry())
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(120)),
        );
    if let Some(endpoint) = options.endpoint.as_deref().filter(|e| !e.is_empty()) {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(region) = options.region.as_deref().filter(|r| !r.is_empty()) {
        builder = builder.with_region(region);
    }
    if let Some(key) = options.access_key_id.as_deref().filter(|k| !k.is_empty()) {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = options
        .secret_access_key
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(allow_http) = options.allow_http {
        builder = builder.with_allow_http(allow_http);
    }
    let store = builder
        .build()
        .map_err(|e| invalid(format!("cannot set up the S3 store: {e}")))?;
    let mut description = format!("s3://{bucket}");
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(store)
    } else {
        let prefix = object_store::path::Path::parse(prefix)
            .map_err(|e| invalid(format!("invalid prefix {prefix:?} in the S3 URL: {e}")))?;
        description.push('/');
        description.push_str(prefix.as_ref());
        Arc::new(PrefixStore::new(store, prefix))
    };
    if let Some(endpoint) = options.endpoint.as_deref().filter(|e| !e.is_empty()) {
        description.push_str(&format!(" at {endpoint}"));
    }
    Ok(Built {
        store,
        backend: Backend::S3,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(url: Option<&str>, data_dir: &Path) -> Result<Built, BlobError> {
        build(
            &BlobConfig {
                url: url.map(String::from),
                ..Default::default()
            },
            data_dir,
        )
    }

    #[test]
    fn urls_pick_the_backend() {
        let dir = tempfile::tempdir().expect("dir");
        for url in [None, Some(""), Some("file://")] {
            let b = built(url, dir.path()).expect("local");
            assert_eq!(b.backend, Backend::Local);
            assert!(dir.path().join("blobs").is_dir());
        }
        let elsewhere = dir.path().join("elsewhere");
        let b =
            built(Some(&format!("file://{}", elsewhere.display())), dir.path()).expect("file url");
        assert_eq!(b.backend, Backend::Local);
        assert!(elsewhere.is_dir());
        assert_eq!(
            built(Some("memory://"), dir.path())
                .expect("memory")
                .backend,
            Backend::Memory
        );
        let s3 = build(
            &BlobConfig {
                url: Some("s3://bucket/some/prefix".into()),
                s3: S3Options {
                    endpoint: Some("http://127.0.0.1:9".into()),
                    region: Some("us-east-1".into()),
                    access_key_id: Some("id".into()),
                    secret_access_key: Some("very-secret".into()),
                    allow_http: Some(true),
                },
                ..Default::default()
            },
            dir.path(),
        )
        .expect("s3");
        assert_eq!(s3.backend, Backend::S3);
        assert_eq!(
            s3.description,
            "s3://bucket/some/prefix at http://127.0.0.1:9"
        );
    }

    #[test]
    fn bad_urls_are_explained() {
        let dir = tempfile::tempdir().expect("dir");
        for (url, needle) in [
            ("blobs", "not a URL"),
            ("ftp://host/x", "unsupported blob store scheme"),
            ("s3://", "needs a bucket"),
            ("s3:///prefix", "needs a bucket"),
            ("file://host/x", "not a host"),
            ("s3://bucket/a/../b", "invalid prefix"),
        ] {
            let err = built(Some(url), dir.path())
                .err()
                .unwrap_or_else(|| panic!("{url} must fail"));
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = BlobConfig {
            s3: S3Options {
                secret_access_key: Some("very-secret".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("very-secret"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
