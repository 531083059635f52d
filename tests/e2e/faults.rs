//! Faults under load through the real binary (issue 22): conversation order under many
//! concurrent chat turns, on SQLite and PostgreSQL.

use sceneintruder_tests::backends;
use sceneintruder_tests::story_model::{harbour_scene, model, server};
use serde_json::json;

/// A turn's two lines (the user's, then the reply) stay adjacent and in order whatever else
/// is written to the scene at the same time.
#[tokio::test]
async fn concurrent_chat_turns_keep_their_lines_together() {
    const TURNS: usize = 120;
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(
            backend,
            &vendor.base,
            "[rate_limits]\ndefault = { limit = 100000, window_secs = 60 }\n\
             chat = { limit = 100000, window_secs = 60 }\n",
        )
        .await;
        let (scene, lin, _) = harbour_scene(&server).await;
        let turns = (0..TURNS).map(|i| {
            let server = &server;
            let body =
                json!({"scene_id": scene, "character_id": lin, "message": format!("turn {i}")});
            async move { server.post("/api/chat", &body).await }
        });
        for (status, body) in futures::future::join_all(turns).await {
            assert_eq!(status, 200, "{body}");
        }
        let (status, log) = server
            .get(&format!("/api/scenes/{scene}/conversations?limit=1000"))
            .await;
        assert_eq!(status, 200, "{log}");
        let lines = log["data"].as_array().expect("lines");
        assert_eq!(lines.len(), 2 * TURNS);
        for pair in lines.chunks(2) {
            assert_eq!(pair[0]["speaker_id"], "user", "{pair:?}");
            assert_eq!(
                pair[1]["speaker_id"],
                lin.as_str(),
                "a reply right after its question: {pair:?}"
            );
        }
    }
}

/// Unmounts the test's small filesystem however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// SQLite on a disk that fills up: writes fail at once with `507 STORAGE_FULL` (not after a
/// busy timeout, not "database is locked"), health says so, writes work again by themselves
/// once space is freed, and every write that was acknowledged is still there after a
/// restart.
#[tokio::test]
async fn a_full_disk_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&disk).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&disk)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let _unmount = Mounted(disk.clone());
    // Space to give back later.
    let ballast = disk.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).expect("ballast");

    let mut server = sceneintruder_tests::ServerBuilder::new(sceneintruder_tests::Backend::Sqlite)
        .database(&format!("sqlite://{}", disk.join("db.sqlite").display()))
        .start()
        .await;
    let (status, body) = server
        .post("/api/scenes/shell", &json!({"title": "Full"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let scene = body["data"]["id"]
        .as_str()
        .or(body["data"]["scene_id"].as_str())
        .expect("id")
        .to_string();
    let item = |n: usize| {
        let field = format!("{n:06}").repeat(1100);
        json!({"name": format!("item {n}"), "description": field,
               "properties": {"a": field, "b": field, "c": field, "d": field, "e": field}})
    };
    let mut kept = Vec::new();
    let mut refused = 0;
    for n in 0..200 {
        let (status, body) = server
            .post(&format!("/api/scenes/{scene}/items"), &item(n))
            .await;
        match status {
            201 => kept.push(body["data"]["id"].as_str().expect("id").to_string()),
            507 => {
                assert_eq!(body["error"]["code"], "STORAGE_FULL", "{body}");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("a write on a full disk answered {other}: {body}"),
        }
    }
    assert_eq!(refused, 3, "the disk filled ({} items stored)", kept.len());
    // Several writers at once on the full disk: each refused cleanly, none left holding the
    // database.
    let attempts = (0..8).map(|n| {
        let server = &server;
        let scene = scene.clone();
        let body = item(500 + n);
        async move {
            server
                .post(&format!("/api/scenes/{scene}/items"), &body)
                .await
        }
    });
    for (status, body) in futures::future::join_all(attempts).await {
        match status {
            201 => kept.push(body["data"]["id"].as_str().expect("id").to_string()),
            507 => {}
            other => panic!("a write on a full disk answered {other}: {body}"),
        }
    }
    assert!(!kept.is_empty());
    let (status, body) = server.get("/api/config/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["checks"]["database"]["status"], "warning",
        "{body}"
    );

    // Space comes back: writes work again without a restart.
    std::fs::remove_file(&ballast).expect("free space");
    let mut recovered = false;
    for n in 1000..1010 {
        let (status, body) = server
            .post(&format!("/api/scenes/{scene}/items"), &item(n))
            .await;
        if status == 201 {
            kept.push(body["data"]["id"].as_str().expect("id").to_string());
            recovered = true;
            break;
        }
        assert_eq!(status, 507, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(recovered, "writes work again once space is freed");
    let attempts = (0..8).map(|n| {
        let server = &server;
        let scene = scene.clone();
        let body = item(2000 + n);
        async move {
            server
                .post(&format!("/api/scenes/{scene}/items"), &body)
                .await
        }
    });
    for (status, body) in futures::future::join_all(attempts).await {
        assert_eq!(status, 201, "every writer works again: {body}");
        kept.push(body["data"]["id"].as_str().expect("id").to_string());
    }
    let (_, body) = server.get("/api/config/health").await;
    assert_eq!(
        body["data"]["checks"]["database"]["status"], "healthy",
        "{body}"
    );

    // Every acknowledged write survives a restart.
    server.restart().await;
    for id in &kept {
        let (status, body) = server.get(&format!("/api/scenes/{scene}/items/{id}")).await;
        assert_eq!(status, 200, "acknowledged item {id} is there: {body}");
    }
}
