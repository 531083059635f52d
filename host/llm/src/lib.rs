//! The host LLM service: every feature asks it for completions. It picks the active
//! provider, resolves the model, runs the one retry loop of the system (429, 5xx, timeouts;
//! never other 4xx), caches answers under a key of every parameter, gets JSON out of model
//! text, and counts tokens per provider and per user.

pub mod json;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sceneintruder_runtime::llm::{
    CompletionRequest, CompletionResponse, JsonSchema, LlmStream, Message, Reasoning,
    ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::types::{HttpError, ProviderError};
use sceneintruder_runtime::{CallError, PluginRuntime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub use json::ParseError;

/// Tunables, all under `[llm]` in the server config.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles per retry unless the vendor says when to come back.
    pub retry_base: Duration,
    /// A vendor asking to wait longer than this fails the call instead.
    pub max_retry_wait: Duration,
    /// Wall-clock limit of one attempt.
    pub attempt_timeout: Duration,
    /// How long a cached answer is reused; zero disables the cache.
    pub cache_ttl: Duration,
    pub cache_entries: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            max_attempts: 3,
            retry_base: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(120),
            cache_ttl: Duration::from_secs(30 * 60),
            cache_entries: 1000,
        }
    }
}

/// The provider calls go to, as the settings say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLlm {
    pub provider: String,
    pub default_model: Option<String>,
    /// Changes whenever the provider's settings change, so answers obtained with other
    /// settings (another endpoint, another key) are not served from the cache.
    pub generation: i64,
}

/// Where the active provider comes from (the server's settings).
pub trait ProviderSource: Send + Sync {
    fn active(&self, runtime: &PluginRuntime) -> Option<ActiveLlm>;
}

/// A source pinned to one provider (tools, tests, single-provider deployments).
pub struct FixedProvider(pub ActiveLlm);

impl ProviderSource for FixedProvider {
    fn active(&self, _runtime: &PluginRuntime) -> Option<ActiveLlm> {
        Some(self.0.clone())
    }
}

/// One completion to make.
#[derive(Debug, Clone)]
pub struct LlmCall {
    pub system: Option<String>,
    /// Conversation, oldest first; at least one user message.
    pub messages: Vec<Message>,
    /// `None`: the configured default model, else the plugin's.
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f32>,
    pub stop: Vec<String>,
    pub format: ResponseFormat,
    pub reasoning: Reasoning,
    /// Who the tokens are counted for.
    pub user: String,
    /// Ask the vendor again even when an identical call is cached ("regenerate").
    pub fresh: bool,
    pub cancel: Option<CancellationToken>,
}

impl LlmCall {
    /// A single-turn call: one system prompt, one user message.
    pub fn new(system: impl Into<String>, user_text: impl Into<String>) -> LlmCall {
        let system = system.into();
        LlmCall {
            system: (!system.is_empty()).then_some(system),
            messages: vec![Message {
                role: Role::User,
                content: user_text.into(),
            }],
            model: None,
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop: Vec::new(),
            format: ResponseFormat::Text,
            reasoning: Reasoning::Off,
            user: String::new(),
            fresh: false,
            cancel: None,
        }
    }
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    pub text: String,
    pub finish_reason: String,
    /// The model that answered.
    pub model: String,
    pub provider: String,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    pub total_tokens: u32,
    /// Served from the cache (no vendor call, no tokens counted).
    pub cached: bool,
    /// Vendor calls made for this answer (0 when cached).
    pub attempts: u32,
    /// Time spent waiting between attempts.
    #[serde(skip)]
    pub waited: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No provider can be called; the text is the status (`API key not configured`, ...).
    #[error("LLM service not ready: {0}")]
    NotReady(String),
    #[error("the LLM call was cancelled")]
    Cancelled,
    #[error("the LLM provider did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The provider failed (after any retries).
    #[error("{0}")]
    Call(CallError),
    /// The answer is not the JSON that was asked for.
    #[error("{error}")]
    Parse {
        error: ParseError,
        completion: Box<Completion>,
    },
}

impl LlmError {
    /// Worth another attempt: the vendor is busy or failing, or the attempt ran out of time.
    fn retryable(&self) -> bool {
        match self {
            LlmError::Timeout(_) => true,
            LlmError::Call(CallError::Timeout { .. } | CallError::Busy { .. }) => true,
            LlmError::Call(CallError::Provider { error, .. }) => matches!(
                error,
                ProviderError::RateLimited(_)
                    | ProviderError::Upstream(_)
                    | ProviderError::Http(HttpError::Timeout | HttpError::Transport(_))
            ),
            _ => false,
        }
    }

    /// The vendor's own "come back after".
    fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Call(CallError::Provider {
                error: ProviderError::RateLimited(limit),
                ..
            }) => limit.retry_after_ms.map(Duration::from_millis),
            _ => None,
        }
    }
}

/// Whether the active provider can be called, in the words of `GET /api/llm/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub status: String,
    /// The provider calls go to (`""` when none can be called).
    pub provider: String,
}

/// Token counts of one provider or one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub calls: u64,
    pub cached_calls: u64,
    pub failed_calls: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// Usage since start, per provider and per user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub by_provider: BTreeMap<String, Tokens>,
    pub by_user: BTreeMap<String, Tokens>,
}

#[derive(Default)]
struct Usage(Mutex<UsageReport>);

impl Usage {
    fn record(&self, provider: &str, user: &str, change: impl Fn(&mut Tokens)) {
        let mut report = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(report.by_provider.entry(provider.to_string()).or_default());
        let user = if user.is_empty() { "anonymous" } else { user };
        change(report.by_user.entry(user.to_string()).or_default());
    }

    fn completed(&self, user: &str, c: &Completion) {
        self.record(&c.provider, user, |t| {
            if c.cached {
                t.cached_calls += 1;
            } else {
                t.calls += 1;
                t.prompt_tokens += u64::from(c.prompt_tokens);
                t.output_tokens += u64::from(c.output_tokens);
                t.total_tokens += u64::from(c.total_tokens);
            }
        });
    }
}

/// Answers by key, dropped after the TTL or when the cache is full (oldest first).
struct Cache {
    entries: HashMap<String, (Instant, Completion)>,
    order: VecDeque<String>,
}

impl Cache {
    fn get(&mut self, key: &str, ttl: Duration) -> Option<Completion> {
        match self.entries.get(key) {
            Some((at, c)) if at.elapsed() < ttl => Some(c.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: String, completion: Completion, capacity: usize) {
        if self
            .entries
            .insert(key.clone(), (Instant::now(), completion))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.entries.len() > capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        // Keys of entries that expired and were removed on read linger in `order`; drop them.
        if self.order.len() > capacity.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }
}

/// Everything that shapes an answer: the cache key is a hash of this.
#[derive(Serialize)]
struct CacheKey<'a> {
    provider: &'a str,
    generation: i64,
    model: &'a str,
    system: Option<&'a str>,
    messages: Vec<(&'static str, &'a str)>,
    temperature: Option<u32>,
    max_tokens: Option<u32>,
    top_p: Option<u32>,
    stop: &'a [String],
    format: String,
    reasoning: &'static str,
}

fn cache_key(provider: &str, generation: i64, req: &CompletionRequest) -> String {
    let key = CacheKey {
        provider,
        generation,
        model: &req.model,
        system: req.system_prompt.as_deref(),
        messages: req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                (role, m.content.as_str())
            })
            .collect(),
        temperature: req.temperature.map(f32::to_bits),
        max_tokens: req.max_tokens,
        top_p: req.top_p.map(f32::to_bits),
        stop: &req.stop,
        format: match &req.response_format {
            ResponseFormat::Text => "text".into(),
            ResponseFormat::JsonObject => "json".into(),
            ResponseFormat::JsonSchema(JsonSchema {
                name,
                schema,
                strict,
            }) => format!("schema:{name}:{strict}:{schema}"),
        },
        reasoning: match req.reasoning {
            Reasoning::Default => "default",
            Reasoning::Off => "off",
            Reasoning::On => "on",
        },
    };
    let text = serde_json::to_string(&key).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The service. Cheap to share behind an `Arc`.
pub struct LlmService {
    runtime: PluginRuntime,
    source: Arc<dyn ProviderSource>,
    config: ServiceConfig,
    cache: Mutex<Cache>,
    usage: Arc<Usage>,
}

impl LlmService {
    pub fn new(
        runtime: PluginRuntime,
        source: Arc<dyn ProviderSource>,
        config: ServiceConfig,
    ) -> LlmService {
        LlmService {
            runtime,
            source,
            config,
            cache: Mutex::new(Cache {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            usage: Arc::default(),
        }
    }

    /// Ready only when a provider is chosen, its plugin is loaded and every setting it
    /// requires is configured: a status that says "Ready" can be called.
    pub fn readiness(&self) -> Readiness {
        match self.callable() {
            Ok((_, active)) => Readiness {
                ready: true,
                status: "Ready".into(),
                provider: active.provider,
            },
            Err(status) => Readiness {
                ready: false,
                status,
                provider: String::new(),
            },
        }
    }

    /// The active provider's client, or why none can be called (the status text).
    fn callable(&self) -> Result<(sceneintruder_runtime::LlmProvider, ActiveLlm), String> {
        let active = self
            .source
            .active(&self.runtime)
            .ok_or("LLM provider not configured")?;
        let client = self
            .runtime
            .llm(&active.provider)
            .map_err(|_| format!("Provider plugin not loaded: {}", active.provider))?;
        let missing = client.missing_required();
        if missing.iter().any(|k| k == "api_key") {
            Err("API key not configured".into())
        } else if !missing.is_empty() {
            Err(format!("Missing required settings: {}", missing.join(", ")))
        } else {
            Ok((client, active))
        }
    }

    /// Model names the active provider lists (empty when none can be called).
    pub fn models(&self) -> Vec<String> {
        match self.callable() {
            Ok((client, _)) => client.info().models.iter().map(|m| m.id.clone()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn usage(&self) -> UsageReport {
        match self.usage.0.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The provider client and the request a call turns into.
    fn prepare(
        &self,
        call: &LlmCall,
    ) -> Result<
        (
            sceneintruder_runtime::LlmProvider,
            ActiveLlm,
            CompletionRequest,
        ),
        LlmError,
    > {
        let (client, active) = self.callable().map_err(LlmError::NotReady)?;
        let model = call
            .model
            .clone()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .or_else(|| {
                active
                    .default_model
                    .clone()
                    .filter(|m| !m.trim().is_empty())
            })
            .unwrap_or_else(|| client.info().default_model.clone());
        let request = CompletionRequest {
            model,
            system_prompt: call.system.clone(),
            messages: call.messages.clone(),
            temperature: call.temperature,
            max_tokens: call.max_tokens,
            top_p: call.top_p,
            stop: call.stop.clone(),
            response_format: call.format.clone(),
            reasoning: call.reasoning,
        };
        Ok((client, active, request))
    }

    /// Complete `call`: from the cache when an identical call was answered recently (unless
    /// `fresh`), else from the provider with retries on transient failures.
    pub async fn complete(&self, call: &LlmCall) -> Result<Completion, LlmError> {
        let (client, active, request) = self.prepare(call)?;
        let key = cache_key(&active.provider, active.generation, &request);
        let caching = !self.config.cache_ttl.is_zero();
        if caching && !call.fresh {
            let hit = self.lock_cache().get(&key, self.config.cache_ttl);
            if let Some(mut hit) = hit {
                hit.cached = true;
                hit.attempts = 0;
                hit.waited = Duration::ZERO;
                self.usage.completed(&call.user, &hit);
                return Ok(hit);
            }
        }
        let cancel = call.cancel.clone().unwrap_or_default();
        let (response, attempts, waited) = self
            .with_retries(&active.provider, &call.user, &cancel, || {
                client.complete(&request, Some(&cancel))
            })
            .await?;
        let completion = to_completion(&active.provider, response, attempts, waited);
        self.usage.completed(&call.user, &completion);
        if caching {
            self.lock_cache()
                .put(key, completion.clone(), self.config.cache_entries);
        }
        Ok(completion)
    }

    /// Complete `call` in JSON mode (unless it already names a format) and parse the answer
    /// as `T`, repairing what models commonly get wrong (fences, chatter, trailing commas).
    pub async fn complete_json<T: DeserializeOwned>(
        &self,
        call: &LlmCall,
    ) -> Result<(T, Completion), LlmError> {
        let mut call = call.clone();
        if matches!(call.format, ResponseFormat::Text) {
            call.format = ResponseFormat::JsonObject;
        }
        let completion = self.complete(&call).await?;
        match json::parse(&completion.text) {
            Ok(value) => Ok((value, completion)),
            Err(error) => {
                // A cached unparsable answer would fail the same way forever.
                if !completion.cached {
                    self.forget(&call);
                }
                Err(LlmError::Parse {
                    error,
                    completion: Box::new(completion),
                })
            }
        }
    }

    fn forget(&self, call: &LlmCall) {
        if let Ok((_, active, request)) = self.prepare(call) {
            let key = cache_key(&active.provider, active.generation, &request);
            self.lock_cache().entries.remove(&key);
        }
    }

    /// Stream `call` (never cached). Starting the stream is retried like a completion; once
    /// text has been delivered a failure ends the stream with an error.
    pub async fn stream(&self, call: &LlmCall) -> Result<CompletionStream, LlmError> {
        let (client, active, request) = self.prepare(call)?;
        let cancel = call.cancel.clone().unwrap_or_default();
        let (inner, _, _) = self
            .with_retries(&active.provider, &call.user, &cancel, || {
                client.stream(&request, Some(cancel.clone()))
            })
            .await?;
        Ok(CompletionStream {
            inner,
            provider: active.provider,
            user: call.user.clone(),
            usage: self.usage.clone(),
            timeout: self.config.attempt_timeout,
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The one retry loop: transient failures are retried up to `max_attempts`, waiting what
    /// the vendor asks (`Retry-After`) or an exponential backoff; anything else fails at once.
    async fn with_retries<T, F, Fut>(
        &self,
        provider: &str,
        user: &str,
        cancel: &CancellationToken,
        mut attempt: F,
    ) -> Result<(T, u32, Duration), LlmError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            attempts += 1;
            let outcome = tokio::select! {
                _ = cancel.cancelled() => Err(LlmError::Cancelled),
                r = tokio::time::timeout(self.config.attempt_timeout, attempt()) => match r {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(CallError::Cancelled)) => Err(LlmError::Cancelled),
                    Ok(Err(e)) => Err(LlmError::Call(e)),
                    Err(_) => Err(LlmError::Timeout(self.config.attempt_timeout)),
                },
            };
            let error = match outcome {
                Ok(value) => return Ok((value, attempts, waited)),
                Err(e) => e,
            };
            let backoff = self
                .config
                .retry_base
                .saturating_mul(2u32.saturating_pow(attempts - 1));
            let delay = error.retry_after().unwrap_or(backoff);
            if !error.retryable()
                || attempts >= self.config.max_attempts.max(1)
                || delay > self.config.max_retry_wait
            {
                if !matches!(error, LlmError::Cancelled) {
                    self.usage.record(provider, user, |t| t.failed_calls += 1);
                }
                return Err(error);
            }
            tracing::info!(
                %provider,
                attempt = attempts,
                delay_ms = delay.as_millis() as u64,
                "retrying LLM call: {error}"
            );
            tokio::select! {
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
            waited += delay;
        }
    }
}

fn to_completion(
    provider: &str,
    response: CompletionResponse,
    attempts: u32,
    waited: Duration,
) -> Completion {
    let usage = response.usage.unwrap_or(sceneintruder_runtime::llm::Usage {
        prompt_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
    });
    Completion {
        text: response.text,
        finish_reason: response.finish_reason,
        model: response.model,
        provider: provider.to_string(),
        prompt_tokens: usage.prompt_tokens,
        output_tokens: usage.output_tokens,
        total_tokens: usage
            .total_tokens
            .max(usage.prompt_tokens + usage.output_tokens),
        cached: false,
        attempts,
        waited,
    }
}

/// A streamed completion: text deltas, then one final [`Completion`].
pub struct CompletionStream {
    inner: LlmStream,
    provider: String,
    user: String,
    usage: Arc<Usage>,
    timeout: Duration,
}

/// One event of a [`CompletionStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Delta(String),
    Done(Completion),
}

impl CompletionStream {
    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<StreamItem, LlmError>> {
        let event = match tokio::time::timeout(self.timeout, self.inner.next()).await {
            Ok(event) => event?,
            Err(_) => return Some(Err(LlmError::Timeout(self.timeout))),
        };
        Some(match event {
            Ok(StreamEvent::Delta(text)) => Ok(StreamItem::Delta(text)),
            Ok(StreamEvent::Done(response)) => {
                let completion = to_completion(&self.provider, response, 1, Duration::ZERO);
                self.usage.completed(&self.user, &completion);
                Ok(StreamItem::Done(completion))
            }
            Err(CallError::Cancelled) => Err(LlmError::Cancelled),
            Err(e) => {
                self.usage
                    .record(&self.provider, &self.user, |t| t.failed_calls += 1);
                Err(LlmError::Call(e))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(temperature: Option<f32>) -> CompletionRequest {
        CompletionRequest {
            model: "m".into(),
            system_prompt: Some("s".into()),
            messages: vec![Message {
                role: Role::User,
                content: "hi".into(),
            }],
            temperature,
            max_tokens: Some(10),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning: Reasoning::Off,
        }
    }

    #[test]
    fn the_cache_key_covers_every_parameter() {
        let base = cache_key("p", 1, &request(Some(0.7)));
        assert_eq!(base, cache_key("p", 1, &request(Some(0.7))));
        assert_ne!(base, cache_key("p", 1, &request(Some(0.8))));
        assert_ne!(base, cache_key("p", 1, &request(None)));
        assert_ne!(base, cache_key("p", 2, &request(Some(0.7))));
        assert_ne!(base, cache_key("q", 1, &request(Some(0.7))));
        let mut json = request(Some(0.7));
        json.response_format = ResponseFormat::JsonObject;
        assert_ne!(base, cache_key("p", 1, &json));
        let mut reasoning = request(Some(0.7));
        reasoning.reasoning = Reasoning::On;
        assert_ne!(base, cache_key("p", 1, &reasoning));
    }

    #[test]
    fn the_cache_evicts_oldest_and_expires() {
        let completion = Completion {
            text: "t".into(),
            finish_reason: "stop".into(),
            model: "m".into(),
            provider: "p".into(),
            prompt_tokens: 1,
            output_tokens: 1,
            total_tokens: 2,
            cached: false,
            attempts: 1,
            waited: Duration::ZERO,
        };
        let mut cache = Cache {
            entries: HashMap::new(),
            order: VecDeque::new(),
        };
        for i in 0..5 {
            cache.put(format!("k{i}"), completion.clone(), 3);
        }
        let ttl = Duration::from_secs(60);
        assert!(cache.get("k0", ttl).is_none() && cache.get("k1", ttl).is_none());
        assert!(cache.get("k4", ttl).is_some());
        assert!(cache.get("k4", Duration::ZERO).is_none(), "expired");
    }
}
