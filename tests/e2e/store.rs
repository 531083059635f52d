//! Store repositories on SQLite and PostgreSQL (the same suite on both).

use sceneintruder_store::{Backend as StoreBackend, Database};
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
