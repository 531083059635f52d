//! OpenAI Chat Completions codec, reusable by every OpenAI-compatible vendor.
//!
//! A provider describes its deviations with a [`ChatDialect`] (base URL, auth headers, how
//! the reasoning switch is expressed, which output-cap key a model takes, final body tweaks)
//! and calls [`complete`], [`start_stream`] and [`list_model_ids`]. The pure parts
//! ([`build_body`], [`parse_response`], [`ChatStreamDecoder`], [`parse_model_ids`]) are public so
//! they can be tested and reused.
//!
//! Wire format:
//!
//! * `POST {base_url}/chat/completions`, `Content-Type: application/json`,
//!   `Authorization: Bearer {{secret:api_key}}` (the host substitutes the key);
//! * body: `model`; `messages` (the system prompt first when present and non-empty, then the
//!   conversation); `temperature`, `top_p`, `stop` (non-empty) and `max_tokens` (non-zero; or
//!   the dialect's key, e.g. `max_completion_tokens`) only when set; `response_format`
//!   `{"type":"json_object"}` or `{"type":"json_schema","json_schema":{"name","schema","strict"}}`
//!   where the dialect's [`JsonSupport`] allows, otherwise a JSON instruction in the system
//!   prompt; then the dialect's reasoning hook and final adjustments;
//! * streaming adds `"stream": true`, `"stream_options": {"include_usage": true}` and
//!   `Accept: text/event-stream`;
//! * answer: `choices[0].message.content` (null -> ""), `choices[0].finish_reason` (null -> ""),
//!   `usage.{prompt_tokens, completion_tokens, total_tokens}`, `model`.

use crate::completion::{JSON_OBJECT_INSTRUCTION, schema_instruction, schema_value};
use crate::http;
use crate::llm::{CompletionRequest, CompletionResponse, Reasoning, ResponseFormat, Role, Usage};
use crate::sse::SseEvent;
use crate::streams::{self, SseDecoder, Step};
use crate::types::{ModelInfo, ProviderError};
use serde_json::{Map, Value, json};

/// How one OpenAI-compatible vendor deviates from the common wire format.
///
/// Only [`vendor`](ChatDialect::vendor) and
/// [`default_base_url`](ChatDialect::default_base_url) are required.
pub trait ChatDialect {
    /// Vendor name used in error messages, e.g. `OpenAI`.
    fn vendor(&self) -> &str;

    /// Base URL used when the `base_url` setting is unset, e.g. `https://api.openai.com/v1`.
    fn default_base_url(&self) -> &str;

    /// Name of the secret holding the API key (checked with `config::has-secret`).
    fn api_key_secret(&self) -> &str {
        "api_key"
    }

    /// Whether the API key secret must be configured before a request is sent. Default `true`;
    /// a local server (Ollama, llama.cpp) may run without one.
    fn api_key_required(&self) -> bool {
        true
    }

    /// Headers sent with every request. Default: `Authorization: Bearer {{secret:api_key}}`.
    fn headers(&self) -> Vec<(String, String)> {
        vec![http::bearer(self.api_key_secret())]
    }

    /// Path of the chat endpoint below the base URL.
    fn chat_path(&self) -> &str {
        "/chat/completions"
    }

    /// Path of the model list below the base URL.
    fn models_path(&self) -> &str {
        "/models"
    }

    /// The model id sent for `model` (already trimmed) under this reasoning switch. Vendors that
    /// express reasoning as a choice of model (a `-reasoning` / `-non-reasoning` pair) map it
    /// here; every other hook sees the result. Default: `model` unchanged.
    fn resolve_model(&self, model: &str, _reasoning: Reasoning) -> String {
        model.to_string()
    }

    /// How `model` can be asked for JSON (see [`JsonSupport`]). Default: `response_format`
    /// with `json_schema` and `json_object`.
    fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
        JsonSupport::Schema
    }

    /// True when the vendor rejects `response_format: json_object` unless the conversation
    /// mentions JSON (DeepSeek, DashScope). The codec then adds a one-line JSON instruction to
    /// the system prompt when neither it nor a message contains the word. Default `false`.
    fn json_object_needs_keyword(&self) -> bool {
        false
    }

    /// Body key for the output cap of `model`. Default `max_tokens`.
    fn max_tokens_key(&self, _model: &str) -> &'static str {
        "max_tokens"
    }

    /// Expresses the reasoning switch in the body. Default: nothing (the vendor's default).
    fn apply_reasoning(&self, _model: &str, _reasoning: Reasoning, _body: &mut Map<String, Value>) {
    }

    /// Last chance to change the body (runs after [`apply_reasoning`](Self::apply_reasoning)).
    fn adjust_body(
        &self,
        _req: &CompletionRequest,
        _body: &mut Map<String, Value>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The `model` reported back. Default: the vendor's echo when non-empty, else the
    /// requested model.
    fn response_model(&self, requested: &str, echoed: Option<&str>) -> String {
        match echoed.map(str::trim) {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => requested.to_string(),
        }
    }
}

/// How a vendor (or one of its models) can be asked for a JSON answer.
///
/// A request format the vendor cannot express is degraded, never passed through untyped:
/// a JSON schema becomes `json_object` plus the schema in the system prompt, and JSON mode
/// becomes an instruction in the system prompt (the wording of [`crate::completion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonSupport {
    /// `response_format` `json_schema` and `json_object`.
    Schema,
    /// `response_format` `json_object` only; a schema is given as an instruction.
    Object,
    /// No `response_format`: JSON (and a schema) is asked for in the system prompt.
    Instruction,
}

/// The OpenAI dialect itself.
///
/// * o-series and GPT-5 reasoning models (see [`is_openai_reasoning_model`]) take
///   `max_completion_tokens` instead of `max_tokens`, and `temperature` / `top_p` are not sent
///   to them (those models reject non-default sampling parameters).
/// * Reasoning on those models maps to `reasoning_effort`: `off` -> `"low"` (the lowest effort
///   every o-series and GPT-5 model accepts), `on` -> `"high"`, `default` -> nothing (the
///   vendor's default, `medium`). Other models get no reasoning parameter.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAi;

impl ChatDialect for OpenAi {
    fn vendor(&self) -> &str {
        "OpenAI"
    }

    fn default_base_url(&self) -> &str {
        "https://api.openai.com/v1"
    }

    fn max_tokens_key(&self, model: &str) -> &'static str {
        if is_openai_reasoning_model(model) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        }
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        if !is_openai_reasoning_model(model) {
            return;
        }
        let effort = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => "low",
            Reasoning::On => "high",
        };
        body.insert("reasoning_effort".into(), json!(effort));
    }

    fn adjust_body(
        &self,
        req: &CompletionRequest,
        body: &mut Map<String, Value>,
    ) -> Result<(), ProviderError> {
        if is_openai_reasoning_model(&req.model) {
            body.remove("temperature");
            body.remove("top_p");
        }
        Ok(())
    }
}

/// True for OpenAI reasoning models: `o1`, `o3`, `o4-mini`, ... (an `o` followed by a digit)
/// and `gpt-5*` except the non-reasoning `gpt-5*-chat*` variants. A gateway prefix such as
/// `openai/` is ignored; case-insensitive.
pub fn is_openai_reasoning_model(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or_default();
    let b = m.as_bytes();
    (b.len() >= 2 && b[0] == b'o' && b[1].is_ascii_digit())
        || (m.starts_with("gpt-5") && !m.contains("-chat"))
}

/// One row of a provider's built-in catalog, `const`-friendly; [`ModelSpec::info`] turns it
/// into the WIT `model-info` (every OpenAI-compatible model here streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The vendor's model id, sent on the wire.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Context window in tokens, 0 when not documented.
    pub context: u32,
    /// Largest output in tokens, when documented.
    pub max_output: Option<u32>,
    /// `response_format: json_object` (or the vendor's equivalent) is honoured.
    pub json_mode: bool,
    /// A JSON schema can be enforced.
    pub json_schema: bool,
    /// The reasoning switch is meaningful for this model.
    pub reasoning: bool,
    /// Images are accepted as input.
    pub vision: bool,
}

impl ModelSpec {
    /// The catalog entry.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.to_string(),
            display_name: self.name.to_string(),
            context_window: self.context,
            max_output_tokens: self.max_output,
            json_mode: self.json_mode,
            json_schema: self.json_schema,
            reasoning: self.reasoning,
            vision_input: self.vision,
            streaming: true,
        }
    }
}

/// A model the vendor lists: its catalog entry when `specs` has it, else `fallback(id)`.
pub fn listed_model(
    id: &str,
    specs: &[ModelSpec],
    fallback: impl Fn(&str) -> ModelInfo,
) -> ModelInfo {
    specs
        .iter()
        .find(|m| m.id == id)
        .map(ModelSpec::info)
        .unwrap_or_else(|| fallback(id))
}

/// The provider description of a plugin whose catalog is `specs` (default: the first).
pub fn catalog_info(
    id: &str,
    display_name: &str,
    specs: &[ModelSpec],
) -> crate::types::ProviderInfo {
    crate::types::ProviderInfo {
        id: id.into(),
        display_name: display_name.into(),
        default_model: specs.first().map(|m| m.id.to_string()).unwrap_or_default(),
        models: specs.iter().map(ModelSpec::info).collect(),
    }
}

/// The vendor's `GET /models`, each id described by its catalog entry or `fallback(id)`.
pub fn list_known_models<D: ChatDialect + ?Sized>(
    dialect: &D,
    specs: &[ModelSpec],
    fallback: impl Fn(&str) -> ModelInfo,
) -> Result<Vec<ModelInfo>, ProviderError> {
    Ok(list_model_ids(dialect)?
        .iter()
        .filter(|id| !id.trim().is_empty())
        .map(|id| listed_model(id, specs, &fallback))
        .collect())
}

/// Builds the request body. `stream` adds `stream` and `stream_options.include_usage`.
///
/// The model is [`ChatDialect::resolve_model`] of the trimmed request model; the JSON format
/// is expressed as [`ChatDialect::json_support`] allows (an instruction the vendor needs is
/// appended to the system prompt, after a blank line).
pub fn build_body<D: ChatDialect + ?Sized>(
    dialect: &D,
    req: &CompletionRequest,
    stream: bool,
) -> Result<Value, ProviderError> {
    if req.model.trim().is_empty() {
        return Err(ProviderError::InvalidRequest("model is empty".into()));
    }
    if req.messages.is_empty() {
        return Err(ProviderError::InvalidRequest(
            "the conversation has no messages".into(),
        ));
    }
    let model = dialect.resolve_model(req.model.trim(), req.reasoning);
    let mut body = Map::new();
    body.insert("model".into(), json!(model));

    let (response_format, instruction) = json_format(dialect, &model, req)?;
    let system = match (
        req.system_prompt.as_deref().filter(|s| !s.is_empty()),
        instruction,
    ) {
        (Some(s), Some(i)) => Some(format!("{s}\n\n{i}")),
        (Some(s), None) => Some(s.to_string()),
        (None, i) => i,
    };
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": m.content}));
    }
    body.insert("messages".into(), Value::Array(messages));

    if let Some(t) = req.temperature {
        body.insert("temperature".into(), float("temperature", t)?);
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), float("top_p", p)?);
    }
    if let Some(n) = req.max_tokens.filter(|n| *n > 0) {
        body.insert(dialect.max_tokens_key(&model).into(), json!(n));
    }
    if !req.stop.is_empty() {
        body.insert("stop".into(), json!(req.stop));
    }
    if let Some(format) = response_format {
        body.insert("response_format".into(), format);
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    dialect.apply_reasoning(&model, req.reasoning, &mut body);
    dialect.adjust_body(req, &mut body)?;
    Ok(Value::Object(body))
}

/// The `response_format` to send and the system-prompt instruction to add, if any.
fn json_format<D: ChatDialect + ?Sized>(
    dialect: &D,
    model: &str,
    req: &CompletionRequest,
) -> Result<(Option<Value>, Option<String>), ProviderError> {
    let support = dialect.json_support(model, req.reasoning);
    let object = || json!({"type": "json_object"});
    Ok(match &req.response_format {
        ResponseFormat::Text => (None, None),
        ResponseFormat::JsonObject => {
            let instruction = || JSON_OBJECT_INSTRUCTION.to_string();
            match support {
                JsonSupport::Instruction => (None, Some(instruction())),
                JsonSupport::Schema | JsonSupport::Object => {
                    let keyword = dialect.json_object_needs_keyword() && !mentions_json(req);
                    (Some(object()), keyword.then(instruction))
                }
            }
        }
        ResponseFormat::JsonSchema(s) => {
            let schema = schema_value(s)?;
            match support {
                JsonSupport::Schema => {
                    let name = if s.name.trim().is_empty() {
                        "response"
                    } else {
                        s.name.trim()
                    };
                    (
                        Some(json!({
                            "type": "json_schema",
                            "json_schema": {"name": name, "schema": schema, "strict": s.strict},
                        })),
                        None,
                    )
                }
                JsonSupport::Object => (Some(object()), Some(schema_instruction(s, &schema))),
                JsonSupport::Instruction => (None, Some(schema_instruction(s, &schema))),
            }
        }
    })
}

/// True when the system prompt or a message contains the word `json` (any case).
fn mentions_json(req: &CompletionRequest) -> bool {
    let has = |s: &str| s.to_ascii_lowercase().contains("json");
    req.system_prompt.as_deref().is_some_and(has) || req.messages.iter().any(|m| has(&m.content))
}

/// An `f32` as the JSON number a human would write (`0.7`, not `0.699999988079071`).
fn float(name: &str, v: f32) -> Result<Value, ProviderError> {
    v.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| ProviderError::InvalidRequest(format!("{name} is not a finite number")))
}

/// Parses a 2xx chat-completions body.
pub fn parse_response<D: ChatDialect + ?Sized>(
    dialect: &D,
    requested_model: &str,
    body: &[u8],
) -> Result<CompletionResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let Some(choice) = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        return Err(match v.get("error").filter(|e| !e.is_null()) {
            Some(_) => ProviderError::BadResponse(format!(
                "{} returned an error: {}",
                dialect.vendor(),
                http::error_message(body)
            )),
            None => ProviderError::BadResponse(format!("{} returned no choices", dialect.vendor())),
        });
    };
    Ok(CompletionResponse {
        text: content_text(choice.pointer("/message/content")),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        usage: v.get("usage").and_then(parse_usage),
        model: dialect.response_model(requested_model, v.get("model").and_then(Value::as_str)),
    })
}

/// `content` as text: a string, null/absent -> "", or an array of `{"type":"text","text":..}`
/// parts (some compatible vendors) concatenated.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect(),
        _ => String::new(),
    }
}

/// `usage` object -> [`Usage`]; `None` for null or a non-object. A missing total is the sum.
pub fn parse_usage(u: &Value) -> Option<Usage> {
    let u = u.as_object()?;
    let n = |k: &str| {
        u.get(k)
            .and_then(Value::as_u64)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    let prompt = n("prompt_tokens").unwrap_or(0);
    let output = n("completion_tokens").unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        output_tokens: output,
        total_tokens: n("total_tokens").unwrap_or(prompt.saturating_add(output)),
    })
}

/// Parses a `GET /models` body: the `data[].id` strings.
pub fn parse_model_ids(body: &[u8]) -> Result<Vec<String>, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::BadResponse("model list has no `data` array".into()))?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .map(str::to_string)
        .collect())
}

/// Streaming decoder for chat-completion chunks.
///
/// Emits `choices[0].delta.content`, remembers `choices[0].finish_reason`, `usage` (sent in
/// the final chunk when `include_usage` is on) and `model`. The stream is complete at
/// `[DONE]`, or at the end of the body once a finish reason has arrived; a body that ends
/// with neither is `stream-interrupted`. An `error` object inside the stream is also
/// `stream-interrupted`, with the vendor's message.
pub struct ChatStreamDecoder<D> {
    dialect: D,
    requested_model: String,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl<D: ChatDialect> ChatStreamDecoder<D> {
    /// A decoder for a stream of `requested_model`.
    pub fn new(dialect: D, requested_model: &str) -> Self {
        Self {
            dialect,
            requested_model: requested_model.to_string(),
            model: None,
            finish_reason: None,
            usage: None,
        }
    }
}

impl<D: ChatDialect> SseDecoder for ChatStreamDecoder<D> {
    fn on_event(&mut self, event: &SseEvent) -> Result<Step, ProviderError> {
        if event.is_done() {
            return Ok(Step::End);
        }
        if event.data.trim().is_empty() {
            return Ok(Step::Skip);
        }
        let v: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::BadResponse(format!(
                "{} stream chunk is not JSON ({e}): {}",
                self.dialect.vendor(),
                http::truncate(&event.data, 200)
            ))
        })?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(ProviderError::StreamInterrupted(format!(
                "{} reported an error mid-stream: {}",
                self.dialect.vendor(),
                http::error_message(event.data.as_bytes())
            )));
        }
        if let Some(m) = v
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            self.model = Some(m.to_string());
        }
        if let Some(u) = v.get("usage").and_then(parse_usage) {
            self.usage = Some(u);
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(Step::Skip);
        };
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_string());
        }
        let delta = content_text(choice.pointer("/delta/content"));
        Ok(if delta.is_empty() {
            Step::Skip
        } else {
            Step::Delta(delta)
        })
    }

    fn finish(
        &mut self,
        text: String,
        body_ended: bool,
    ) -> Result<CompletionResponse, ProviderError> {
        if body_ended && self.finish_reason.is_none() {
            return Err(ProviderError::StreamInterrupted(format!(
                "{} stream ended before its final event",
                self.dialect.vendor()
            )));
        }
        Ok(CompletionResponse {
            text,
            finish_reason: self.finish_reason.take().unwrap_or_default(),
            usage: self.usage.take(),
            model: self
                .dialect
                .response_model(&self.requested_model, self.model.as_deref()),
        })
    }
}

/// `{base_url}{path}` after checking that the API key secret is configured (when the dialect
/// requires one).
pub fn endpoint<D: ChatDialect + ?Sized>(dialect: &D, path: &str) -> Result<String, ProviderError> {
    if dialect.api_key_required() {
        crate::config::require_secret(dialect.api_key_secret())?;
    }
    let base = crate::config::base_url(dialect.default_base_url())?;
    Ok(format!("{base}{path}"))
}

/// Runs one chat completion.
pub fn complete<D: ChatDialect + ?Sized>(
    dialect: &D,
    req: &CompletionRequest,
) -> Result<CompletionResponse, ProviderError> {
    let url = endpoint(dialect, dialect.chat_path())?;
    let body = build_body(dialect, req, false)?;
    let resp = http::send(&http::post_json(&url, dialect.headers(), &body))?;
    parse_response(dialect, &sent_model(&body, req), &resp.body)
}

/// The model id a built body carries (the resolved model), else the request's.
fn sent_model(body: &Value, req: &CompletionRequest) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or(&req.model)
        .to_string()
}

/// Starts a streamed chat completion and registers it in [`streams`]; returns the stream id.
/// Pair it with [`streams::next_event`] and [`streams::close`].
pub fn start_stream<D: ChatDialect + 'static>(
    dialect: D,
    req: &CompletionRequest,
) -> Result<u32, ProviderError> {
    let url = endpoint(&dialect, dialect.chat_path())?;
    let body = build_body(&dialect, req, true)?;
    let headers = dialect.headers();
    let decoder = ChatStreamDecoder::new(dialect, &sent_model(&body, req));
    streams::open_sse(&url, headers, &body, http::status_error, decoder)
}

/// Runs one chat completion as a stream and returns its final event: for vendors or modes
/// that answer only when streamed (e.g. DashScope's thinking mode). The stream is closed
/// whatever happens.
pub fn complete_by_streaming<D: ChatDialect + 'static>(
    dialect: D,
    req: &CompletionRequest,
) -> Result<CompletionResponse, ProviderError> {
    let id = start_stream(dialect, req)?;
    let outcome = loop {
        match streams::next_event(id) {
            Ok(crate::llm::StreamEvent::Delta(_)) => continue,
            Ok(crate::llm::StreamEvent::Done(done)) => break Ok(done),
            Err(e) => break Err(e),
        }
    };
    streams::close(id);
    outcome
}

/// `GET {base_url}/models` -> the model ids, in the vendor's order.
pub fn list_model_ids<D: ChatDialect + ?Sized>(dialect: &D) -> Result<Vec<String>, ProviderError> {
    let url = endpoint(dialect, dialect.models_path())?;
    let resp = http::send(&http::get(&url, dialect.headers()))?;
    parse_model_ids(&resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{JsonSchema, Message};
    use crate::streams::EventSource;
    use crate::streams::SseSource;
    use crate::streams::tests::{FakeBody, drain};

    fn req(model: &str) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "hi".into(),
            }],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning: Reasoning::Default,
        }
    }

    #[test]
    fn minimal_body_has_only_model_and_messages() {
        let b = build_body(&OpenAi, &req("gpt-4o"), false).unwrap();
        assert_eq!(
            b,
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn full_body() {
        let mut r = req("gpt-4.1");
        r.system_prompt = Some("be brief".into());
        r.messages.push(Message {
            role: Role::Assistant,
            content: "hello".into(),
        });
        r.messages.push(Message {
            role: Role::User,
            content: "again".into(),
        });
        r.temperature = Some(0.7);
        r.top_p = Some(0.9);
        r.max_tokens = Some(1200);
        r.stop = vec!["END".into()];
        r.response_format = ResponseFormat::JsonObject;
        r.reasoning = Reasoning::Off;
        let b = build_body(&OpenAi, &r, false).unwrap();
        assert_eq!(
            b,
            json!({
                "model": "gpt-4.1",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "again"},
                ],
                "temperature": 0.7,
                "top_p": 0.9,
                "max_tokens": 1200,
                "stop": ["END"],
                "response_format": {"type": "json_object"},
            })
        );
    }

    #[test]
    fn empty_system_prompt_and_zero_max_tokens_are_omitted() {
        let mut r = req("gpt-4o");
        r.system_prompt = Some(String::new());
        r.max_tokens = Some(0);
        r.temperature = Some(0.0);
        let b = build_body(&OpenAi, &r, false).unwrap();
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert!(b.get("max_tokens").is_none());
        assert_eq!(b["temperature"], json!(0.0));
    }

    #[test]
    fn json_schema_format() {
        let mut r = req("gpt-4o");
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#
                .into(),
            strict: true,
        });
        let b = build_body(&OpenAi, &r, false).unwrap();
        assert_eq!(
            b["response_format"],
            json!({
                "type": "json_schema",
                "json_schema": {
                    "name": "scene",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    "strict": true,
                }
            })
        );
        // Unnamed schema gets a default name.
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: " ".into(),
            schema: "{}".into(),
            strict: false,
        });
        let b = build_body(&OpenAi, &r, false).unwrap();
        assert_eq!(
            b["response_format"]["json_schema"]["name"],
            json!("response")
        );
        assert_eq!(b["response_format"]["json_schema"]["strict"], json!(false));
        // Invalid schemas are rejected before any HTTP.
        for bad in ["{not json", "[1,2]"] {
            r.response_format = ResponseFormat::JsonSchema(JsonSchema {
                name: "x".into(),
                schema: bad.into(),
                strict: true,
            });
            assert!(matches!(
                build_body(&OpenAi, &r, false),
                Err(ProviderError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn invalid_requests() {
        let mut r = req("gpt-4o");
        r.messages.clear();
        assert!(matches!(
            build_body(&OpenAi, &r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
        let mut r = req(" ");
        r.temperature = Some(0.5);
        assert!(matches!(
            build_body(&OpenAi, &r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
        let mut r = req("gpt-4o");
        r.temperature = Some(f32::NAN);
        assert!(matches!(
            build_body(&OpenAi, &r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn reasoning_model_detection() {
        for m in [
            "o1",
            "o1-mini",
            "o3-mini",
            "o3",
            "o4-mini",
            "O3-MINI",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-5.1",
            "openai/o3-mini",
        ] {
            assert!(is_openai_reasoning_model(m), "{m}");
        }
        for m in [
            "gpt-4o",
            "gpt-4.1-mini",
            "gpt-5-chat-latest",
            "omni-moderation-latest",
            "o",
            "chatgpt-4o-latest",
            "",
        ] {
            assert!(!is_openai_reasoning_model(m), "{m}");
        }
    }

    #[test]
    fn reasoning_mapping_and_max_completion_tokens() {
        let mut r = req("o3-mini");
        r.max_tokens = Some(500);
        r.temperature = Some(0.2);
        r.top_p = Some(0.5);
        let cases = [
            (Reasoning::Default, None),
            (Reasoning::Off, Some("low")),
            (Reasoning::On, Some("high")),
        ];
        for (reasoning, effort) in cases {
            r.reasoning = reasoning;
            let b = build_body(&OpenAi, &r, false).unwrap();
            assert_eq!(b.get("reasoning_effort").and_then(Value::as_str), effort);
            assert_eq!(b["max_completion_tokens"], json!(500));
            assert!(b.get("max_tokens").is_none());
            assert!(b.get("temperature").is_none());
            assert!(b.get("top_p").is_none());
        }
        // Non-reasoning models: no reasoning parameter whatever the switch; `max_tokens`.
        let mut r = req("gpt-4o");
        r.max_tokens = Some(500);
        r.temperature = Some(0.2);
        for reasoning in [Reasoning::Default, Reasoning::Off, Reasoning::On] {
            r.reasoning = reasoning;
            let b = build_body(&OpenAi, &r, false).unwrap();
            assert!(b.get("reasoning_effort").is_none());
            assert_eq!(b["max_tokens"], json!(500));
            assert!(b.get("max_completion_tokens").is_none());
            assert_eq!(b["temperature"], json!(0.2));
        }
        let mut r = req("gpt-5-mini");
        r.reasoning = Reasoning::On;
        r.max_tokens = Some(64);
        let b = build_body(&OpenAi, &r, true).unwrap();
        assert_eq!(b["reasoning_effort"], json!("high"));
        assert_eq!(b["max_completion_tokens"], json!(64));
    }

    struct Plain;
    impl ChatDialect for Plain {
        fn vendor(&self) -> &str {
            "Plain"
        }
        fn default_base_url(&self) -> &str {
            "https://plain.example/v1"
        }
    }

    #[test]
    fn default_dialect_sends_no_reasoning_and_max_tokens() {
        let mut r = req("o3-mini");
        r.reasoning = Reasoning::On;
        r.max_tokens = Some(10);
        r.temperature = Some(1.0);
        let b = build_body(&Plain, &r, false).unwrap();
        assert!(b.get("reasoning_effort").is_none());
        assert_eq!(b["max_tokens"], json!(10));
        assert_eq!(b["temperature"], json!(1.0));
        assert_eq!(Plain.headers(), vec![http::bearer("api_key")]);
    }

    /// A dialect that exercises the optional hooks.
    struct Degraded(JsonSupport);
    impl ChatDialect for Degraded {
        fn vendor(&self) -> &str {
            "Degraded"
        }
        fn default_base_url(&self) -> &str {
            "https://degraded.example/v1"
        }
        fn resolve_model(&self, model: &str, reasoning: Reasoning) -> String {
            match reasoning {
                Reasoning::On => format!("{model}-thinking"),
                _ => model.to_string(),
            }
        }
        fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
            self.0
        }
        fn json_object_needs_keyword(&self) -> bool {
            true
        }
        fn max_tokens_key(&self, model: &str) -> &'static str {
            if model.ends_with("-thinking") {
                "max_completion_tokens"
            } else {
                "max_tokens"
            }
        }
    }

    fn schema_req(model: &str) -> CompletionRequest {
        let mut r = req(model);
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: true,
        });
        r
    }

    #[test]
    fn json_schema_degrades_to_object_plus_instruction() {
        let mut r = schema_req("m");
        r.system_prompt = Some("be brief".into());
        let b = build_body(&Degraded(JsonSupport::Object), &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        let system = b["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("be brief\n\n"), "{system}");
        assert!(system.contains(r#"{"type":"object"}"#), "{system}");
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "hi"}));
    }

    #[test]
    fn instruction_only_vendors_get_no_response_format() {
        let b = build_body(&Degraded(JsonSupport::Instruction), &schema_req("m"), false).unwrap();
        assert!(b.get("response_format").is_none(), "{b}");
        assert_eq!(b["messages"][0]["role"], "system");
        assert!(
            b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON schema")
        );
        let mut r = req("m");
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&Degraded(JsonSupport::Instruction), &r, false).unwrap();
        assert!(b.get("response_format").is_none(), "{b}");
        assert_eq!(b["messages"][0]["content"], JSON_OBJECT_INSTRUCTION);
        // An invalid schema is refused whatever the vendor supports.
        let mut r = schema_req("m");
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: String::new(),
            schema: "[1]".into(),
            strict: false,
        });
        assert!(matches!(
            build_body(&Degraded(JsonSupport::Instruction), &r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn json_object_keyword_is_added_only_when_missing() {
        let mut r = req("m");
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&Degraded(JsonSupport::Object), &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert_eq!(b["messages"][0]["content"], JSON_OBJECT_INSTRUCTION);
        r.system_prompt = Some("Answer in Json.".into());
        let b = build_body(&Degraded(JsonSupport::Object), &r, false).unwrap();
        assert_eq!(b["messages"][0]["content"], "Answer in Json.");
        r.system_prompt = None;
        r.messages[0].content = "give me json".into();
        let b = build_body(&Degraded(JsonSupport::Object), &r, false).unwrap();
        assert_eq!(b["messages"][0]["role"], "user");
        // OpenAI itself adds nothing.
        let mut r = req("gpt-4o");
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&OpenAi, &r, false).unwrap();
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn resolved_model_drives_the_other_hooks() {
        let mut r = req(" m ");
        r.reasoning = Reasoning::On;
        r.max_tokens = Some(9);
        let b = build_body(&Degraded(JsonSupport::Schema), &r, false).unwrap();
        assert_eq!(b["model"], "m-thinking");
        assert_eq!(b["max_completion_tokens"], 9);
        assert_eq!(sent_model(&b, &r), "m-thinking");
    }

    #[test]
    fn catalog_rows() {
        const SPECS: [ModelSpec; 1] = [ModelSpec {
            id: "a",
            name: "A",
            context: 8,
            max_output: Some(4),
            json_mode: true,
            json_schema: false,
            reasoning: true,
            vision: false,
        }];
        let a = listed_model("a", &SPECS, crate::types::unknown_model);
        assert_eq!((a.display_name.as_str(), a.context_window), ("A", 8));
        assert!(a.streaming && a.reasoning && a.json_mode && !a.json_schema);
        let b = listed_model("b", &SPECS, crate::types::unknown_model);
        assert_eq!(b, crate::types::unknown_model("b"));
    }

    #[test]
    fn stream_body() {
        let b = build_body(&OpenAi, &req("gpt-4o"), true).unwrap();
        assert_eq!(b["stream"], json!(true));
        assert_eq!(b["stream_options"], json!({"include_usage": true}));
    }

    #[test]
    fn parse_ok_response() {
        let body = br#"{
            "id": "chatcmpl-9x", "model": "gpt-4.1-2025-04-14",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"main_text\":\"...\"}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 812, "completion_tokens": 402, "total_tokens": 1214}
        }"#;
        let r = parse_response(&OpenAi, "gpt-4.1", body).unwrap();
        assert_eq!(
            r,
            CompletionResponse {
                text: "{\"main_text\":\"...\"}".into(),
                finish_reason: "stop".into(),
                usage: Some(Usage {
                    prompt_tokens: 812,
                    output_tokens: 402,
                    total_tokens: 1214
                }),
                model: "gpt-4.1-2025-04-14".into(),
            }
        );
    }

    #[test]
    fn parse_null_content_missing_usage_and_model() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":null}]}"#;
        let r = parse_response(&OpenAi, "gpt-4o", body).unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.finish_reason, "");
        assert_eq!(r.usage, None);
        assert_eq!(r.model, "gpt-4o");
        let body = br#"{"model":"","choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        let r = parse_response(&OpenAi, "gpt-4o", body).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(r.model, "gpt-4o");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 3,
                output_tokens: 4,
                total_tokens: 7
            })
        );
    }

    #[test]
    fn parse_bad_responses() {
        assert!(matches!(
            parse_response(&OpenAi, "m", br#"{"choices":[]}"#),
            Err(ProviderError::BadResponse(m)) if m == "OpenAI returned no choices"
        ));
        assert!(matches!(
            parse_response(&OpenAi, "m", br#"{"object":"chat.completion"}"#),
            Err(ProviderError::BadResponse(_))
        ));
        assert!(matches!(
            parse_response(&OpenAi, "m", br#"{"error":{"message":"quota"}}"#),
            Err(ProviderError::BadResponse(m)) if m.contains("quota")
        ));
        assert!(matches!(
            parse_response(&OpenAi, "m", b"not json"),
            Err(ProviderError::BadResponse(_))
        ));
    }

    #[test]
    fn parse_models() {
        let ids = parse_model_ids(
            br#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"o3-mini"},{"object":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(ids, vec!["gpt-4o", "o3-mini"]);
        assert!(matches!(
            parse_model_ids(b"{}"),
            Err(ProviderError::BadResponse(_))
        ));
    }

    /// Runs the real `SseSource` over a body split into `chunks`.
    fn run_stream(chunks: &[&[u8]]) -> (Vec<String>, Result<CompletionResponse, ProviderError>) {
        let mut source = SseSource::new(
            FakeBody::new(chunks),
            ChatStreamDecoder::new(OpenAi, "gpt-4o"),
        );
        drain(&mut source)
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo 世界\"},\"finish_reason\":null}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn stream_decoding_across_every_chunk_boundary() {
        let body = STREAM.as_bytes();
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let (deltas, done) = run_stream(&[a, b]);
            assert_eq!(deltas.concat(), "Hello 世界", "split {split}");
            let done = done.unwrap();
            assert_eq!(done.text, "Hello 世界");
            assert_eq!(done.finish_reason, "stop");
            assert_eq!(done.model, "gpt-4o-2024-08-06");
            assert_eq!(
                done.usage,
                Some(Usage {
                    prompt_tokens: 9,
                    output_tokens: 3,
                    total_tokens: 12
                })
            );
        }
    }

    #[test]
    fn stream_end_rules() {
        // Finish reason but no [DONE]: complete.
        let no_done = STREAM.replace("data: [DONE]\n\n", "");
        let (_, r) = run_stream(&[no_done.as_bytes()]);
        assert_eq!(r.unwrap().finish_reason, "stop");
        // [DONE] without a finish reason: complete, finish reason unknown.
        let (_, r) = run_stream(&[
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n",
        ]);
        let r = r.unwrap();
        assert_eq!((r.text.as_str(), r.finish_reason.as_str()), ("x", ""));
        // Neither: interrupted.
        let cut = &STREAM[..STREAM.find("\"finish_reason\":\"stop\"").unwrap() - 40];
        let (deltas, r) = run_stream(&[cut.as_bytes()]);
        assert_eq!(deltas.concat(), "Hello 世界");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        let (_, r) = run_stream(&[b""]);
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        // A last event without its blank line still counts.
        let (_, r) = run_stream(&[
            b"data: {\"choices\":[{\"delta\":{\"content\":\"y\"},\"finish_reason\":\"length\"}]}",
        ]);
        assert_eq!(r.unwrap().finish_reason, "length");
    }

    #[test]
    fn stream_merges_deltas_of_one_chunk_and_reports_transport_errors() {
        let two = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
        let mut body = FakeBody::new(&[two, two]);
        body.fail = Some(http::Error::Timeout);
        let mut source = SseSource::new(body, ChatStreamDecoder::new(OpenAi, "m"));
        let (deltas, r) = drain(&mut source);
        assert_eq!(deltas, vec!["ab", "ab"]);
        assert_eq!(r, Err(ProviderError::Http(http::Error::Timeout)));
        // Once finished, the source refuses further pulls.
        assert!(matches!(
            source.next_event(),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn stream_errors() {
        let (_, r) = run_stream(&[b"data: {\"error\":{\"message\":\"server overloaded\"}}\n\n"]);
        assert!(
            matches!(r, Err(ProviderError::StreamInterrupted(m)) if m.contains("server overloaded"))
        );
        let (_, r) = run_stream(&[b"data: {oops\n\n"]);
        assert!(matches!(r, Err(ProviderError::BadResponse(_))));
    }
}
