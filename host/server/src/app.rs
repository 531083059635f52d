//! Start-up and shutdown: configuration, database, plugins, HTTP server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use sceneintruder_runtime::{PluginRuntime, RuntimeConfig};
use sceneintruder_store::Database;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::config::Config;
use crate::jobs::{Countdown, JobEngine, JobHandler};
use crate::realtime::bus::{EventBus, LocalBus};
use crate::realtime::ws::Hub;

/// How often a server on PostgreSQL checks for settings saved by another server.
const SETTINGS_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Shared state of every handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub runtime: PluginRuntime,
    pub db: Database,
    pub bus: Arc<dyn EventBus>,
    pub jobs: Arc<JobEngine>,
    pub hub: Arc<Hub>,
    pub tokens: Tokens,
    /// Recently verified tokens (see `auth::Sessions`).
    pub sessions: crate::auth::Sessions,
    pub origins: crate::api::cors::Origins,
    /// Finished bodies of hot read routes (scene view, scene list).
    pub views: crate::api::response_cache::ResponseCache,
    /// Which plugin renders each export (kind, format); rebuilt when plugins change.
    exports: std::sync::RwLock<Arc<crate::domain::export::Catalog>>,
    /// `Host` values the server answers to (DNS-rebinding guard).
    pub hosts: crate::api::guard::Hosts,
    pub limiter: crate::api::rate_limit::Limiter,
    pub metrics: crate::api::metrics::Metrics,
    /// Per-aggregate write locks (users now; scenes, stories... later).
    pub locks: crate::domain::locks::KeyedLocks,
    /// Provider settings saved through the API (keys encrypted at rest).
    pub settings: Arc<crate::domain::settings::Settings>,
    /// Every feature's way to the active LLM provider.
    pub llm: Arc<sceneintruder_llm::LlmService>,
    /// The one story service of the process (§7.2).
    pub stories: Arc<crate::domain::story::engine::Stories>,
    /// Binary artefacts (uploads, frame images, clips): `[blobs]`.
    #[allow(dead_code)] // the comic routes (issue 14) are its first readers
    pub blobs: sceneintruder_blobs::BlobStore,
    pub guest_mode: bool,
    /// Cancelled when the server starts shutting down (ends SSE streams and sockets).
    pub shutdown: CancellationToken,
    pub started: Instant,
}

impl AppState {
    /// Which plugin renders each export now.
    pub fn exports(&self) -> Arc<crate::domain::export::Catalog> {
        match self.exports.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_exports(&self, catalog: crate::domain::export::Catalog) {
        match self.exports.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
    }

    /// `503 LLM_NOT_READY` (with the status text) unless the active provider can be called.
    pub fn require_llm(&self) -> Result<(), crate::error::ServerError> {
        let readiness = self.llm.readiness();
        if readiness.ready {
            Ok(())
        } else {
            Err(crate::error::ServerError::LlmNotReady {
                details: readiness.status,
            })
        }
    }
}

/// Build everything the server needs; fails only on what makes serving impossible
/// (a database that cannot be opened or migrated, an engine that cannot be built).
pub async fn build(config: Config) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data dir {}: {e}", config.data_dir.display())
    })?;
    let db = Database::connect(&config.database_url).await?;
    db.migrate().await?;
    let blobs = open_blobs(&config).await?;
    let install_id = uuid::Uuid::now_v7().to_string();
    let install_id = db.meta().get_or_insert("install_id", &install_id).await?;
    tracing::info!(backend = ?db.backend(), %install_id, "database ready");

    let started = Instant::now();
    let runtime = PluginRuntime::load(RuntimeConfig {
        plugins_dir: config.plugins_dir.clone(),
        cache_dir: config.plugin_cache_dir.clone(),
        limits: config.limits.clone(),
        plugins: config.plugins.clone(),
        bundled: bundled_plugins(),
    })
    .await?;
    let loaded = runtime
        .reports()
        .iter()
        .filter(|r| r.state == sceneintruder_runtime::PluginState::Loaded)
        .count();
    tracing::info!(
        dir = %config.plugins_dir.display(),
        loaded,
        failed = runtime.reports().len() - loaded,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "plugins discovered"
    );
    let cipher = crate::secrets::Cipher::load(&config.data_dir, config.encryption_key.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot set up settings encryption: {e}"))?;
    let settings = crate::domain::settings::Settings::load(
        &db,
        &runtime,
        cipher,
        config.plugins.clone(),
        config.llm.provider.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot load the saved settings: {}", e.details()))?;
    let settings = Arc::new(settings);
    let llm = Arc::new(sceneintruder_llm::LlmService::new(
        runtime.clone(),
        settings.clone(),
        config.llm.service_config(),
    ));
    let secret = crate::auth::load_secret(&config.data_dir, config.auth_secret.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot load the token secret: {e}"))?;
    let tokens = Tokens::new(&secret, config.token_ttl_secs);
    if let Some((user, password)) = &config.first_admin
        && db.users().get(user).await?.is_none()
    {
        crate::domain::auth::add_user(&db, user, password, true, chrono::Utc::now().timestamp())
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the first admin {user:?}: {e}"))?;
        tracing::info!(%user, "created the first admin from the environment");
    }
    if config.guest_mode {
        tracing::info!("guest mode is on: requests without a token act as console_user");
        if !config.addr.ip().is_loopback() || !config.rate_limits.trusted_proxies.is_empty() {
            tracing::warn!(
                addr = %config.addr,
                "GUEST MODE IS ON WHILE THE SERVER IS REACHABLE FROM OTHER MACHINES (non-loopback \
                 listen address or trusted proxies configured): anyone who can reach it uses it \
                 as console_user without logging in. Turn it off with [auth] guest_mode = false \
                 or SCENEINTRUDER_GUEST_MODE=false."
            );
        }
    }
    let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new(4096));
    let stories = Arc::new(crate::domain::story::engine::Stories::new(
        db.clone(),
        llm.clone(),
    ));
    let mut handlers: Vec<Arc<dyn JobHandler>> = vec![
        Arc::new(crate::jobs::analyze::Analyze {
            llm: llm.clone(),
            config: config.analysis.clone(),
        }),
        Arc::new(crate::jobs::story_enrich::Enrich {
            stories: stories.clone(),
        }),
    ];
    if config.jobs.diagnostics {
        handlers.push(Arc::new(Countdown { resumable: false }));
        handlers.push(Arc::new(Countdown { resumable: true }));
    }
    let jobs = JobEngine::new(db.clone(), bus.clone(), config.jobs.clone(), handlers);
    stories.set_jobs(Arc::new(crate::jobs::story_enrich::EnrichSubmitter(
        Arc::downgrade(&jobs),
    )));
    // Jobs left running by a server that died are resumed or failed before new work starts.
    jobs.reclaim_expired().await?;
    jobs.start();
    let hub = Hub::new(config.realtime.clone(), bus.clone());
    hub.listen();
    let config_guest_mode = config.guest_mode;
    let config_cache = config.cache.clone();
    let db_is_postgres = db.backend() == sceneintruder_store::Backend::Postgres;
    let config_token_cache_secs = config.token_cache_secs;
    let config_origins = config.allowed_origins.clone();
    let hosts = crate::api::guard::Hosts::new(config.addr, &config.allowed_hosts);
    if hosts.unchecked() {
        tracing::warn!(
            addr = %config.addr,
            "listening beyond loopback without [http] allowed_hosts: the Host header is not \
             checked, so DNS-rebinding pages can reach this server; list its names there"
        );
    }
    let config_rate_limits = config.rate_limits.clone();
    let exports = crate::domain::export::Catalog::build(&runtime, &config.exports);
    for warning in &exports.warnings {
        tracing::warn!("{warning}");
    }
    let state = Arc::new(AppState {
        exports: std::sync::RwLock::new(Arc::new(exports)),
        config: Arc::new(config),
        runtime,
        db,
        bus,
        jobs,
        hub,
        shutdown: CancellationToken::new(),
        tokens,
        sessions: crate::auth::Sessions::new(
            config_token_cache_secs,
            crate::auth::TOKEN_CACHE_ENTRIES,
        ),
        guest_mode: config_guest_mode,
        origins: crate::api::cors::Origins::new(&config_origins),
        hosts,
        views: crate::api::response_cache::ResponseCache::new(&config_cache, db_is_postgres),
        limiter: crate::api::rate_limit::Limiter::new(config_rate_limits),
        metrics: crate::api::metrics::Metrics::new(),
        locks: Default::default(),
        settings,
        llm,
        stories,
        blobs,
        started: Instant::now(),
    });
    state
        .hub
        .set_chat(Arc::new(crate::api::chat::WsChat(Arc::downgrade(&state))));
    state
        .hub
        .set_story(Arc::new(crate::api::story::WsStory(Arc::downgrade(&state))));
    if state.db.backend() == sceneintruder_store::Backend::Postgres {
        tokio::spawn(watch_settings(state.clone()));
    }
    if state.config.watch_plugins {
        crate::domain::plugins::watch(state.clone(), state.config.plugin_reload_debounce);
    }
    Ok(state)
}

/// How long start-up waits for the blob store to accept a probe write.
const BLOBS_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The blob store `[blobs]` names, proven writable (a wrong bucket, endpoint or credential
/// stops start-up here with the reason, not at the first upload).
async fn open_blobs(config: &Config) -> anyhow::Result<sceneintruder_blobs::BlobStore> {
    let blobs = sceneintruder_blobs::BlobStore::open(&config.blobs, &config.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot open the blob store ([blobs]): {e}"))?;
    match tokio::time::timeout(BLOBS_CHECK_TIMEOUT, blobs.check()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anyhow::bail!(
            "the blob store {} cannot be written and read back ([blobs]): {e}",
            blobs.describe()
        ),
        Err(_) => anyhow::bail!(
            "the blob store {} did not answer within {} s ([blobs])",
            blobs.describe(),
            BLOBS_CHECK_TIMEOUT.as_secs()
        ),
    }
    tracing::info!(store = blobs.describe(), "blob store ready");
    Ok(blobs)
}

/// Which plugin ids are bundled and their components' digests, as embedded at build time.
mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

fn bundled_plugins() -> sceneintruder_runtime::BundledPlugins {
    if bundled::BUNDLED_DIGESTS.is_empty() {
        tracing::warn!(
            "this server was built without the bundled plugins' digests (use `cargo xtask`): \
             plugins with bundled ids get no stored or environment keys unless pinned with \
             [plugins.<id>] sha256"
        );
    }
    sceneintruder_runtime::BundledPlugins {
        ids: bundled::BUNDLED_IDS.iter().map(|s| s.to_string()).collect(),
        digests: bundled::BUNDLED_DIGESTS
            .iter()
            .map(|(id, digest)| (id.to_string(), digest.to_string()))
            .collect(),
    }
}

/// Servers sharing one PostgreSQL database pick up each other's settings saves.
async fn watch_settings(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(SETTINGS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.settings.refresh(&state.db, &state.runtime).await {
            Ok(true) => tracing::info!("applied settings saved by another server"),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot re-read the settings: {}", e.details()),
        }
    }
}

/// Serve until SIGINT/SIGTERM, then finish in-flight requests and close the database.
pub async fn serve(state: Arc<AppState>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(state.config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", state.config.addr))?;
    let addr = listener.local_addr()?;
    // Plugins may never call this server (guest mode makes its API an admin's on loopback).
    sceneintruder_runtime::refuse_server_addresses(&[addr]);
    // One stable stdout line that scripts and tests wait for.
    println!("sceneintruder listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let app = crate::api::router(state.clone());
    crate::listener::serve(listener, app, state.config.http_limits.clone(), {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            // Long-lived streams would otherwise keep the server from ever stopping.
            state.shutdown.cancel();
            state.hub.close_all();
            state.jobs.shutdown();
        }
    })
    .await;
    tracing::info!("shutting down");
    state.db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The process environment as a map (config resolution reads it through this).
pub fn environment() -> BTreeMap<String, String> {
    std::env::vars().collect()
}
