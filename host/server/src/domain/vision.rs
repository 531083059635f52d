//! The vision service: the one way a feature draws an image. It owns what the plugins do not
//! (spec/providers-vision-video.md §1.1): routing a model key to a provider, retries, PNG
//! recompression, the real content type of what came back, and per-provider statistics.
//!
//! Step 5 of the comic workflow (issue 14, next) is its first caller; until then only
//! `sniff_image` is used outside the unit tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sceneintruder_runtime::vision::ImageOptions;
use sceneintruder_runtime::{CallError, PluginRuntime};
use tokio_util::sync::CancellationToken;

use crate::domain::settings::{Kind, Settings};

/// Default size from which a PNG is recompressed (bytes).
const DEFAULT_RECOMPRESS_THRESHOLD: usize = 256 << 10;
/// Smallest threshold an operator may set (smaller values are raised to it).
const MIN_RECOMPRESS_THRESHOLD: usize = 4096;
/// Most attempts of one drawing, whatever the settings say.
const MAX_ATTEMPTS: u32 = 3;

/// Where a model key is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Provider name as the settings API shows it (`openai`, `placeholder`).
    pub provider: String,
    /// The model key sent to the plugin.
    pub model: String,
}

/// A drawn image.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub bytes: Vec<u8>,
    /// Sniffed from the bytes (`image/png`, `image/jpeg`, `image/webp`).
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub route: Route,
}

/// Why nothing was drawn.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VisionError {
    #[error("vision provider not found: {}", route.provider)]
    NotFound { route: Route },
    #[error("{message}")]
    Failed { route: Route, message: String },
    #[error("cancelled")]
    Cancelled,
}

impl VisionError {
    pub fn route(&self) -> Option<&Route> {
        match self {
            VisionError::NotFound { route } | VisionError::Failed { route, .. } => Some(route),
            VisionError::Cancelled => None,
        }
    }
}

/// Requests, failures and latency of one provider since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderStats {
    pub requests: u64,
    pub failures: u64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub sum_ms: f64,
}

pub struct VisionService {
    runtime: PluginRuntime,
    settings: Arc<Settings>,
    stats: Mutex<BTreeMap<String, ProviderStats>>,
}

impl VisionService {
    pub fn new(runtime: PluginRuntime, settings: Arc<Settings>) -> VisionService {
        VisionService {
            runtime,
            settings,
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// The provider and model a model key is drawn with: the routing table of the saved vision
    /// settings, else the default provider; an empty key means the default model.
    pub fn route(&self, model: Option<&str>) -> Route {
        let current = self.settings.current();
        let section = current.stored.section(Kind::Vision);
        let default_provider = Some(section.provider.trim())
            .filter(|p| !p.is_empty())
            .or(Kind::Vision.builtin())
            .unwrap_or_default()
            .to_string();
        let default_model = Some(section.default_model.trim())
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| default_provider.clone());
        let model = model
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or(default_model.clone());
        let table = routing_table(
            section.model_providers.as_ref(),
            &default_provider,
            &default_model,
        );
        let provider = table
            .get(&model)
            .cloned()
            .unwrap_or_else(|| default_provider.clone());
        Route { provider, model }
    }

    /// Draw one image for `prompt`: route, call with retries (`vision_config.max_attempts`, at
    /// most 3; not retried: a missing provider, cancellation), recompress a large PNG, sniff.
    pub async fn draw(
        &self,
        prompt: &str,
        options: ImageOptions,
        cancel: Option<&CancellationToken>,
    ) -> Result<Drawn, VisionError> {
        let route = self.route(Some(options.model.as_str()));
        let config = self
            .settings
            .current()
            .stored
            .section(Kind::Vision)
            .config
            .clone();
        let attempts = attempts(config.get("max_attempts"));
        let threshold = recompress_threshold(config.get("png_recompress_threshold_bytes"));
        let Ok(plugin) = self
            .runtime
            .vision(&Kind::Vision.plugin_id(&route.provider))
        else {
            self.record(&route.provider, None);
            return Err(VisionError::NotFound { route });
        };
        let options = ImageOptions {
            model: route.model.clone(),
            ..options
        };
        let mut last = String::new();
        for _ in 0..attempts {
            if cancel.is_some_and(CancellationToken::is_cancelled) {
                return Err(VisionError::Cancelled);
            }
            let started = Instant::now();
            let result = plugin.generate_image(prompt, &options, cancel).await;
            let elapsed = started.elapsed();
            match result {
                Ok(image) => {
                    let Some(content_type) = sniff_image(&image.bytes) else {
                        self.record(&route.provider, None);
                        last = format!(
                            "{} returned something that is not a PNG, JPEG or WebP image",
                            route.provider
                        );
                        continue;
                    };
                    self.record(&route.provider, Some(elapsed));
                    let bytes = if content_type == "image/png" {
                        recompress(image.bytes, threshold)
                    } else {
                        image.bytes
                    };
                    return Ok(Drawn {
                        bytes,
                        content_type,
                        width: image.width,
                        height: image.height,
                        route,
                    });
                }
                Err(CallError::Cancelled) => return Err(VisionError::Cancelled),
                Err(e) => {
                    self.record(&route.provider, None);
                    last = e.to_string();
                }
            }
        }
        Err(VisionError::Failed {
            route,
            message: last,
        })
    }

    /// Requests, failures and latency per provider since start.
    pub fn stats(&self) -> BTreeMap<String, ProviderStats> {
        match self.stats.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Count one request: `Some(latency)` when it succeeded.
    fn record(&self, provider: &str, success: Option<Duration>) {
        let mut stats = match self.stats.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = stats.entry(provider.to_string()).or_default();
        entry.requests += 1;
        match success {
            None => entry.failures += 1,
            Some(latency) => {
                let ms = latency.as_secs_f64() * 1000.0;
                entry.min_ms = if entry.sum_ms == 0.0 {
                    ms
                } else {
                    entry.min_ms.min(ms)
                };
                entry.max_ms = entry.max_ms.max(ms);
                entry.sum_ms += ms;
            }
        }
    }
}

/// The routing table: the saved non-blank entries, else `{default model: default provider}`;
/// `placeholder` and the default model are always routed.
fn routing_table(
    saved: Option<&BTreeMap<String, String>>,
    default_provider: &str,
    default_model: &str,
) -> BTreeMap<String, String> {
    let mut table: BTreeMap<String, String> = saved
        .map(|m| {
            m.iter()
                .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(builtin) = Kind::Vision.builtin() {
        table
            .entry(builtin.to_string())
            .or_insert_with(|| builtin.to_string());
    }
    table
        .entry(default_model.to_string())
        .or_insert_with(|| default_provider.to_string());
    table
}

/// `max_attempts`: absent, unparsable or below 1 means 1; at most 3.
fn attempts(value: Option<&String>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(1, |n| n.clamp(1, i64::from(MAX_ATTEMPTS)) as u32)
}

/// `png_recompress_threshold_bytes`: absent means 256 KiB; 0 or less disables; small values
/// are raised to 4096.
fn recompress_threshold(value: Option<&String>) -> Option<usize> {
    match value.and_then(|v| v.trim().parse::<i64>().ok()) {
        None => Some(DEFAULT_RECOMPRESS_THRESHOLD),
        Some(n) if n <= 0 => None,
        Some(n) => Some(
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .max(MIN_RECOMPRESS_THRESHOLD),
        ),
    }
}

/// PNG, JPEG or WebP by their signatures; anything else is not an image we store.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 14 && &bytes[..4] == b"RIFF" && &bytes[8..14] == b"WEBPVP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Re-encode a PNG at or above `threshold` bytes losslessly with the strongest compression;
/// the smaller of the two is kept (a PNG that does not decode is kept as it is).
fn recompress(png: Vec<u8>, threshold: Option<usize>) -> Vec<u8> {
    match threshold {
        Some(t) if png.len() >= t => match reencode(&png) {
            Some(smaller) if smaller.len() < png.len() => smaller,
            _ => png,
        },
        _ => png,
    }
}

fn reencode(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // Memory for one decoded frame is bounded by the decoder's own limits.
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().ok()?;
    let mut pixels = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut pixels).ok()?;
    let info = reader.info();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, frame.width, frame.height);
    encoder.set_color(frame.color_type);
    encoder.set_depth(frame.bit_depth);
    if let Some(palette) = &info.palette {
        encoder.set_palette(palette.to_vec());
    }
    if let Some(trns) = &info.trns {
        encoder.set_trns(trns.to_vec());
    }
    encoder.set_compression(png::Compression::High);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().ok()?;
    writer
        .write_image_data(&pixels[..frame.buffer_size()])
        .ok()?;
    writer.finish().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_falls_back_to_the_default_provider() {
        let saved = BTreeMap::from([
            ("gpt-image-1.5".to_string(), "openai".to_string()),
            ("  ".to_string(), "x".to_string()),
            ("sd".to_string(), " ".to_string()),
        ]);
        let table = routing_table(Some(&saved), "ark", "doubao-seedream-4.5");
        assert_eq!(
            table.get("gpt-image-1.5").map(String::as_str),
            Some("openai")
        );
        assert_eq!(
            table.get("placeholder").map(String::as_str),
            Some("placeholder")
        );
        assert_eq!(
            table.get("doubao-seedream-4.5").map(String::as_str),
            Some("ark")
        );
        assert!(!table.contains_key("sd"));
        let table = routing_table(None, "placeholder", "placeholder");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn attempts_and_thresholds_follow_the_settings() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(attempts(None), 1);
        assert_eq!(attempts(s("0").as_ref()), 1);
        assert_eq!(attempts(s("2").as_ref()), 2);
        assert_eq!(attempts(s("99").as_ref()), 3);
        assert_eq!(attempts(s("x").as_ref()), 1);
        assert_eq!(recompress_threshold(None), Some(256 << 10));
        assert_eq!(recompress_threshold(s("-1").as_ref()), None);
        assert_eq!(recompress_threshold(s("10").as_ref()), Some(4096));
        assert_eq!(recompress_threshold(s("100000").as_ref()), Some(100_000));
    }

    #[test]
    fn images_are_sniffed_by_signature() {
        assert_eq!(
            sniff_image(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]),
            Some("image/png")
        );
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
    }

    /// A poorly compressed PNG gets smaller and decodes to the same pixels; a small one is
    /// left alone.
    #[test]
    fn large_pngs_are_recompressed_losslessly() {
        let (w, h) = (128u32, 128u32);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i / 7 % 251) as u8).collect();
        let mut loose = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut loose, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_compression(png::Compression::NoCompression);
            let mut writer = encoder.write_header().expect("header");
            writer.write_image_data(&pixels).expect("data");
        }
        let tight = recompress(loose.clone(), Some(4096));
        assert!(
            tight.len() < loose.len(),
            "{} < {}",
            tight.len(),
            loose.len()
        );
        let mut reader = png::Decoder::new(std::io::Cursor::new(tight))
            .read_info()
            .expect("decodes");
        let mut out = vec![0; reader.output_buffer_size().expect("size")];
        reader.next_frame(&mut out).expect("frame");
        assert_eq!(out, pixels);
        assert_eq!(recompress(loose.clone(), None), loose);
        assert_eq!(recompress(b"not a png".to_vec(), Some(1)), b"not a png");
    }
}
