//! `vision-placeholder`: offline, deterministic images (spec/providers-vision-video.md §1.3).
//! The drawing is pure and tested natively; only `generate_image` touches the bindings.

use sceneintruder_plugin_sdk::types;
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};

/// Side length used for a zero width or height.
const DEFAULT_SIDE: u32 = 256;
/// Largest side drawn: the host asks for 512; anything far beyond is a mistake, not a picture.
const MAX_SIDE: u32 = 4096;

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-placeholder".into(),
            display_name: "Placeholder".into(),
            default_model: "placeholder".into(),
            models: vec![ModelInfo {
                display_name: "Placeholder".into(),
                ..types::unknown_model("placeholder")
            }],
        }
    }

    fn generate_image(prompt: String, options: ImageOptions) -> Result<Image, ProviderError> {
        let (width, height) = size(options.width, options.height)?;
        let data = png(&pixels(&prompt, width, height), width, height)?;
        Ok(Image {
            data: ImageData::Bytes(data),
            content_type: "image/png".into(),
            width,
            height,
        })
    }
}

vision::export!(Plugin);

fn size(width: u32, height: u32) -> Result<(u32, u32), ProviderError> {
    let pick = |v: u32| if v == 0 { DEFAULT_SIDE } else { v };
    let (w, h) = (pick(width), pick(height));
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(ProviderError::InvalidRequest(format!(
            "placeholder draws at most {MAX_SIDE} x {MAX_SIDE} pixels, not {w} x {h}"
        )));
    }
    Ok((w, h))
}

/// 32-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(16_777_619)
    })
}

/// Row-major RGB bytes of the picture for `prompt`.
fn pixels(prompt: &str, width: u32, height: u32) -> Vec<u8> {
    let hash = fnv1a(prompt.as_bytes());
    let (r0, g0, b0) = (hash & 0xFF, (hash >> 8) & 0xFF, (hash >> 16) & 0xFF);
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            // Only the low byte matters, so wrapping arithmetic is exact.
            out.push(((r0 ^ x.wrapping_mul(13) ^ y.wrapping_mul(7)) & 0xFF) as u8);
            out.push(((g0 ^ x.wrapping_mul(5) ^ y.wrapping_mul(11)) & 0xFF) as u8);
            out.push(((b0 ^ x.wrapping_mul(3) ^ y.wrapping_mul(17)) & 0xFF) as u8);
        }
    }
    out
}

fn png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ProviderError> {
    let failed = |e: png::EncodingError| ProviderError::BadResponse(format!("PNG encoding: {e}"));
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(rgb).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rgb: &[u8], width: u32, x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * width + x) * 3) as usize;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    }

    /// The spec's test vectors: prompt -> hash -> pixels at (0,0), (1,0), (0,1), (511,511),
    /// (100,37) of a 512 x 512 picture.
    #[test]
    fn pixels_match_the_test_vectors() {
        type Rgb = (u8, u8, u8);
        let vectors: [(&str, u32, [Rgb; 5]); 3] = [
            (
                "",
                0x811c_9dc5,
                [
                    (197, 157, 28),
                    (200, 152, 31),
                    (194, 150, 13),
                    (207, 147, 14),
                    (210, 254, 69),
                ],
            ),
            (
                "a cat",
                0xde14_7448,
                [
                    (72, 116, 20),
                    (69, 113, 23),
                    (79, 127, 5),
                    (66, 122, 6),
                    (95, 23, 77),
                ],
            ),
            (
                "noir style, a detective enters an abandoned train station at night",
                0xb9ab_0663,
                [
                    (99, 6, 171),
                    (110, 3, 168),
                    (100, 13, 186),
                    (105, 8, 185),
                    (116, 101, 242),
                ],
            ),
        ];
        for (prompt, hash, expected) in vectors {
            assert_eq!(fnv1a(prompt.as_bytes()), hash, "{prompt:?}");
            let rgb = pixels(prompt, 512, 512);
            let points = [(0, 0), (1, 0), (0, 1), (511, 511), (100, 37)];
            for ((x, y), want) in points.into_iter().zip(expected) {
                assert_eq!(at(&rgb, 512, x, y), want, "{prompt:?} at ({x},{y})");
            }
        }
    }

    #[test]
    fn sizes_default_and_are_bounded() {
        assert_eq!(size(0, 0).ok(), Some((256, 256)));
        assert_eq!(size(512, 0).ok(), Some((512, 256)));
        assert!(size(5000, 10).is_err());
    }

    #[test]
    fn the_png_decodes_to_the_same_pixels() {
        let rgb = pixels("a cat", 7, 5);
        let encoded = png(&rgb, 7, 5).expect("encodes");
        let decoder = png::Decoder::new(std::io::Cursor::new(encoded));
        let mut reader = decoder.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let frame = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((frame.width, frame.height), (7, 5));
        assert_eq!(&buf[..frame.buffer_size()], &rgb[..]);
    }
}
