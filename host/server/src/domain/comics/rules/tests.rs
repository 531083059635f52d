use super::*;
use crate::domain::comics::model::Timestamp;
use serde_json::json;

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn plan(id: &str, order: i64, description: &str, nodes: &[&str]) -> ComicFramePlan {
    ComicFramePlan {
        id: id.into(),
        order,
        description: description.into(),
        story_node_ids: nodes.iter().map(|n| n.to_string()).collect(),
    }
}

fn element(id: &str, name: &str) -> ComicKeyElement {
    ComicKeyElement {
        id: id.into(),
        name: name.into(),
        description: String::new(),
    }
}

// --- §3.4 -------------------------------------------------------------------------------

#[test]
fn analysis_mode_and_default_frames_follow_the_reference_table() {
    let source = |t: &str| AnalysisMode::SourceText(t.into());
    let node = |n: &str| AnalysisMode::Node(n.into());
    let cases: [(Option<i64>, &str, &str, AnalysisMode, usize); 10] = [
        // No body / `{}`: story mode, 4 frames.
        (None, "", "", AnalysisMode::Story, 4),
        // Only `node_id`: node mode, 8 frames.
        (None, " node_3 ", "", node("node_3"), 8),
        // `target_frames` present: its count, story or node mode.
        (Some(6), "", "", AnalysisMode::Story, 6),
        (Some(6), "node_3", "", node("node_3"), 6),
        // `source_text` wins over everything; 8 frames by default.
        (
            None,
            "node_3",
            "  A detective…  ",
            source("A detective…"),
            8,
        ),
        (Some(6), "node_3", "text", source("text"), 6),
        // A present count is clamped.
        (Some(0), "", "", AnalysisMode::Story, 4),
        (Some(-3), "", "text", source("text"), 4),
        (Some(100), "n", "", node("n"), 12),
        // Blank texts are absent.
        (None, " \t", " \n ", AnalysisMode::Story, 4),
    ];
    for (frames, node_id, text, mode, count) in cases {
        let got = analysis_plan(frames, node_id, text);
        assert_eq!(got.mode, mode, "{frames:?} {node_id:?} {text:?}");
        assert_eq!(got.target_frames, count, "{frames:?} {node_id:?} {text:?}");
    }
    assert_eq!(source("x").node_label(), Some("source_text"));
    assert_eq!(node("node_3").node_label(), Some("node_3"));
    assert_eq!(AnalysisMode::Story.node_label(), None);
    let long = "n".repeat(1000);
    match analysis_plan(None, &long, "").mode {
        AnalysisMode::Node(id) => assert_eq!(id.len(), SHORT_CHARS),
        other => panic!("{other:?}"),
    }
}

#[test]
fn frame_counts_are_clamped_to_4_through_12() {
    for (requested, clamped) in [
        (i64::MIN, 4),
        (-1, 4),
        (0, 4),
        (1, 4),
        (3, 4),
        (4, 4),
        (7, 7),
        (12, 12),
        (13, 12),
        (i64::MAX, 12),
    ] {
        assert_eq!(clamp_frames(requested), clamped, "{requested}");
    }
}

#[test]
fn storyboards_from_the_model_are_normalised() {
    let mut b = ComicBreakdown {
        scene_id: "...".into(),
        language: "en".into(),
        target_frames: 99,
        frames: vec![
            plan("frame_1", 1, "gate", &["node_1", " ", "node_2 "]),
            plan("  ", 0, "clock", &[]),
            plan("frame_3", -4, "", &[]),
        ],
        ..ComicBreakdown::default()
    };
    normalise_breakdown(&mut b, "scene_1", 5, None);
    // The placeholder echo is replaced by the path id; the model's count is ignored.
    assert_eq!(b.scene_id, "scene_1");
    assert_eq!(b.target_frames, 5);
    assert_eq!(
        b.frames,
        vec![
            plan("frame_1", 1, "gate", &["node_1", "node_2"]),
            plan("frame_2", 2, "clock", &[]),
            plan("frame_3", 3, "", &[]),
            plan("frame_4", 4, "", &[]),
            plan("frame_5", 5, "", &[]),
        ]
    );
    // Frames past the target are dropped; node mode forces the node.
    let mut b = ComicBreakdown {
        frames: (1..=14)
            .map(|k| plan(&format!("frame_{k}"), k, "d", &["other"]))
            .collect(),
        ..ComicBreakdown::default()
    };
    normalise_breakdown(&mut b, "scene_1", 20, Some(" node_3 "));
    assert_eq!(b.frames.len(), 12);
    assert_eq!(b.target_frames, 12);
    assert!(b.frames.iter().all(|f| f.story_node_ids == ["node_3"]));
    assert_eq!(b.frames[11].id, "frame_12");
}

#[test]
fn frame_ids_from_the_model_become_unique_and_path_safe() {
    let mut b = ComicBreakdown {
        frames: vec![
            plan("../../etc/passwd", 1, "", &[]),
            plan("frame_2", 2, "", &[]),
            plan("frame_2", 3, "", &[]),
            plan("a\\b c\u{0}", 4, "", &[]),
            plan("画面", 5, "", &[]),
            plan(&"x".repeat(100), 6, "", &[]),
            plan(&"x".repeat(100), 7, "", &[]),
        ],
        ..ComicBreakdown::default()
    };
    // Target 8: the appended `frame_8` is free; a model id equal to an appended one is not
    // repeated.
    normalise_breakdown(&mut b, "s", 8, None);
    let ids: Vec<&str> = b.frames.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "______etc_passwd",
            "frame_2",
            "frame_2_2",
            "a_b_c_",
            "__",
            &"x".repeat(64),
            &format!("{}_2", "x".repeat(62)),
            "frame_8",
        ]
    );
    assert!(ids.iter().all(|id| valid_frame_id(id)));
    let mut b = ComicBreakdown {
        frames: vec![plan("frame_2", 1, "", &[]), plan("", 2, "", &[])],
        ..ComicBreakdown::default()
    };
    normalise_breakdown(&mut b, "s", 4, None);
    let ids: Vec<&str> = b.frames.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["frame_2", "frame_2_2", "frame_3", "frame_4"]);
}

#[test]
fn model_texts_in_a_storyboard_are_cut() {
    let mut b = ComicBreakdown {
        language: "l".repeat(500),
        model: "m".repeat(500),
        frames: vec![plan("f", 1, &"é".repeat(TEXT_CHARS + 10), &["n"; 100])],
        ..ComicBreakdown::default()
    };
    normalise_breakdown(&mut b, "s", 4, None);
    assert_eq!(b.language.len(), SHORT_CHARS);
    assert_eq!(b.model.len(), SHORT_CHARS);
    assert_eq!(b.frames[0].description.chars().count(), TEXT_CHARS);
    assert_eq!(b.frames[0].story_node_ids.len(), MAX_NODE_IDS);
}

// --- path-safe ids ----------------------------------------------------------------------

#[test]
fn frame_ids_must_be_path_safe() {
    for ok in ["frame_1", "A-b_9", "-", &"a".repeat(64)] {
        assert!(valid_frame_id(ok), "{ok}");
    }
    for bad in [
        "",
        " ",
        "..",
        ".",
        "a/b",
        "a\\b",
        "frame.1",
        "frame 1",
        "a\nb",
        "\u{0}",
        "é",
        "画面",
        "frame_1\u{202e}",
        &"a".repeat(65),
    ] {
        assert!(!valid_frame_id(bad), "{bad:?}");
    }
}

#[test]
fn element_ids_must_be_path_safe_but_may_hold_letters_of_any_script() {
    for ok in [
        "char_detective_lin",
        "char_侦探林",
        "loc_東京",
        "obj_x-1",
        &"林".repeat(64),
    ] {
        assert!(valid_element_id(ok), "{ok}");
    }
    for bad in [
        "",
        "..",
        "char_../x",
        "a/b",
        "a\\b",
        "char x",
        "a\tb",
        "\u{7f}",
        "char_\u{202e}",
        "a.png",
        "／",
        &"林".repeat(65),
    ] {
        assert!(!valid_element_id(bad), "{bad:?}");
    }
    assert!(safe_file_name("char_detective_lin.png"));
    assert!(safe_file_name("char_侦探林.webp"));
    for bad in [
        "", " ", "../x.png", "a/b.png", "a\\b.png", "a\n.png", "..", "x..png",
    ] {
        assert!(!safe_file_name(bad), "{bad:?}");
    }
    assert!(!safe_file_name(&"a".repeat(200)));
}

// --- §3.7 -------------------------------------------------------------------------------

#[test]
fn frame_prompts_from_the_model_are_finished() {
    let mut p = ComicFramePrompt {
        frame_id: "../elsewhere".into(),
        prompt: "  comic style, a detective at a rusted gate  ".into(),
        style: "comic".into(),
        video_prompt: "injected".into(),
        sfx: "injected".into(),
        ..ComicFramePrompt::default()
    };
    finish_frame_prompt(&mut p, "frame_1", " noir ", "gpt-image-1.5");
    assert_eq!(p.frame_id, "frame_1");
    assert_eq!(p.style, "noir");
    assert_eq!(p.prompt, "noir style, a detective at a rusted gate");
    assert_eq!(p.model, "gpt-image-1.5");
    assert!(p.video_prompt.is_empty() && p.sfx.is_empty());

    // Without a requested style the model's own style is applied; its model is kept.
    let mut p = ComicFramePrompt {
        prompt: "a quiet harbour".into(),
        style: "watercolor".into(),
        model: "flux".into(),
        ..ComicFramePrompt::default()
    };
    finish_frame_prompt(&mut p, "frame_2", "", "gpt-image-1.5");
    assert_eq!(p.prompt, "watercolor style, a quiet harbour");
    assert_eq!(p.model, "flux");

    // No style at all: the prompt is only trimmed and cut.
    let mut p = ComicFramePrompt {
        prompt: format!(" {} ", "x".repeat(TEXT_CHARS + 5)),
        ..ComicFramePrompt::default()
    };
    finish_frame_prompt(&mut p, "frame_3", "", "");
    assert_eq!(p.prompt.len(), TEXT_CHARS);
    assert!(p.style.is_empty() && p.model.is_empty());
}

#[test]
fn the_frame_anchor_comes_from_key_elements_or_the_opening_frame() {
    let k = ComicKeyElements {
        characters: vec![
            element("c1", "Detective Lin"),
            element("c2", "  "),
            element("c3", "Mara"),
            element("c4", "Old Porter"),
            element("c5", "Fourth"),
        ],
        style_tags: ["noir", "rain", " ", "high contrast", "grain", "fog"]
            .map(String::from)
            .to_vec(),
        ..ComicKeyElements::default()
    };
    assert_eq!(
        frame_anchor(Some(&k), "ignored"),
        "characters=Detective Lin, Mara, Old Porter | style_tags=noir, rain, high contrast, grain"
    );
    let tags_only = ComicKeyElements {
        style_tags: vec!["noir".into()],
        ..ComicKeyElements::default()
    };
    assert_eq!(frame_anchor(Some(&tags_only), "x"), "style_tags=noir");
    let nothing = ComicKeyElements::default();
    assert_eq!(
        frame_anchor(Some(&nothing), " A rusted gate. "),
        "opening_frame=A rusted gate."
    );
    assert_eq!(
        frame_anchor(None, " A rusted gate. "),
        "opening_frame=A rusted gate."
    );
    assert_eq!(frame_anchor(None, "  "), "");
}

// --- §4.1 -------------------------------------------------------------------------------

#[test]
fn style_needs_a_prompt_and_a_style() {
    assert_eq!(apply_style("  ", "noir"), "");
    assert_eq!(apply_style("  a man  ", "  "), "a man");
    assert_eq!(apply_style("comic style, a man", ""), "comic style, a man");
}

#[test]
fn leading_comic_biases_go_for_other_styles_only() {
    for (prompt, style, expected) in [
        (
            "comic style, a detective in the rain",
            "noir",
            "noir style, a detective in the rain",
        ),
        (
            "In Comic Style: a harbour",
            "watercolor",
            "watercolor style, a harbour",
        ),
        (
            "A comic panel of a detective",
            "watercolor",
            "watercolor style, a detective",
        ),
        (
            "an comic illustration of two cats",
            "anime",
            "anime style, two cats",
        ),
        (
            "in graphic novel style, a duel",
            "oil-painting",
            "oil-painting style, a duel",
        ),
        (
            "a graphic novel panel of a duel",
            "sketch",
            "sketch style, a duel",
        ),
        (
            "western comic style: a saloon",
            "sepia",
            "sepia style, a saloon",
        ),
        // Only once: what is left is then a conflicting mention, removed by step 2.
        (
            "comic style, comic style, a man",
            "noir",
            "noir style, a man",
        ),
        // `a manga panel of` is a bias even for the manga style.
        ("a manga panel of a girl", "manga", "manga style, a girl"),
        // The comic style keeps them.
        (
            "comic panel of a detective",
            "comic",
            "comic panel of a detective",
        ),
        (
            "a manga panel of a girl",
            "Comic",
            "Comic style, a manga panel of a girl",
        ),
    ] {
        assert_eq!(
            apply_style(prompt, style),
            expected,
            "{prompt:?} / {style:?}"
        );
    }
}

#[test]
fn conflicting_style_words_are_removed_anywhere() {
    for (prompt, style, expected) in [
        (
            "a man, anime style, in watercolor style; soft light, style: manga.",
            "noir",
            "noir style, a man, soft light,",
        ),
        (
            "cyberpunk-style city at night",
            "noir",
            "noir style, city at night",
        ),
        ("cyberpunk - style city", "noir", "noir style, city"),
        ("NOIR STYLE, a man", "watercolor", "watercolor style, a man"),
        (
            "noir style — a man",
            "watercolor",
            "watercolor style, a man",
        ),
        ("style:noir, a man", "anime", "anime style, a man"),
        ("style : Noir. a man", "anime", "anime style, a man"),
        ("a man in 3d-render style", "clay", "clay style, a man"),
        (
            "retro-futurism style, a city",
            "retro",
            "retro style, a city",
        ),
        // Word boundaries: `neonoir` is not `noir`, `stylet` not `style`.
        (
            "neonoir style",
            "watercolor",
            "watercolor style, neonoir style",
        ),
        ("noir stylet", "watercolor", "watercolor style, noir stylet"),
        // `style: noirish` is not the noir style either.
        (
            "style: noirish, x",
            "anime",
            "anime style, style: noirish, x",
        ),
        // The requested style's own words stay; mentioning it is enough.
        ("a noir alley at night", "noir", "a noir alley at night"),
        ("Noir style, a man", "noir", "Noir style, a man"),
        ("a man, noir style", "noir", "a man, noir style"),
        // Whitespace is collapsed; non-ASCII text is kept.
        ("一位侦探,\t\n anime style", "noir", "noir style, 一位侦探,"),
        ("anime style", "noir", "noir style"),
        ("in  watercolor\tstyle", "水墨", "水墨 style"),
    ] {
        assert_eq!(
            apply_style(prompt, style),
            expected,
            "{prompt:?} / {style:?}"
        );
    }
}

#[test]
fn applying_a_style_twice_equals_applying_it_once() {
    let prompts = [
        "a detective in the rain",
        "comic style, a detective",
        "comic panel of comic panel of a noir man",
        "comic anime style style",
        "comic comic anime style style style",
        "noir style,a man",
        "noir style, comic panel of a man",
        "a man, noir style",
        "style: noir, style:anime. watercolor-style, in sketch style; x",
        "in in anime style style",
        "一位侦探 — cyberpunk style —",
        "  ",
        "x",
        "dark-noir style, a man",
        "noir style",
        "NOIR STYLE,",
    ];
    let styles = [
        "noir",
        "comic",
        "watercolor",
        "dark-noir",
        "retro",
        "水墨",
        "anime style",
        "comic panel of",
        "Noir",
    ];
    for prompt in prompts {
        for style in styles {
            let once = apply_style(prompt, style);
            let twice = apply_style(&once, style);
            assert_eq!(twice, once, "{prompt:?} / {style:?}");
        }
    }
}

#[test]
fn style_cleanup_is_bounded_on_hostile_prompts() {
    // Deep nesting: each round peels one layer; the rounds are capped.
    for nested in [
        format!("{}a man{}", "comic ".repeat(500), " style".repeat(500)),
        format!("{}{}", "comic ".repeat(500), " style".repeat(500)),
    ] {
        let out = apply_style(&nested, "noir");
        assert!(out.starts_with("noir style, comic comic"));
    }
    // A long prompt full of near-misses finishes.
    let long = "in in  - anime-  stylez style: noirx, ".repeat(3000);
    let out = apply_style(&long, "watercolor");
    assert!(out.starts_with("watercolor style, "));
}

// --- §4.2, §4.3 -------------------------------------------------------------------------

#[test]
fn non_comic_styles_guard_the_negative_prompt() {
    assert_eq!(
        guard_negative("", "noir"),
        "western comic, comic book, comic panel, speech bubble, word balloon, halftone dots"
    );
    assert_eq!(
        guard_negative(" blurry, Comic Book, HALFTONE DOTS ", "noir"),
        "blurry, Comic Book, HALFTONE DOTS, western comic, comic panel, speech bubble, word balloon"
    );
    let full = STYLE_GUARD.join(", ");
    assert_eq!(guard_negative(&full, "noir"), full);
    assert_eq!(guard_negative(" blurry ", "comic"), "blurry");
    assert_eq!(guard_negative(" blurry ", "COMIC"), "blurry");
    assert_eq!(guard_negative(" blurry ", " "), "blurry");
    let once = guard_negative("x", "anime");
    assert_eq!(guard_negative(&once, "anime"), once);
}

#[test]
fn the_baseline_negative_comes_first_unless_present() {
    assert_eq!(baseline_negative("  "), BASELINE_NEGATIVE);
    assert_eq!(
        baseline_negative(" extra fingers "),
        "blurry, watermark, text, logo, extra fingers"
    );
    assert_eq!(
        baseline_negative("low quality, BLURRY, WATERMARK, TEXT, LOGO"),
        "low quality, BLURRY, WATERMARK, TEXT, LOGO"
    );
    // Only the whole baseline counts.
    assert_eq!(
        baseline_negative("blurry, text"),
        "blurry, watermark, text, logo, blurry, text"
    );
}

#[test]
fn model_params_become_vision_options() {
    let p = VisionParams::from_model_params(&params(json!({
        "steps": 30,
        "cfg_scale": "7.5",
        "sampler": "  Euler a ",
        "seed": "12345678901",
        "clip_skip": 2.9,
        "eta": 0,
        "tiling": "ON",
        "denoising_strength": 0.45,
        "stylize": "250.7",
        "chaos": true,
        "prompt_extend": 1,
        "use_prev_frame_reference": "yes",
        "prev_frame_denoising_strength": "0.3",
        "unknown": "ignored"
    })));
    assert_eq!(
        p,
        VisionParams {
            steps: 30,
            cfg_scale: 7.5,
            sampler: "Euler a".into(),
            seed: 12_345_678_901,
            clip_skip: 2,
            eta: 0.0,
            tiling: true,
            denoising_strength: 0.45,
            stylize: 250,
            // A bool is not an integer.
            chaos: 0,
            prompt_extend: true,
            use_prev_frame_reference: true,
            prev_frame_denoising_strength: 0.3,
        }
    );
    assert_eq!(
        VisionParams::from_model_params(&Map::new()),
        VisionParams::default()
    );
}

#[test]
fn unparsable_model_params_read_as_zero_or_false() {
    let p = VisionParams::from_model_params(&params(json!({
        "steps": "thirty",
        "cfg_scale": [7],
        "sampler": 3,
        "seed": null,
        "clip_skip": {"x": 1},
        "eta": "NaN",
        "tiling": "no",
        "denoising_strength": "inf",
        "stylize": "",
        "chaos": "1e400",
        "prompt_extend": "truthy",
        "use_prev_frame_reference": 0.0,
        "prev_frame_denoising_strength": false
    })));
    // "1e400" parses as an infinite float: not finite, so 0.
    assert_eq!(p, VisionParams::default());
    let huge = VisionParams::from_model_params(&params(json!({
        "seed": 18_446_744_073_709_551_615u64,
        "steps": -1e300,
        "tiling": -0.5,
    })));
    assert_eq!(huge.seed, i64::MAX);
    assert_eq!(huge.steps, i64::MIN);
    assert!(huge.tiling);
}

// --- §4.4 -------------------------------------------------------------------------------

#[test]
fn seeds_follow_the_base_and_the_frame_position() {
    assert_eq!(base_seed(1_717_171_717_171_717_171), 7171);
    assert_eq!(base_seed(1_717_171_717_171_710_000), 1);
    assert_eq!(base_seed(0), 1);
    assert_eq!(base_seed(-3), 9997);
    assert_eq!(frame_seed(7171, 0, 0), 7171);
    assert_eq!(frame_seed(7171, 3, 0), 7471);
    assert_eq!(frame_seed(7171, 3, 4242), 4242);
    assert_eq!(frame_seed(7171, 3, -1), -1);
    assert_eq!(frame_seed(i64::MAX, 5, 0), i64::MAX);
    assert_eq!(frame_seed(1, usize::MAX, 0), i64::MAX);
}

fn reference_index(ids: &[&str]) -> ComicReferenceIndex {
    ComicReferenceIndex {
        scene_id: "s".into(),
        references: ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    ComicReferenceMeta {
                        element_id: id.to_string(),
                        file_name: format!("{id}.png"),
                        content_type: "image/png".into(),
                        size_bytes: 10,
                        uploaded_at: Timestamp::zero(),
                    },
                )
            })
            .collect(),
        updated_at: Timestamp::zero(),
    }
}

#[test]
fn references_are_picked_by_name_then_id_then_smallest_id() {
    let k = ComicKeyElements {
        characters: vec![
            element("char_detective_lin", "Detective Lin"),
            element("char_mara", "Mara"),
        ],
        objects: vec![element("obj_broken_clock", "broken clock")],
        locations: vec![element(" loc_abandoned_station ", "")],
        ..ComicKeyElements::default()
    };
    let idx = reference_index(&[
        "char_detective_lin",
        "obj_broken_clock",
        "loc_abandoned_station",
        "aaa_unlisted",
    ]);
    let pick = |prompt: &str, description: Option<&str>| {
        pick_reference(Some(&k), &idx, prompt, description).map(|(id, _)| id)
    };
    assert_eq!(
        pick("noir style, a Broken Clock on the wall", None),
        Some("obj_broken_clock")
    );
    // Characters come first, whatever the text order.
    assert_eq!(
        pick("a broken clock above DETECTIVE LIN", None),
        Some("char_detective_lin")
    );
    // The description only counts when given (full generation).
    assert_eq!(
        pick("a wide shot", Some("Detective Lin waits")),
        Some("char_detective_lin")
    );
    // An id in the text matches too.
    assert_eq!(
        pick("loc_abandoned_station at dusk", None),
        Some("loc_abandoned_station")
    );
    // Mara has no uploaded reference: no match, so the smallest id.
    assert_eq!(pick("mara smiles", None), Some("aaa_unlisted"));
    assert_eq!(
        pick_reference(None, &idx, "anything", None).map(|(id, m)| (id, m.file_name.as_str())),
        Some(("aaa_unlisted", "aaa_unlisted.png"))
    );
    assert!(pick_reference(Some(&k), &reference_index(&[]), "broken clock", None).is_none());
}

#[test]
fn a_reference_with_an_unusable_file_name_is_not_used() {
    let k = ComicKeyElements {
        objects: vec![element("obj_clock", "clock")],
        ..ComicKeyElements::default()
    };
    for file in ["", "  ", "../../secret.png", "a/b.png", "c:\\x.png"] {
        let mut idx = reference_index(&["obj_clock"]);
        if let Some(meta) = idx.references.get_mut("obj_clock") {
            meta.file_name = file.into();
        }
        assert!(
            pick_reference(Some(&k), &idx, "a clock", None).is_none(),
            "{file:?}"
        );
    }
}

// --- §4.5 -------------------------------------------------------------------------------

#[test]
fn the_resume_signature_hashes_go_compact_json() {
    let model_params = params(json!({
        "seed": 4242,
        "a": [1, 0.5, ">"],
    }));
    let expected_json = concat!(
        r#"{"prompt":"noir style, a \u003cb\u003e \u0026 c","#,
        r#""negative_prompt":"x","style":"noir","model":"gpt-image-1.5","#,
        r#""model_params":{"a":[1,0.5,"\u003e"],"seed":4242}}"#,
    );
    assert_eq!(
        signature_json(
            " noir style, a <b> & c ",
            " x ",
            "noir",
            "gpt-image-1.5",
            &model_params
        ),
        expected_json
    );
    let expected = hex::encode(Sha256::digest(expected_json.as_bytes()));
    assert_eq!(
        resume_signature(
            " noir style, a <b> & c ",
            " x ",
            "noir",
            "gpt-image-1.5",
            &model_params
        ),
        expected
    );
    assert_eq!(
        expected,
        "712054d3481abd2dfe2741b5cace0b5bfcc7e80cd16933ba66048b5587760a12"
    );
    // Empty keys are left out; the prompt never is.
    assert_eq!(
        signature_json("a", " ", "", "", &Map::new()),
        r#"{"prompt":"a"}"#
    );
    assert_eq!(
        resume_signature("a", "", "", "", &Map::new()),
        "732acbb3e402e912437dbe53442ca54368b45e73c284acbf4c0530fac53cca74"
    );
    assert_eq!(
        signature_json("", "", "", "", &Map::new()),
        r#"{"prompt":""}"#
    );
    // Any change to what is drawn changes the signature.
    let base = resume_signature("p", "n", "s", "m", &model_params);
    assert_ne!(base, resume_signature("p", "n", "s", "m2", &model_params));
    assert_ne!(base, resume_signature("p", "n", "s", "m", &Map::new()));
    assert_eq!(base.len(), 64);
    assert!(
        base.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn signature_strings_and_numbers_are_written_like_go() {
    let text = "q\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}<>&\u{2028}\u{2029}é😀";
    let mut out = String::new();
    go_string(&mut out, text);
    assert_eq!(
        out,
        "\"q\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}\\u003c\\u003e\\u0026\\u2028\\u2029é😀\""
    );
    let number = |text: &str| {
        let n: Number = serde_json::from_str(text).expect("number");
        go_number(&n)
    };
    for (input, go) in [
        ("0", "0"),
        ("4242", "4242"),
        ("-7", "-7"),
        ("4242.0", "4242"),
        ("0.35", "0.35"),
        ("-0.5", "-0.5"),
        ("1e2", "100"),
        ("123.456", "123.456"),
        ("0.000001", "0.000001"),
        ("0.0000001", "1e-7"),
        ("1.5e-10", "1.5e-10"),
        ("1e-100", "1e-100"),
        ("999999999999999999999", "1e+21"),
        ("1e21", "1e+21"),
        ("1.5e300", "1.5e+300"),
        ("100000000000000000000", "100000000000000000000"),
        ("12345678901234567890", "12345678901234567000"),
        ("9007199254740993", "9007199254740992"),
    ] {
        assert_eq!(number(input), go, "{input}");
    }
    let mut out = String::new();
    go_value(
        &mut out,
        &json!({"z": null, "b": {"y": true, "x": false}, "a": []}),
    );
    assert_eq!(out, r#"{"a":[],"b":{"x":false,"y":true},"z":null}"#);
}

// --- §4.6 -------------------------------------------------------------------------------

#[test]
fn key_element_ids_are_filled_prefixed_and_unique() {
    let mut k = ComicKeyElements {
        characters: vec![
            element("", "Detective Lin"),
            element("  ", "Detective  Lin!"),
            element("char_x", "X"),
            element("x", "X again"),
            element("", "!!!"),
            element("", "侦探 林"),
            element("", "İstanbul Kid"),
            element("../../etc", ""),
            element("char_x_2", ""),
        ],
        objects: vec![element("", "Broken Clock"), element("obj_broken_clock", "")],
        locations: vec![element("", ""), element("", "  ")],
        style_tags: vec!["noir".into()],
        ..ComicKeyElements::default()
    };
    fill_element_ids(&mut k);
    let ids = |list: &[ComicKeyElement]| list.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&k.characters),
        [
            "char_detective_lin",
            "char_detective_lin_2",
            "char_x",
            "char_x_2",
            "char_item",
            "char_侦探_林",
            "char_istanbul_kid",
            "char_______etc",
            // A literal `char_x_2` after a generated one moves on.
            "char_x_2_2",
        ]
    );
    assert_eq!(ids(&k.objects), ["obj_broken_clock", "obj_broken_clock_2"]);
    assert_eq!(ids(&k.locations), ["loc_item", "loc_item_2"]);
    assert_eq!(k.style_tags, ["noir"]);
    let mut k = ComicKeyElements {
        characters: vec![element("x", ""), element("char_x_2", ""), element("x", "")],
        ..ComicKeyElements::default()
    };
    fill_element_ids(&mut k);
    assert_eq!(ids(&k.characters), ["char_x", "char_x_2", "char_x_3"]);
}

#[test]
fn key_elements_from_the_model_are_bounded() {
    let mut k = ComicKeyElements {
        characters: (0..200)
            .map(|_| element(&"林".repeat(100), &"n".repeat(1000)))
            .collect(),
        objects: vec![ComicKeyElement {
            id: String::new(),
            name: "a".repeat(1000),
            description: "d".repeat(TEXT_CHARS * 2),
        }],
        style_tags: (0..200).map(|_| "t".repeat(1000)).collect(),
        ..ComicKeyElements::default()
    };
    fill_element_ids(&mut k);
    assert_eq!(k.characters.len(), MAX_ELEMENTS);
    assert_eq!(k.style_tags.len(), MAX_ELEMENTS);
    assert!(k.style_tags.iter().all(|t| t.len() == NAME_CHARS));
    assert_eq!(k.objects[0].name.len(), NAME_CHARS);
    assert_eq!(k.objects[0].description.len(), TEXT_CHARS);
    let all = k.characters.iter().chain(&k.objects);
    let mut seen = HashSet::new();
    for e in all {
        assert!(valid_element_id(&e.id), "{}", e.id);
        assert!(seen.insert(e.id.clone()), "repeated {}", e.id);
    }
    assert_eq!(k.characters[63].id.chars().count(), ID_MAX);
}

// --- §4.7 -------------------------------------------------------------------------------

#[test]
fn frame_failures_name_frame_provider_and_model() {
    assert_eq!(
        frame_failure_text(
            "frame_2",
            "openai",
            "gpt-image-1.5",
            "openai request failed: status=400\r\nbody={ \"error\":   ... }\n"
        ),
        "生成图片失败（frame=frame_2, provider=openai, model=gpt-image-1.5）: openai request failed: status=400 body={ \"error\": ... }"
    );
    assert_eq!(
        frame_failure_text("frame_2", "", " ", "boom"),
        "生成图片失败（frame=frame_2）: boom"
    );
    assert_eq!(frame_failure_text("", "", "", "boom"), "生成图片失败: boom");
    assert_eq!(
        frame_failure_text("", "", "", " \r\n "),
        "生成图片失败: unknown error"
    );
    assert_eq!(
        frame_failure_text("f", "open\nai", "", "x"),
        "生成图片失败（frame=f, provider=open ai）: x"
    );
}

#[test]
fn failure_errors_are_cut_to_280_bytes_on_a_character_boundary() {
    let ascii = frame_failure_text("", "", "", &"x".repeat(10_000));
    assert_eq!(ascii, format!("生成图片失败: {}...", "x".repeat(280)));
    // 2-byte characters: 140 fit exactly.
    let text = frame_failure_text("", "", "", &"é".repeat(300));
    assert_eq!(text, format!("生成图片失败: {}...", "é".repeat(140)));
    // 3-byte characters: 93 fit (279 bytes).
    let text = frame_failure_text("", "", "", &"错".repeat(300));
    assert_eq!(text, format!("生成图片失败: {}...", "错".repeat(93)));
    // Exactly 280 bytes is not cut.
    let text = frame_failure_text("", "", "", &"y".repeat(280));
    assert_eq!(text, format!("生成图片失败: {}", "y".repeat(280)));
    let spaced = frame_failure_text("", "", "", &"ab \n".repeat(5000));
    assert!(spaced.ends_with("..."));
    let long_part = frame_failure_text(&"f".repeat(1000), "", "", "x");
    assert_eq!(
        long_part,
        format!("生成图片失败（frame={}）: x", "f".repeat(SHORT_CHARS))
    );
}

// --- §5.4 -------------------------------------------------------------------------------

fn conv<'a>(
    id: &'a str,
    node: &'a str,
    speaker: &'a str,
    kind: &'a str,
    content: &'a str,
) -> GroundingConversation<'a> {
    GroundingConversation {
        id,
        node_id: node,
        speaker_id: speaker,
        conversation_type: kind,
        content,
    }
}

#[test]
fn grounding_joins_story_conversations_of_the_nodes() {
    let log = [
        conv(
            "c1",
            "node_1",
            "narrator",
            "story_original",
            " The gate creaks. ",
        ),
        conv("c2", "node_1", "user_1", "chat", "not story"),
        conv("c3", "node_2", "STORY", "", "The clock stopped."),
        conv("c4", "node_3", "x", "Story_Console", "Elsewhere."),
        conv("c5", "node_1", "story", "", "   "),
        conv("c6", "node_1", "x", " story_console ", "Dust swirls."),
        conv("c7", "", "story", "story_original", "No node."),
    ];
    let g = grounding_text(
        &log,
        &["node_2", " node_1 ", "node_1", "node_9", ""],
        "original",
    );
    assert_eq!(
        g.text,
        "The gate creaks.\n\nThe clock stopped.\n\nDust swirls."
    );
    assert_eq!(g.node_ids, ["node_2", "node_1"]);
    assert_eq!(g.conversation_ids, ["c1", "c3", "c6"]);
    assert_eq!(
        g.content_hashes,
        [
            sha256_hex("The gate creaks."),
            sha256_hex("The clock stopped."),
            sha256_hex("Dust swirls."),
        ]
    );
    assert!(!g.truncated);
    // No node ids: the node of the latest conversation that has one.
    let g = grounding_text(&log, &[], "original");
    assert_eq!(g.node_ids, ["node_1"]);
    assert_eq!(g.conversation_ids, ["c1", "c6"]);
}

#[test]
fn grounding_falls_back_to_the_original_text() {
    let log = [conv("c1", "node_1", "story", "", "text")];
    let g = grounding_text(&log, &["node_9"], "  The whole story.  ");
    assert_eq!(
        g,
        Grounding {
            text: "The whole story.".into(),
            node_ids: vec![],
            conversation_ids: vec![],
            content_hashes: vec![sha256_hex("The whole story.")],
            truncated: false,
        }
    );
    assert_eq!(grounding_text(&[], &[], "  "), Grounding::default());
    let long = "长".repeat(GROUNDING_CHARS + 5);
    let g = grounding_text(&[], &["n"], &long);
    assert_eq!(g.text.chars().count(), GROUNDING_CHARS);
    assert!(g.truncated);
    assert_eq!(g.content_hashes, [sha256_hex(&g.text)]);
}

#[test]
fn grounding_is_capped_at_20000_characters_separators_included() {
    let big = "字".repeat(12_000);
    let log = [
        conv("c1", "n", "story", "", &big),
        conv("c2", "n", "story", "", &big),
        conv("c3", "n", "story", "", "late"),
    ];
    let g = grounding_text(&log, &["n"], "");
    assert_eq!(g.text.chars().count(), GROUNDING_CHARS);
    assert!(g.text.starts_with(&big));
    assert_eq!(&g.text[big.len()..big.len() + 2], "\n\n");
    assert!(g.truncated);
    // c2 was used (cut), c3 was not: only used conversations are recorded, with the hash of
    // their full text.
    assert_eq!(g.conversation_ids, ["c1", "c2"]);
    assert_eq!(g.content_hashes[1], sha256_hex(&big));
    // A text that fills the cap exactly leaves no room for the next one.
    let exact = "a".repeat(GROUNDING_CHARS);
    let log = [
        conv("c1", "n", "story", "", &exact),
        conv("c2", "n", "story", "", "more"),
    ];
    let g = grounding_text(&log, &["n"], "");
    assert_eq!(g.text, exact);
    assert_eq!(g.conversation_ids, ["c1"]);
    assert!(g.truncated);
    // Requested ids are capped.
    let many: Vec<String> = (0..500).map(|i| format!("n{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let log = [conv("c", "n499", "story", "", "late node")];
    assert_eq!(grounding_text(&log, &many, "fallback").text, "fallback");
}

#[test]
fn grounding_reads_stored_conversations() {
    let stored: sceneintruder_export_document::Conversation = serde_json::from_value(json!({
        "id": "conv_1",
        "scene_id": "s",
        "speaker_id": "narrator",
        "content": "Rain.",
        "timestamp": "2025-06-01T10:00:00+08:00",
        "metadata": {"node_id": " node_7 ", "conversation_type": "story_original"}
    }))
    .expect("conversation");
    let view = GroundingConversation::from_conversation(&stored);
    assert_eq!(view.node_id, "node_7");
    assert_eq!(view.conversation_type, "story_original");
    let g = grounding_text(&[view], &["node_7"], "");
    assert_eq!(g.text, "Rain.");
}

// --- §3.12 ------------------------------------------------------------------------------

#[test]
fn only_png_jpeg_and_webp_references_are_accepted() {
    assert_eq!(
        sniff_reference_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        Some(("image/png", ".png"))
    );
    assert_eq!(
        sniff_reference_image(b"\xff\xd8\xff\xe0\0\x10JFIF"),
        Some(("image/jpeg", ".jpg"))
    );
    assert_eq!(
        sniff_reference_image(b"RIFF\x24\0\0\0WEBPVP8 "),
        Some(("image/webp", ".webp"))
    );
    for bad in [
        &b""[..],
        b"\x89PNG\r\n",
        b"\xff\xd8",
        b"GIF89a",
        b"RIFF\x24\0\0\0WAVEfmt ",
        b"RIFF\x24\0\0\0WEBP",
        b"<svg xmlns=",
        b"%PDF-1.7",
        b"  \x89PNG\r\n\x1a\n",
    ] {
        assert_eq!(sniff_reference_image(bad), None, "{bad:?}");
    }
}
