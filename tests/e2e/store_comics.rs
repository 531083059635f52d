//! The comic repository on SQLite and PostgreSQL (every case on both).

use sceneintruder_store::{
    Claim, ComicImage, ComicOverview, ComicReference, Database, NewScene, SceneRow,
};
use sceneintruder_tests::{Backend, PgDatabase, backends};

/// A database of `backend`, migrated; the guard keeps a PostgreSQL database alive.
async fn migrated(backend: &Backend, dir: &std::path::Path) -> (Database, Option<PgDatabase>) {
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.join("db.sqlite").display()),
            None,
        ),
        Backend::Postgres(admin) => {
            let pg = PgDatabase::create(admin).await;
            (pg.url.clone(), Some(pg))
        }
    };
    let db = Database::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    (db, pg)
}

async fn create_scene(db: &Database, id: &str) {
    let row = SceneRow {
        id: id.into(),
        owner: "alice".into(),
        document: "{}".into(),
        settings: "{}".into(),
        original_text: None,
        segments: None,
        created_at: 1,
    };
    db.scenes()
        .create(NewScene {
            row: &row,
            characters: &[],
            items: &[],
        })
        .await
        .expect("scene");
}

fn reference(element_id: &str, blob_key: &str) -> ComicReference {
    ComicReference {
        element_id: element_id.into(),
        blob_key: blob_key.into(),
        file_name: format!("{element_id}.png"),
        content_type: "image/png".into(),
        size_bytes: 482_113,
        uploaded_at: 1_700_000_000_000,
    }
}

fn image(frame_id: &str, blob_key: &str, signature: Option<&str>) -> ComicImage {
    ComicImage {
        frame_id: frame_id.into(),
        blob_key: blob_key.into(),
        content_type: "image/png".into(),
        size_bytes: 1024,
        signature: signature.map(String::from),
        generated_at: 1_700_000_000_500,
    }
}

/// Frame ids out of every order but the byte-wise one.
const FRAMES: [&str; 5] = ["frame_2", "frame_10", "Frame_Z", "frame_1", "frame_é"];
const BYTE_WISE: [&str; 5] = ["Frame_Z", "frame_1", "frame_10", "frame_2", "frame_é"];

/// Documents round-trip, every write bumps the version, and nothing is written for a scene
/// that does not exist.
#[tokio::test]
async fn documents_round_trip() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_c").await;
        let comics = db.comics();
        let name = backend.name();

        assert_eq!(comics.get_analysis("scene_c").await.expect("get"), None);
        assert_eq!(comics.version("scene_c").await.expect("version"), None);
        assert_eq!(
            comics.overview("scene_c").await.expect("overview"),
            ComicOverview::default(),
            "{name}: an untouched scene has an empty overview"
        );

        let analysis = r#"{"scene_id":"scene_c","target_frames":4,"frames":[]}"#;
        assert_eq!(
            comics.put_analysis("scene_c", analysis).await.expect("put"),
            Some(1)
        );
        assert_eq!(
            comics
                .get_analysis("scene_c")
                .await
                .expect("get")
                .as_deref(),
            Some(analysis)
        );
        assert_eq!(
            comics
                .put_key_elements("scene_c", r#"{"characters":[]}"#)
                .await
                .expect("put"),
            Some(2)
        );
        assert_eq!(
            comics.put_metrics("scene_c", "{}").await.expect("put"),
            Some(3)
        );
        let replaced = r#"{"scene_id":"scene_c","target_frames":6,"frames":[]}"#;
        assert_eq!(
            comics.put_analysis("scene_c", replaced).await.expect("put"),
            Some(4)
        );
        assert_eq!(
            comics
                .get_analysis("scene_c")
                .await
                .expect("get")
                .as_deref(),
            Some(replaced)
        );
        assert_eq!(
            comics
                .get_key_elements("scene_c")
                .await
                .expect("get")
                .as_deref(),
            Some(r#"{"characters":[]}"#)
        );
        assert_eq!(
            comics.get_metrics("scene_c").await.expect("get").as_deref(),
            Some("{}")
        );
        assert_eq!(comics.version("scene_c").await.expect("version"), Some(4));

        // No scene, no comic.
        assert_eq!(
            comics.put_analysis("scene_none", "{}").await.expect("put"),
            None
        );
        assert_eq!(
            comics
                .put_prompt("scene_none", "frame_1", "{}")
                .await
                .expect("put"),
            None
        );
        assert_eq!(
            comics
                .put_reference("scene_none", &reference("char_a", "k"))
                .await
                .expect("put"),
            None
        );
        assert_eq!(
            comics
                .put_image("scene_none", &image("frame_1", "k", None))
                .await
                .expect("put"),
            None
        );
        assert_eq!(comics.version("scene_none").await.expect("version"), None);
        db.close().await;
    }
}

/// Prompts are listed byte-wise by frame id, upserted one or several at a time, and pruned
/// to a set of frames.
#[tokio::test]
async fn prompts_round_trip_in_byte_wise_order() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_p").await;
        let comics = db.comics();
        let name = backend.name();

        assert!(
            comics
                .list_prompts("scene_p")
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            comics.get_prompt("scene_p", "frame_1").await.expect("get"),
            None
        );
        let doc = |frame: &str, n: u32| format!(r#"{{"frame_id":"{frame}","prompt":"p{n}"}}"#);
        assert_eq!(
            comics
                .put_prompt("scene_p", FRAMES[0], &doc(FRAMES[0], 0))
                .await
                .expect("put"),
            Some(1)
        );
        let several: Vec<(String, String)> =
            FRAMES.iter().map(|f| (f.to_string(), doc(f, 1))).collect();
        assert_eq!(
            comics.put_prompts("scene_p", &several).await.expect("put"),
            Some(2),
            "several prompts are one write"
        );
        let listed = comics.list_prompts("scene_p").await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|p| p.frame_id.as_str()).collect();
        assert_eq!(ids, BYTE_WISE, "{name}");
        assert!(listed.iter().all(|p| p.document == doc(&p.frame_id, 1)));
        assert!(listed.iter().all(|p| p.updated_at > 0));
        let one = comics
            .get_prompt("scene_p", "frame_10")
            .await
            .expect("get")
            .expect("prompt");
        assert_eq!(one.document, doc("frame_10", 1));

        // Prune to the frames of a new analysis.
        let keep = vec![
            "frame_1".to_string(),
            "frame_2".to_string(),
            "frame_3".into(),
        ];
        assert_eq!(
            comics
                .delete_prompts_not_in("scene_p", &keep)
                .await
                .expect("prune"),
            ["Frame_Z", "frame_10", "frame_é"]
        );
        let ids: Vec<String> = comics
            .list_prompts("scene_p")
            .await
            .expect("list")
            .into_iter()
            .map(|p| p.frame_id)
            .collect();
        assert_eq!(ids, ["frame_1", "frame_2"]);
        assert_eq!(comics.version("scene_p").await.expect("v"), Some(3));
        assert!(
            comics
                .delete_prompts_not_in("scene_p", &keep)
                .await
                .expect("prune")
                .is_empty()
        );
        assert_eq!(
            comics.version("scene_p").await.expect("v"),
            Some(3),
            "a prune that deletes nothing writes nothing"
        );
        assert_eq!(
            comics
                .delete_prompts_not_in("scene_p", &[])
                .await
                .expect("prune all"),
            ["frame_1", "frame_2"]
        );
        assert!(
            comics
                .list_prompts("scene_p")
                .await
                .expect("list")
                .is_empty()
        );
        assert!(
            comics
                .delete_prompts_not_in("scene_none", &[])
                .await
                .expect("no comic")
                .is_empty()
        );
        db.close().await;
    }
}

/// References: the index exists from the first upload on, upserts hand back the blob they
/// replaced (never the one they wrote), deletes hand back theirs.
#[tokio::test]
async fn references_round_trip() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_r").await;
        let comics = db.comics();

        assert_eq!(comics.list_references("scene_r").await.expect("list"), None);
        comics.put_analysis("scene_r", "{}").await.expect("put");
        assert_eq!(
            comics.list_references("scene_r").await.expect("list"),
            None,
            "a comic without uploads has no index"
        );

        let first = comics
            .put_reference("scene_r", &reference("loc_station", "refs/loc_station.png"))
            .await
            .expect("put")
            .expect("scene");
        assert_eq!((first.version, first.stale_blob_key), (2, None));
        comics
            .put_reference("scene_r", &reference("char_lin", "refs/char_lin.png"))
            .await
            .expect("put");
        comics
            .put_reference("scene_r", &reference("Char_B", "refs/Char_B.webp"))
            .await
            .expect("put");
        // The same element again, same key: nothing to delete.
        let same = comics
            .put_reference("scene_r", &reference("char_lin", "refs/char_lin.png"))
            .await
            .expect("put")
            .expect("scene");
        assert_eq!(same.stale_blob_key, None);
        // Another format: the old blob is the caller's to delete.
        let mut jpeg = reference("char_lin", "refs/char_lin.jpg");
        jpeg.file_name = "char_lin.jpg".into();
        jpeg.content_type = "image/jpeg".into();
        jpeg.size_bytes = 77;
        let moved = comics
            .put_reference("scene_r", &jpeg)
            .await
            .expect("put")
            .expect("scene");
        assert_eq!(moved.stale_blob_key.as_deref(), Some("refs/char_lin.png"));
        assert_eq!(moved.version, 6);

        let index = comics
            .list_references("scene_r")
            .await
            .expect("list")
            .expect("index");
        let ids: Vec<&str> = index
            .references
            .iter()
            .map(|r| r.element_id.as_str())
            .collect();
        assert_eq!(ids, ["Char_B", "char_lin", "loc_station"]);
        assert!(index.updated_at > 0);
        assert_eq!(
            comics
                .get_reference("scene_r", "char_lin")
                .await
                .expect("get"),
            Some(jpeg.clone())
        );
        assert_eq!(
            comics.overview("scene_r").await.expect("o").reference_count,
            3
        );

        assert_eq!(
            comics
                .delete_reference("scene_r", "char_lin")
                .await
                .expect("delete")
                .as_deref(),
            Some("refs/char_lin.jpg")
        );
        assert_eq!(
            comics
                .delete_reference("scene_r", "char_lin")
                .await
                .expect("twice"),
            None
        );
        assert_eq!(
            comics
                .get_reference("scene_r", "char_lin")
                .await
                .expect("get"),
            None
        );
        for element in ["Char_B", "loc_station"] {
            assert!(
                comics
                    .delete_reference("scene_r", element)
                    .await
                    .expect("delete")
                    .is_some()
            );
        }
        let index = comics
            .list_references("scene_r")
            .await
            .expect("list")
            .expect("the index stays after its last reference is deleted");
        assert!(index.references.is_empty());
        assert_eq!(
            comics
                .delete_reference("scene_none", "char_lin")
                .await
                .expect("no comic"),
            None
        );
        db.close().await;
    }
}

/// Frame images: upserts with their resume signature, listed byte-wise, the replaced blob
/// handed back.
#[tokio::test]
async fn images_round_trip() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_i").await;
        let comics = db.comics();
        let name = backend.name();

        assert_eq!(
            comics.get_image("scene_i", "frame_1").await.expect("get"),
            None
        );
        for frame in FRAMES {
            let put = comics
                .put_image("scene_i", &image(frame, &format!("img/{frame}.png"), None))
                .await
                .expect("put")
                .expect("scene");
            assert_eq!(put.stale_blob_key, None);
        }
        let signature =
            r#"{"frame_id":"frame_1","signature":"5d1f","template_hint":"resume_signature_v1"}"#;
        let redrawn = image("frame_1", "img/frame_1.v2.png", Some(signature));
        let put = comics
            .put_image("scene_i", &redrawn)
            .await
            .expect("put")
            .expect("scene");
        assert_eq!(put.stale_blob_key.as_deref(), Some("img/frame_1.png"));
        assert_eq!(
            comics.get_image("scene_i", "frame_1").await.expect("get"),
            Some(redrawn.clone())
        );
        let listed = comics.list_images("scene_i").await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|i| i.frame_id.as_str()).collect();
        assert_eq!(ids, BYTE_WISE, "{name}");
        assert_eq!(
            comics.overview("scene_i").await.expect("overview").images,
            BYTE_WISE,
            "{name}"
        );
        db.close().await;
    }
}

/// The overview's flags follow what exists.
#[tokio::test]
async fn overview_flags() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_o").await;
        let comics = db.comics();

        comics
            .put_prompt("scene_o", "frame_1", "{}")
            .await
            .expect("put");
        assert_eq!(
            comics.overview("scene_o").await.expect("overview"),
            ComicOverview {
                version: 1,
                has_prompts: true,
                ..ComicOverview::default()
            }
        );
        comics.put_analysis("scene_o", "{}").await.expect("put");
        comics.put_key_elements("scene_o", "{}").await.expect("put");
        comics
            .put_reference("scene_o", &reference("char_a", "r/a"))
            .await
            .expect("put");
        comics
            .put_image("scene_o", &image("frame_2", "i/2", None))
            .await
            .expect("put");
        comics
            .put_image("scene_o", &image("frame_10", "i/10", None))
            .await
            .expect("put");
        assert_eq!(
            comics.overview("scene_o").await.expect("overview"),
            ComicOverview {
                version: 6,
                has_analysis: true,
                has_prompts: true,
                has_key_elements: true,
                reference_count: 1,
                images: vec!["frame_10".into(), "frame_2".into()],
            }
        );
        db.close().await;
    }
}

/// A reset hands back every blob key once and leaves no artefact; the version moves on and
/// a running job keeps its claim.
#[tokio::test]
async fn reset_returns_keys_and_leaves_nothing() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_x").await;
        create_scene(&db, "scene_y").await;
        let comics = db.comics();

        assert!(
            comics
                .reset("scene_x")
                .await
                .expect("reset nothing")
                .is_empty()
        );
        assert_eq!(
            comics
                .try_claim_job("scene_x", "job_1", 10, None)
                .await
                .expect("claim"),
            Claim::Claimed
        );
        for scene in ["scene_x", "scene_y"] {
            comics.put_analysis(scene, "{}").await.expect("put");
            comics.put_key_elements(scene, "{}").await.expect("put");
            comics.put_metrics(scene, "{}").await.expect("put");
            comics
                .put_prompts(scene, &[("frame_1".into(), "{}".into())])
                .await
                .expect("put");
            comics
                .put_reference(scene, &reference("char_a", &format!("{scene}/r/a")))
                .await
                .expect("put");
            comics
                .put_image(scene, &image("frame_1", &format!("{scene}/i/1"), None))
                .await
                .expect("put");
            comics
                .put_image(
                    scene,
                    &image("frame_2", &format!("{scene}/i/2"), Some("{}")),
                )
                .await
                .expect("put");
        }
        // Two rows on one blob: the key comes back once.
        comics
            .put_image("scene_x", &image("frame_3", "scene_x/i/2", None))
            .await
            .expect("put");
        let before = comics.version("scene_x").await.expect("v").expect("comic");

        let keys = comics.reset("scene_x").await.expect("reset");
        assert_eq!(keys, ["scene_x/i/1", "scene_x/i/2", "scene_x/r/a"]);
        assert_eq!(
            comics.overview("scene_x").await.expect("overview"),
            ComicOverview {
                version: before + 1,
                ..ComicOverview::default()
            }
        );
        assert_eq!(comics.get_analysis("scene_x").await.expect("get"), None);
        assert_eq!(comics.get_key_elements("scene_x").await.expect("get"), None);
        assert_eq!(comics.get_metrics("scene_x").await.expect("get"), None);
        assert!(
            comics
                .list_prompts("scene_x")
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(comics.list_references("scene_x").await.expect("list"), None);
        assert!(
            comics
                .list_images("scene_x")
                .await
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            comics
                .running_job("scene_x")
                .await
                .expect("job")
                .map(|j| j.job_id),
            Some("job_1".to_string()),
            "a reset does not stop the running job"
        );
        assert!(comics.reset("scene_x").await.expect("again").is_empty());

        // The other scene's comic is untouched.
        let other = comics.overview("scene_y").await.expect("overview");
        assert!(other.has_analysis && other.has_prompts && other.has_key_elements);
        assert_eq!((other.reference_count, other.images.len()), (1, 2));
        db.close().await;
    }
}

/// Deleting a scene deletes its comic; a scene made again under the same id starts empty.
#[tokio::test]
async fn scene_delete_removes_the_comic() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_d").await;
        create_scene(&db, "scene_k").await;
        let comics = db.comics();
        for scene in ["scene_d", "scene_k"] {
            comics.put_analysis(scene, "{}").await.expect("put");
            comics
                .put_prompt(scene, "frame_1", "{}")
                .await
                .expect("put");
            comics
                .put_reference(scene, &reference("char_a", "r/a"))
                .await
                .expect("put");
            comics
                .put_image(scene, &image("frame_1", "i/1", None))
                .await
                .expect("put");
        }
        assert_eq!(
            comics
                .try_claim_job("scene_d", "job_d", 1, None)
                .await
                .expect("claim"),
            Claim::Claimed
        );

        assert!(db.scenes().delete("scene_d").await.expect("delete"));
        assert_eq!(
            comics.overview("scene_d").await.expect("o"),
            ComicOverview::default()
        );
        assert_eq!(comics.version("scene_d").await.expect("v"), None);
        assert_eq!(comics.running_job("scene_d").await.expect("job"), None);
        assert_eq!(
            comics
                .try_claim_job("scene_d", "job_e", 2, None)
                .await
                .expect("claim"),
            Claim::NoScene
        );
        assert_eq!(
            comics.put_analysis("scene_d", "{}").await.expect("put"),
            None
        );

        create_scene(&db, "scene_d").await;
        assert_eq!(
            comics.overview("scene_d").await.expect("o"),
            ComicOverview::default()
        );
        assert!(comics.list_prompts("scene_d").await.expect("p").is_empty());
        assert_eq!(comics.list_references("scene_d").await.expect("r"), None);
        assert!(comics.list_images("scene_d").await.expect("i").is_empty());
        assert_eq!(comics.running_job("scene_d").await.expect("job"), None);
        assert_eq!(
            comics
                .put_prompt("scene_d", "frame_1", "{}")
                .await
                .expect("put"),
            Some(1),
            "a new comic starts at version 1"
        );

        let kept = comics.overview("scene_k").await.expect("o");
        assert!(kept.has_analysis && kept.has_prompts);
        assert_eq!((kept.reference_count, kept.images.len()), (1, 1));
        db.close().await;
    }
}

/// Comic writes racing a scene delete all finish (no deadlock on PostgreSQL), and nothing of
/// the comic outlives the scene.
#[tokio::test]
async fn comic_writes_racing_a_scene_delete() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        for round in 0..8 {
            let scene = format!("scene_race_{round}");
            create_scene(&db, &scene).await;
            // Half the writes find an existing header, half race to create it.
            if round % 2 == 0 {
                db.comics().put_analysis(&scene, "{}").await.expect("put");
            }
            let mut tasks = tokio::task::JoinSet::new();
            for n in 0..16 {
                let db = db.clone();
                let scene = scene.clone();
                tasks.spawn(async move {
                    let comics = db.comics();
                    let frame = format!("frame_{n}");
                    match n % 8 {
                        0 => comics.put_prompt(&scene, &frame, "{}").await.map(|_| ()),
                        1 => comics
                            .put_image(&scene, &image(&frame, "i", None))
                            .await
                            .map(|_| ()),
                        2 => comics
                            .put_reference(&scene, &reference(&frame, "r"))
                            .await
                            .map(|_| ()),
                        3 => comics.put_key_elements(&scene, "{}").await.map(|_| ()),
                        4 => comics
                            .try_claim_job(&scene, &frame, 1, None)
                            .await
                            .map(|_| ()),
                        5 => comics.reset(&scene).await.map(|_| ()),
                        6 => comics.delete_reference(&scene, "frame_2").await.map(|_| ()),
                        _ => comics.delete_prompts_not_in(&scene, &[]).await.map(|_| ()),
                    }
                });
            }
            let deleter = {
                let db = db.clone();
                let scene = scene.clone();
                tokio::spawn(async move { db.scenes().delete(&scene).await })
            };
            let within = std::time::Duration::from_secs(30);
            while let Some(joined) = tokio::time::timeout(within, tasks.join_next())
                .await
                .expect("no write hangs")
            {
                joined.expect("task").expect("comic write");
            }
            assert!(
                tokio::time::timeout(within, deleter)
                    .await
                    .expect("the delete does not hang")
                    .expect("task")
                    .expect("delete")
            );
            let comics = db.comics();
            assert_eq!(
                comics.overview(&scene).await.expect("o"),
                ComicOverview::default(),
                "{}: round {round}",
                backend.name()
            );
            assert!(comics.list_prompts(&scene).await.expect("p").is_empty());
            assert!(comics.list_images(&scene).await.expect("i").is_empty());
            assert_eq!(comics.version(&scene).await.expect("v"), None);
        }
        db.close().await;
    }
}

/// At most one comic job per scene: of two concurrent claims one wins; only the holder
/// releases; a lapsed claim can be taken over.
#[tokio::test]
async fn one_comic_job_per_scene() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        let name = backend.name();
        for round in 0..10 {
            let scene = format!("scene_j{round}");
            create_scene(&db, &scene).await;
            // Odd rounds race on an existing header, even rounds on creating it.
            if round % 2 == 1 {
                db.comics().put_metrics(&scene, "{}").await.expect("put");
            }
            let claim = |job: &'static str| {
                let db = db.clone();
                let scene = scene.clone();
                tokio::spawn(
                    async move { db.comics().try_claim_job(&scene, job, 1_000, None).await },
                )
            };
            let (a, b) = (claim("job_a"), claim("job_b"));
            let a = a.await.expect("task").expect("claim a");
            let b = b.await.expect("task").expect("claim b");
            let mut outcomes = [a, b];
            outcomes.sort_by_key(|c| *c == Claim::Held);
            assert_eq!(
                outcomes,
                [Claim::Claimed, Claim::Held],
                "{name}: round {round}"
            );
            let holder = db
                .comics()
                .running_job(&scene)
                .await
                .expect("running")
                .expect("a job holds it");
            let expected = if a == Claim::Claimed {
                "job_a"
            } else {
                "job_b"
            };
            assert_eq!(
                (holder.job_id.as_str(), holder.claimed_at),
                (expected, 1_000)
            );
        }

        create_scene(&db, "scene_j").await;
        let comics = db.comics();
        assert_eq!(comics.running_job("scene_j").await.expect("job"), None);
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_1", 100, None)
                .await
                .expect("claim"),
            Claim::Claimed
        );
        assert_eq!(
            comics.version("scene_j").await.expect("v"),
            Some(0),
            "a claim is not an artefact write"
        );
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_2", 150, None)
                .await
                .expect("claim"),
            Claim::Held
        );
        // The holder claiming again renews its claim.
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_1", 200, None)
                .await
                .expect("renew"),
            Claim::Claimed
        );
        assert_eq!(
            comics
                .running_job("scene_j")
                .await
                .expect("job")
                .map(|j| j.claimed_at),
            Some(200)
        );
        // A claim made at 200 is not stale for a lease starting at 200, it is before 201.
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_2", 300, Some(200))
                .await
                .expect("claim"),
            Claim::Held
        );
        assert!(
            !comics
                .release_job("scene_j", "job_2")
                .await
                .expect("release"),
            "only the holder releases"
        );
        assert!(
            comics
                .release_job("scene_j", "job_1")
                .await
                .expect("release")
        );
        assert!(!comics.release_job("scene_j", "job_1").await.expect("twice"));
        assert_eq!(comics.running_job("scene_j").await.expect("job"), None);
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_2", 400, None)
                .await
                .expect("claim"),
            Claim::Claimed
        );
        // job_2's lease lapses: job_3 takes over, and job_2 can no longer release it.
        assert_eq!(
            comics
                .try_claim_job("scene_j", "job_3", 900, Some(401))
                .await
                .expect("take over"),
            Claim::Claimed
        );
        let holder = comics
            .running_job("scene_j")
            .await
            .expect("job")
            .expect("held");
        assert_eq!((holder.job_id.as_str(), holder.claimed_at), ("job_3", 900));
        assert!(
            !comics
                .release_job("scene_j", "job_2")
                .await
                .expect("release")
        );
        // Artefact writes leave the claim alone.
        comics.put_analysis("scene_j", "{}").await.expect("put");
        assert_eq!(
            comics
                .running_job("scene_j")
                .await
                .expect("job")
                .map(|j| j.job_id),
            Some("job_3".to_string())
        );
        assert_eq!(
            comics
                .try_claim_job("scene_missing", "job_1", 1, None)
                .await
                .expect("claim"),
            Claim::NoScene
        );
        assert_eq!(
            comics.running_job("scene_missing").await.expect("job"),
            None
        );
        db.close().await;
    }
}

/// Twenty prompt writes to one comic at once all land, each with its own version (no lost
/// update, no deadlock on PostgreSQL).
#[tokio::test]
async fn concurrent_prompt_writes_all_land() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        create_scene(&db, "scene_w").await;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..20 {
            let db = db.clone();
            tasks.spawn(async move {
                let frame = format!("frame_{n}");
                let document = format!(r#"{{"frame_id":"{frame}"}}"#);
                db.comics().put_prompt("scene_w", &frame, &document).await
            });
        }
        let mut versions = Vec::new();
        let within = std::time::Duration::from_secs(60);
        while let Some(joined) = tokio::time::timeout(within, tasks.join_next())
            .await
            .expect("no write hangs")
        {
            versions.push(
                joined
                    .expect("task")
                    .expect("write")
                    .expect("the scene exists"),
            );
        }
        versions.sort();
        assert_eq!(
            versions,
            (1..=20).collect::<Vec<i64>>(),
            "{}",
            backend.name()
        );
        let comics = db.comics();
        let prompts = comics.list_prompts("scene_w").await.expect("list");
        assert_eq!(prompts.len(), 20);
        for prompt in &prompts {
            assert_eq!(
                prompt.document,
                format!(r#"{{"frame_id":"{}"}}"#, prompt.frame_id)
            );
        }
        assert_eq!(comics.version("scene_w").await.expect("v"), Some(20));
        db.close().await;
    }
}
