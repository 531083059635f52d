//! Store repositories on SQLite and PostgreSQL (the same suite on both).

use sceneintruder_store::{
    Backend as StoreBackend, Database, Line, LogChange, NewScene, Part, SceneRow, StoryRows,
};
use sceneintruder_tests::{Backend, PgDatabase, backends};

#[tokio::test]
async fn meta_repository_on_every_backend() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (url, _pg) = match &backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}",
                    dir.path().join("nested/dir/db.sqlite").display()
                ),
                None,
            ),
            Backend::Postgres(admin) => {
                let pg = PgDatabase::create(admin).await;
                (pg.url.clone(), Some(pg))
            }
        };
        let db = Database::connect(&url).await.expect("connect");
        assert_eq!(
            db.backend(),
            match backend {
                Backend::Sqlite => StoreBackend::Sqlite,
                Backend::Postgres(_) => StoreBackend::Postgres,
            }
        );
        db.migrate().await.expect("migrate");
        db.migrate().await.expect("migrations are idempotent");
        db.ping().await.expect("ping");

        let meta = db.meta();
        assert_eq!(meta.get("install_id").await.expect("get"), None);
        assert_eq!(
            meta.get_or_insert("install_id", "first")
                .await
                .expect("insert"),
            "first"
        );
        assert_eq!(
            meta.get_or_insert("install_id", "second")
                .await
                .expect("insert"),
            "first",
            "an existing value wins"
        );
        meta.set("install_id", "third").await.expect("set");
        assert_eq!(
            meta.get("install_id").await.expect("get").as_deref(),
            Some("third")
        );
        // Values survive a reconnect.
        db.close().await;
        let db = Database::connect(&url).await.expect("reconnect");
        assert_eq!(
            db.meta().get("install_id").await.expect("get").as_deref(),
            Some("third")
        );
        db.close().await;
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused_clearly() {
    let err = Database::connect("mysql://127.0.0.1/test")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sqlite://"), "{err}");
}

#[tokio::test]
async fn job_repository_rules_on_every_backend() {
    use sceneintruder_store::{JobState, NewJob};
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (url, _pg) = match &backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
                None,
            ),
            Backend::Postgres(admin) => {
                let pg = PgDatabase::create(admin).await;
                (pg.url.clone(), Some(pg))
            }
        };
        let db = Database::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let jobs = db.jobs();
        let new = |id: &'static str, kind: &'static str| NewJob {
            id,
            kind,
            owner: "u",
            input: "{}",
            message: "queued",
        };

        jobs.insert(new("j1", "a"), 1).await.expect("insert");
        jobs.insert(new("j2", "b"), 2).await.expect("insert");
        assert!(
            jobs.insert(new("j1", "a"), 3).await.is_err(),
            "ids are unique"
        );

        // Claims respect kinds and order, and each job is claimed once.
        assert_eq!(
            jobs.claim(&["zzz"], "w", 10, 100).await.expect("claim"),
            None
        );
        let j1 = jobs
            .claim(&["a", "b"], "w", 10, 100)
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(
            (j1.id.as_str(), j1.state, j1.attempts),
            ("j1", JobState::Running, 1)
        );
        let j2 = jobs
            .claim(&["a", "b"], "w", 10, 100)
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(j2.id, "j2");
        assert_eq!(
            jobs.claim(&["a", "b"], "w", 10, 100).await.expect("claim"),
            None
        );

        // Progress only moves forward; an empty message keeps the last one.
        let p = jobs
            .progress("j1", 40, "step", 11)
            .await
            .expect("p")
            .expect("running");
        assert_eq!((p.progress, p.message.as_str()), (40, "step"));
        let p = jobs
            .progress("j1", 10, "", 12)
            .await
            .expect("p")
            .expect("running");
        assert_eq!((p.progress, p.message.as_str()), (40, "step"));
        assert!(p.version > j1.version);

        // Terminal states are final.
        let cancelled = jobs
            .cancel("j1", "cancelled", 13)
            .await
            .expect("cancel")
            .expect("was running");
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert_eq!(
            jobs.complete("j1", "{}", "done", 14)
                .await
                .expect("complete"),
            None
        );
        assert_eq!(
            jobs.progress("j1", 90, "late", 14).await.expect("progress"),
            None
        );
        assert_eq!(jobs.fail("j1", "e", "m", 14).await.expect("fail"), None);
        assert_eq!(
            jobs.get("j1").await.expect("get").expect("row").state,
            JobState::Cancelled
        );
        assert!(!jobs.renew("j1", "w", 500).await.expect("renew"));

        // Expired leases: resumable kinds go back to the queue, the rest fail.
        jobs.insert(new("j3", "a"), 20).await.expect("insert");
        let j3 = jobs
            .claim(&["a"], "w", 21, 50)
            .await
            .expect("claim")
            .expect("j3");
        assert_eq!(j3.id, "j3");
        assert!(jobs.renew("j2", "w", 60).await.expect("renew"));
        assert!(
            !jobs.renew("j2", "other", 60).await.expect("renew"),
            "only the lease owner renews"
        );
        let reclaimed = jobs
            .reclaim_expired(70, &["b"], "interrupted")
            .await
            .expect("reclaim");
        let mut states: Vec<(String, JobState)> =
            reclaimed.iter().map(|j| (j.id.clone(), j.state)).collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            states,
            vec![
                ("j2".into(), JobState::Queued),
                ("j3".into(), JobState::Failed)
            ]
        );
        let again = jobs
            .claim(&["b"], "w2", 80, 200)
            .await
            .expect("claim")
            .expect("j2 again");
        assert_eq!((again.id.as_str(), again.attempts), ("j2", 2));
        let done = jobs
            .complete("j2", r#"{"x":1}"#, "done", 90)
            .await
            .expect("complete")
            .expect("running");
        assert_eq!((done.state, done.progress), (JobState::Completed, 100));
        db.close().await;
    }
}

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

fn part(group: &str, id: &str, link: Option<&str>) -> Part {
    Part {
        group: group.into(),
        id: id.into(),
        link: link.map(String::from),
        document: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// Stories: parts kept in order with their links, a write that lost the race changes
/// nothing, and deleting the scene deletes its story.
#[tokio::test]
async fn story_repository_on_every_backend() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, _pg) = migrated(&backend, dir.path()).await;
        let row = SceneRow {
            id: "scene_s".into(),
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
        let stories = db.stories();
        assert_eq!(stories.get("scene_s").await.expect("get"), None);
        let first = StoryRows {
            document: "{\"progress\":0}".into(),
            // Ids out of alphabetical order: the stored order is the story's.
            nodes: vec![part("", "node_2", None), part("", "node_1", Some("node_2"))],
            choices: vec![
                part("node_2", "choice_b", Some("node_1")),
                part("node_2", "choice_a", None),
                // The same choice id under another node is another choice.
                part("node_1", "choice_a", None),
            ],
            tasks: vec![part("", "task_1", None)],
            objectives: vec![part("task_1", "obj_2", None), part("task_1", "obj_1", None)],
            locations: vec![part("", "loc_1", None)],
        };
        let version_before = db.scenes().version("scene_s").await.expect("v");
        assert!(stories.create("scene_s", &first).await.expect("create"));
        assert!(
            !stories.create("scene_s", &first).await.expect("again"),
            "a second story for one scene is refused"
        );
        let stored = stories.get("scene_s").await.expect("get").expect("story");
        assert_eq!(stored.version, 1);
        assert_eq!(stored.rows, first);
        assert!(
            db.scenes().version("scene_s").await.expect("v") > version_before,
            "a story write bumps the scene's version (cached views embed the story)"
        );

        // Two writers read version 1; the first wins, the second changes nothing.
        let mut second = first.clone();
        second.document = "{\"progress\":5}".into();
        second.nodes.push(part("", "node_3", Some("node_1")));
        second.choices[1].link = Some("node_3".into());
        let mut stale = first.clone();
        stale.document = "{\"progress\":99}".into();
        assert_eq!(
            stories
                .replace("scene_s", 1, &second, &LogChange::default())
                .await
                .expect("replace"),
            Some(2)
        );
        assert_eq!(
            stories
                .replace("scene_s", 1, &stale, &LogChange::default())
                .await
                .expect("stale"),
            None
        );
        let stored = stories.get("scene_s").await.expect("get").expect("story");
        assert_eq!((stored.version, &stored.rows), (2, &second));
        assert_eq!(
            stories
                .replace("scene_missing", 1, &second, &LogChange::default())
                .await
                .expect("missing"),
            None
        );

        // Story lines reveal their nodes; a write removes and adds lines with the story.
        let line = |id: &str, node: Option<&str>, story: bool| Line {
            id: id.into(),
            document: format!("{{\"id\":\"{id}\"}}"),
            node_id: node.map(String::from),
            story,
        };
        db.scenes()
            .append_conversations(
                "scene_s",
                &[
                    line("chat", Some("node_3"), false),
                    line("l1", Some("node_1"), true),
                    line("l2", None, true),
                    line("l3", Some("node_3"), true),
                    line("l4", None, true),
                ],
            )
            .await
            .expect("lines");
        let mut revealed = stories
            .get("scene_s")
            .await
            .expect("get")
            .expect("story")
            .revealed;
        revealed.sort();
        assert_eq!(revealed, ["node_1", "node_3"], "chat lines reveal nothing");
        let change = LogChange {
            append: vec![line("l5", Some("node_2"), true)],
            forget_nodes: vec!["node_3".into()],
            forget_unlinked_after: Some("node_1".into()),
            forget_all: false,
        };
        assert_eq!(
            stories
                .replace("scene_s", 2, &second, &change)
                .await
                .expect("log"),
            Some(3)
        );
        let (log, _) = db
            .scenes()
            .conversations("scene_s", 100, 0)
            .await
            .expect("log");
        let ids: Vec<String> = log
            .iter()
            .map(|d| serde_json::from_str::<serde_json::Value>(d).expect("json")["id"].to_string())
            .collect();
        assert_eq!(ids, ["\"chat\"", "\"l1\"", "\"l5\""], "{ids:?}");
        let stale_change = LogChange {
            forget_all: true,
            ..LogChange::default()
        };
        assert_eq!(
            stories
                .replace("scene_s", 2, &second, &stale_change)
                .await
                .expect("stale"),
            None
        );
        assert_eq!(
            db.scenes()
                .conversations("scene_s", 100, 0)
                .await
                .expect("log")
                .1,
            3,
            "a lost write changes no line"
        );

        // Deleting the scene deletes its story and every part.
        assert!(db.scenes().delete("scene_s").await.expect("delete"));
        assert_eq!(stories.get("scene_s").await.expect("get"), None);
        assert!(stories.create("scene_s", &first).await.expect("recreate"));
        assert_eq!(
            stories.get("scene_s").await.expect("get").map(|s| s.rows),
            Some(first.clone()),
            "no part of the old story survived"
        );
        assert!(stories.delete("scene_s").await.expect("delete story"));
        assert!(!stories.delete("scene_s").await.expect("twice"));
        db.close().await;
    }
}

/// Migration 0010 moves a scene's stop-gap `settings.story_progress` out of the settings
/// into the carry table, keeping the value; making the story takes it from there.
#[tokio::test]
async fn story_progress_moves_out_of_settings() {
    for backend in backends() {
        let dir = tempfile::tempdir().expect("dir");
        let (db, pg) = migrated(&backend, dir.path()).await;
        let row = SceneRow {
            id: "scene_m".into(),
            owner: "u".into(),
            document: "{}".into(),
            settings: r#"{"story_progress":30,"allow_plot_changes":true}"#.into(),
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
        // Run the migration's data statements again, now that a scene has the old field.
        let (file, url) = match &backend {
            Backend::Sqlite => (
                include_str!("../../host/store/migrations/sqlite/0010_story_progress_carry.sql"),
                format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            ),
            Backend::Postgres(_) => (
                include_str!("../../host/store/migrations/postgres/0010_story_progress_carry.sql"),
                pg.as_ref().expect("pg").url.clone(),
            ),
        };
        let data: String = file
            .split(';')
            .filter(|s| !s.contains("CREATE TABLE") && !s.trim().is_empty())
            .map(|s| format!("{s};"))
            .collect();
        match &backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
                sqlx::raw_sql(&data)
                    .execute(&pool)
                    .await
                    .expect("migration data");
            }
            Backend::Postgres(_) => {
                let pool = sqlx::PgPool::connect(&url).await.expect("open");
                sqlx::raw_sql(&data)
                    .execute(&pool)
                    .await
                    .expect("migration data");
            }
        }
        let stories = db.stories();
        assert_eq!(
            stories.carried_progress("scene_m").await.expect("carry"),
            Some(30)
        );
        let settings: serde_json::Value = serde_json::from_str(
            &db.scenes()
                .get("scene_m")
                .await
                .expect("get")
                .expect("scene")
                .settings,
        )
        .expect("json");
        assert_eq!(settings, serde_json::json!({"allow_plot_changes": true}));
        let rows = StoryRows {
            document: "{}".into(),
            ..StoryRows::default()
        };
        assert!(stories.create("scene_m", &rows).await.expect("create"));
        assert_eq!(
            stories.carried_progress("scene_m").await.expect("carry"),
            None,
            "the story took it"
        );
        db.close().await;
    }
}
