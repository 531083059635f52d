//! The `vision-placeholder` plugin (real component, real runtime): pixel-identical to the
//! spec's test vectors through the runtime and through `sceneintruder plugins call ... image`.

use sceneintruder_runtime::vision::ImageOptions;
use sceneintruder_tests::{RuntimeFixture, plugin_dist, server_binary};

type Rgb = (u8, u8, u8);

/// Prompt, then the pixels at (0,0), (1,0), (0,1), (511,511), (100,37) of a 512 x 512 image.
const VECTORS: [(&str, [Rgb; 5]); 3] = [
    (
        "",
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
        [
            (99, 6, 171),
            (110, 3, 168),
            (100, 13, 186),
            (105, 8, 185),
            (116, 101, 242),
        ],
    ),
];
const POINTS: [(u32, u32); 5] = [(0, 0), (1, 0), (0, 1), (511, 511), (100, 37)];

/// Decode a PNG into (width, height, RGB bytes).
fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("frame");
    let channels = frame.color_type.samples();
    let rgb = buf[..frame.buffer_size()]
        .chunks(channels)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    (frame.width, frame.height, rgb)
}

fn at(rgb: &[u8], width: u32, x: u32, y: u32) -> Rgb {
    let i = ((y * width + x) * 3) as usize;
    (rgb[i], rgb[i + 1], rgb[i + 2])
}

fn options(width: u32, height: u32) -> ImageOptions {
    ImageOptions {
        model: "placeholder".into(),
        width,
        height,
        negative_prompt: Some("ignored".into()),
        steps: Some(30),
        cfg_scale: None,
        sampler: None,
        seed: Some(42),
        clip_skip: None,
        eta: None,
        tiling: None,
        prompt_extend: None,
        reference_image: None,
        denoising_strength: None,
    }
}

#[tokio::test]
async fn pixels_match_the_spec_through_the_runtime() {
    let fixture = RuntimeFixture::new(&["vision-placeholder"]);
    let runtime = fixture.load_configured("vision-placeholder", &[]).await;
    let vision = runtime.vision("vision-placeholder").expect("loaded");
    for (prompt, expected) in VECTORS {
        let image = vision
            .generate_image(prompt, &options(512, 512), None)
            .await
            .expect("drawn");
        assert_eq!(image.content_type, "image/png");
        assert_eq!((image.width, image.height), (512, 512));
        let (w, h, rgb) = decode(&image.bytes);
        assert_eq!((w, h), (512, 512));
        for ((x, y), want) in POINTS.into_iter().zip(expected) {
            assert_eq!(at(&rgb, w, x, y), want, "{prompt:?} at ({x},{y})");
        }
    }
    // Zero sides become 256; an absurd size is refused, not drawn.
    let image = vision
        .generate_image("a cat", &options(0, 0), None)
        .await
        .expect("drawn");
    assert_eq!(decode(&image.bytes).0, 256);
    let err = vision
        .generate_image("a cat", &options(100_000, 100_000), None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("at most 4096"), "{err}");
}

/// `sceneintruder plugins call <plugin> image` writes the same picture to a file.
#[test]
fn the_cli_draws_the_same_picture() {
    let tmp = tempfile::tempdir().expect("temp");
    let out = tmp.path().join("cat.png");
    let plugin = plugin_dist().join("vision-placeholder");
    let output = std::process::Command::new(server_binary())
        .args(["plugins", "call"])
        .arg(&plugin)
        .args(["image", "a cat", "--out"])
        .arg(&out)
        .env_remove("SCENEINTRUDER_PLUGINS_DIR")
        .env_remove("SCENEINTRUDER_DATA_DIR")
        .env_remove("SCENEINTRUDER_CONFIG")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("image/png"), "{stdout}");
    let (w, _, rgb) = decode(&std::fs::read(&out).expect("written"));
    for ((x, y), want) in POINTS.into_iter().zip(VECTORS[1].1) {
        assert_eq!(at(&rgb, w, x, y), want, "at ({x},{y})");
    }
}
