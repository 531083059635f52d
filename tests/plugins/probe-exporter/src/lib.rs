//! A test-only exporter. Formats (kind `scene` unless said otherwise):
//!
//! * `echo` (scene, interactions and story): writes the export input it received, unchanged, so
//!   tests can check what the host sends against the published schema;
//! * `loop`: never returns; `oom`: allocates until the memory limit traps;
//! * `flood`: writes 1 MiB chunks forever, ignoring every refusal;
//! * `peek`: reads the attachment whose id is the scene's title (another scene's, in the
//!   test) and fails with the host's answer;
//! * `attachments`: lists the attachments and writes `id media-type size first-bytes` lines;
//! * `markdown`: claims the bundled pair `scene.markdown` (writes `probe markdown`), so tests
//!   can check who wins.

use sceneintruder_plugin_sdk::exporter::{
    self, ExportError, ExportRequest, FormatInfo, Guest, Output, attachments,
};

struct Probe;

fn pair(kind: &str, format: &str) -> FormatInfo {
    FormatInfo {
        kind: kind.into(),
        format: format.into(),
        display_name: format!("Probe {format}"),
        media_type: "text/plain; charset=utf-8".into(),
        file_extension: "txt".into(),
        schema_version: 1,
    }
}

impl Guest for Probe {
    fn supported() -> Vec<FormatInfo> {
        let mut pairs = vec![pair("interactions", "echo"), pair("story", "echo")];
        for format in [
            "echo",
            "loop",
            "oom",
            "flood",
            "peek",
            "attachments",
            "markdown",
        ] {
            pairs.push(pair("scene", format));
        }
        pairs
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        let input = exporter::input(&req, &Self::supported())?;
        match req.format.as_str() {
            "echo" => exporter::write_all(req.input_json.as_bytes()),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![7u8; 1 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            "flood" => {
                let chunk = vec![b'x'; 1 << 20];
                loop {
                    // Ignore the refusal on purpose: the host must still fail the render.
                    let _ = exporter::write_all(&chunk);
                }
            }
            "peek" => {
                let id = input.scene.scene.title.clone();
                match attachments::read(&id, 0, 1024) {
                    Ok(bytes) => exporter::write_all(&bytes),
                    Err(e) => Err(ExportError::Failed(format!("could not read {id}: {e}"))),
                }
            }
            "attachments" => {
                let mut out = Output::new();
                for a in attachments::list() {
                    let head = attachments::read(&a.id, 0, 8).map_err(ExportError::Failed)?;
                    out.push_str(&format!(
                        "{} {} {} {}\n",
                        a.id,
                        a.media_type,
                        a.size,
                        String::from_utf8_lossy(&head)
                    ))?;
                }
                out.finish()
            }
            "markdown" => exporter::write_all(b"probe markdown"),
            other => Err(ExportError::Unsupported(other.to_string())),
        }
    }
}

exporter::export!(Probe);
