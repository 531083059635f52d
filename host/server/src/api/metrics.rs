//! Prometheus metrics at `GET /metrics` (OpenMetrics text): requests by route and status,
//! request latency, jobs by kind and state, plugin calls and failures.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Response, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::error::ServerError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    jobs: Family<JobLabels, Gauge>,
    plugin_calls: Family<PluginLabels, Gauge>,
    plugin_failures: Family<PluginLabels, Gauge>,
    cache_bytes: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sceneintruder");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        let jobs = Family::<JobLabels, Gauge>::default();
        let plugin_calls = Family::<PluginLabels, Gauge>::default();
        let plugin_failures = Family::<PluginLabels, Gauge>::default();
        let cache_bytes = Gauge::default();
        registry.register(
            "response_cache_bytes",
            "Bytes of finished responses held by the read cache ([cache] max_bytes bounds it)",
            cache_bytes.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "jobs",
            "Jobs in the database by kind and state",
            jobs.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls since start",
            plugin_calls.clone(),
        );
        registry.register(
            "plugin_call_failures",
            "Plugin calls since start that failed (trap, timeout, vendor or export error)",
            plugin_failures.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            jobs,
            plugin_calls,
            plugin_failures,
            cache_bytes,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Count and time every routed request (the route template, never the raw path, so ids do
/// not explode the label set).
pub async fn record(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<Arc<AppState>>) -> Result<Response<Body>, ServerError> {
    let metrics = &state.metrics;
    let counts = state
        .db
        .jobs()
        .count_by_kind_and_state()
        .await
        .map_err(ServerError::store)?;
    metrics.jobs.clear();
    for (kind, job_state, n) in counts {
        metrics
            .jobs
            .get_or_create(&JobLabels {
                kind,
                state: job_state,
            })
            .set(n);
    }
    for stats in state.runtime.call_stats() {
        let labels = PluginLabels {
            plugin: stats.plugin,
        };
        metrics
            .plugin_calls
            .get_or_create(&labels)
            .set(stats.calls as i64);
        metrics
            .plugin_failures
            .get_or_create(&labels)
            .set(stats.failures as i64);
    }
    metrics
        .cache_bytes
        .set(i64::try_from(state.views.size()).unwrap_or(i64::MAX));
    let mut text = String::new();
    {
        let registry = match metrics.registry.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .map_err(ServerError::internal)?;
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}
