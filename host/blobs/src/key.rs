//! Blob keys: the only way to name a blob. A key is a list of segments, each checked
//! against a tight alphabet, so nothing a request carries can become `..`, an absolute path,
//! a separator or a percent-escape once it reaches the filesystem or an S3 key.

use std::fmt;

use object_store::path::Path;

use crate::BlobError;

/// Longest segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;

/// Most segments in one key (prefixes included).
pub const MAX_SEGMENTS: usize = 16;

/// Top-level areas of the store. Fixed names, so a caller never spells them twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// Comic and video artefacts, one sub-tree per scene.
    Comics,
    /// Files users upload outside the comic workflow.
    Uploads,
    /// Rendered exports kept for download.
    Exports,
    /// The server's own probes (start-up write check).
    System,
}

impl Namespace {
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Comics => "comics",
            Namespace::Uploads => "uploads",
            Namespace::Exports => "exports",
            Namespace::System => "system",
        }
    }
}

/// A validated key (or key prefix): 1 to [`MAX_SEGMENTS`] segments of
/// `[A-Za-z0-9_-]{1,128}`, joined with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey {
    segments: Vec<String>,
}

impl BlobKey {
    /// A key from any segments, each validated (see [`validate_segment`]).
    pub fn from_segments(segments: &[&str]) -> Result<BlobKey, BlobError> {
        if segments.is_empty() {
            return Err(BlobError::InvalidKey {
                reason: "a key needs at least one segment".into(),
            });
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(BlobError::InvalidKey {
                reason: format!("a key has at most {MAX_SEGMENTS} segments"),
            });
        }
        for segment in segments {
            validate_segment(segment)?;
        }
        Ok(BlobKey {
            segments: segments.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The root of one namespace (a prefix).
    pub fn namespace(namespace: Namespace) -> BlobKey {
        BlobKey {
            segments: vec![namespace.as_str().to_string()],
        }
    }

    /// This key with one more validated segment.
    pub fn child(&self, segment: &str) -> Result<BlobKey, BlobError> {
        if self.segments.len() >= MAX_SEGMENTS {
            return Err(BlobError::InvalidKey {
                reason: format!("a key has at most {MAX_SEGMENTS} segments"),
            });
        }
        validate_segment(segment)?;
        let mut segments = self.segments.clone();
        segments.push(segment.to_string());
        Ok(BlobKey { segments })
    }

    /// Everything of one scene's comic (and its video): the prefix `DELETE …/comic` removes.
    pub fn comic(scene_id: &str) -> Result<BlobKey, BlobError> {
        BlobKey::namespace(Namespace::Comics).child(scene_id)
    }

    /// The generated image of one comic frame (spec comics-video §3.16-3.19).
    pub fn comic_frame(scene_id: &str, frame_id: &str) -> Result<BlobKey, BlobError> {
        BlobKey::comic(scene_id)?.child("images")?.child(frame_id)
    }

    /// The uploaded reference image of one key element (spec comics-video §3.12-3.15).
    pub fn comic_reference(scene_id: &str, element_id: &str) -> Result<BlobKey, BlobError> {
        BlobKey::comic(scene_id)?
            .child("references")?
            .child(element_id)
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(String::as_str)
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn is_prefix_of(&self, other: &BlobKey) -> bool {
        other.segments.starts_with(&self.segments)
    }

    /// The object-store location. Segments are already in the store's safe alphabet, so no
    /// escaping happens here.
    pub(crate) fn path(&self) -> Path {
        Path::from_iter(self.segments.iter().map(String::as_str))
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

/// A segment is 1 to [`MAX_SEGMENT_LEN`] ASCII letters, digits, `_` or `-`. That excludes
/// `.` and `..`, separators of any platform, `%` escapes, NUL, control characters and
/// anything a filesystem or S3 could read differently from how it was checked.
pub fn validate_segment(segment: &str) -> Result<(), BlobError> {
    let reason = if segment.is_empty() {
        Some("an empty segment")
    } else if segment.len() > MAX_SEGMENT_LEN {
        Some("a segment over 128 bytes")
    } else if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some("a segment outside [A-Za-z0-9_-]")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(BlobError::InvalidKey {
            reason: format!("{reason}: {}", shown(segment)),
        }),
    }
}

/// A hostile segment as it may appear in an error: escaped, and cut to 40 characters.
fn shown(segment: &str) -> String {
    let cut: String = segment.chars().take(40).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < segment.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_constructors_build_the_layout() {
        let frame = BlobKey::comic_frame("scene_171", "frame_1").expect("key");
        assert_eq!(frame.to_string(), "comics/scene_171/images/frame_1");
        let reference = BlobKey::comic_reference("scene_171", "char-lin").expect("key");
        assert_eq!(
            reference.to_string(),
            "comics/scene_171/references/char-lin"
        );
        let comic = BlobKey::comic("scene_171").expect("key");
        assert!(comic.is_prefix_of(&frame));
        assert!(comic.is_prefix_of(&reference));
        assert!(
            !BlobKey::comic("scene_17")
                .expect("key")
                .is_prefix_of(&frame)
        );
        assert_eq!(frame.path().as_ref(), "comics/scene_171/images/frame_1");
    }

    #[test]
    fn hostile_segments_are_refused() {
        let long = "a".repeat(MAX_SEGMENT_LEN + 1);
        for hostile in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "/etc",
            "%2e",
            "%2e%2e",
            "%2F",
            "é",
            "场景",
            "a\0b",
            "\0",
            "a b",
            "a\nb",
            "frame.png",
            "C:",
            "~",
            "*",
            "a#1",
            long.as_str(),
        ] {
            let err = BlobKey::from_segments(&["comics", hostile])
                .expect_err(&format!("{hostile:?} must be refused"));
            assert!(matches!(err, BlobError::InvalidKey { .. }), "{err}");
            assert!(
                BlobKey::comic_frame("scene_1", hostile).is_err(),
                "{hostile:?}"
            );
            assert!(
                BlobKey::comic_frame(hostile, "frame_1").is_err(),
                "{hostile:?}"
            );
            assert!(BlobKey::comic_reference("scene_1", hostile).is_err());
        }
        let max = "a".repeat(MAX_SEGMENT_LEN);
        assert!(BlobKey::from_segments(&["comics", &max]).is_ok());
        assert!(BlobKey::from_segments(&[]).is_err());
        let many = vec!["a"; MAX_SEGMENTS + 1];
        assert!(BlobKey::from_segments(&many).is_err());
        let deepest = BlobKey::from_segments(&vec!["a"; MAX_SEGMENTS]).expect("key");
        assert!(deepest.child("b").is_err());
    }

    #[test]
    fn errors_show_hostile_input_escaped_and_cut() {
        let err = BlobKey::from_segments(&["a\u{1b}[31m\0"]).expect_err("refused");
        let text = err.to_string();
        assert!(!text.contains('\u{1b}') && !text.contains('\0'), "{text}");
        let err = BlobKey::from_segments(&[&"é".repeat(500)]).expect_err("refused");
        assert!(err.to_string().chars().count() < 200, "{err}");
    }
}
