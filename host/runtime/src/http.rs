//! The `http` host import: outbound requests behind the allow-list, with secret substitution.

use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::component::Resource;

use crate::bindings::http::{self, Error, Method, Request, Response, ResponseHead};
use crate::manifest::Origin;
use crate::sandbox::HostState;
use crate::settings::Effective;

/// Slack kept back from the call's budget so an HTTP timeout surfaces as `timeout` before the
/// epoch deadline interrupts the guest.
const DEADLINE_SLACK: Duration = Duration::from_millis(25);

const PLACEHOLDER_OPEN: &str = "{{secret:";
const PLACEHOLDER_CLOSE: &str = "}}";

/// The shared outbound client: no redirects (an allowed host must not bounce us elsewhere),
/// no proxy from the environment (it could reroute plugin traffic).
pub fn build_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("sceneintruder/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// A response body being read by the guest piece by piece.
pub struct BodyStream {
    response: reqwest::Response,
    pending: Bytes,
    read_total: u64,
}

/// Replace every `{{secret:NAME}}` in `text` with the secret's value.
fn substitute(text: &str, eff: &Effective) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(PLACEHOLDER_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + PLACEHOLDER_OPEN.len()..];
        let end = after.find(PLACEHOLDER_CLOSE).ok_or_else(|| {
            Error::InvalidRequest("unterminated {{secret:...}} placeholder".into())
        })?;
        let name = &after[..end];
        if !eff.secret_names.contains(name) {
            return Err(Error::InvalidRequest(format!(
                "{name:?} is not a secret declared in the plugin manifest"
            )));
        }
        let value = eff
            .secrets
            .get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("secret {name:?} is not configured")))?;
        out.push_str(value.expose());
        rest = &after[end + PLACEHOLDER_CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Check the allow-list and build the outgoing request (secrets substituted last).
fn prepare(
    state: &mut HostState,
    req: Request,
) -> Result<(reqwest::RequestBuilder, Duration), Error> {
    let env = &mut state.call;
    env.requests += 1;
    if env.requests > env.limits.max_requests_per_call {
        return Err(Error::TooManyRequests(env.limits.max_requests_per_call));
    }
    let mut url =
        url::Url::parse(&req.url).map_err(|e| Error::InvalidRequest(format!("bad URL: {e}")))?;
    let origin = Origin::from_parsed(&url).map_err(Error::InvalidRequest)?;
    if !env.settings.allowed.contains(&origin) {
        tracing::warn!(plugin = %env.settings.plugin, %origin, "plugin request to a host it was not granted");
        return Err(Error::NotAllowed(format!(
            "{origin} is not granted to plugin {} (allowed: {})",
            env.settings.plugin,
            if env.settings.allowed.is_empty() {
                "none".to_string()
            } else {
                env.settings
                    .allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidRequest(
            "credentials in the URL are not allowed".into(),
        ));
    }
    if url.query().is_some_and(|q| q.contains("secret:")) {
        let pairs = url
            .query_pairs()
            .map(|(k, v)| Ok((k.into_owned(), substitute(&v, &env.settings)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }

    let remaining = env.deadline.saturating_duration_since(Instant::now());
    let budget = remaining.saturating_sub(DEADLINE_SLACK);
    if budget.is_zero() {
        return Err(Error::Timeout);
    }
    let timeout = match req.timeout_ms {
        Some(ms) => budget.min(Duration::from_millis(u64::from(ms))),
        None => budget,
    };

    let method = match req.method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("bad header name {name:?}")))?;
        let value = substitute(&value, &env.settings)?;
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| Error::InvalidRequest(format!("bad value for header {name}")))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    let mut builder = env.client.request(method, url).headers(headers);
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    Ok((builder, timeout))
}

fn transport_error(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout
    } else {
        // Never echo the URL: its query may carry a substituted secret.
        Error::Transport(e.without_url().to_string())
    }
}

fn head_of(response: &reqwest::Response) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    (response.status().as_u16(), headers)
}

/// Send a request whose whole exchange, body included, must finish within its timeout
/// (reqwest enforces it while the body is read).
async fn send(state: &mut HostState, req: Request) -> Result<reqwest::Response, Error> {
    let (builder, timeout) = prepare(state, req)?;
    builder
        .timeout(timeout)
        .send()
        .await
        .map_err(transport_error)
}

impl http::Host for HostState {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, Error>> {
        let cap = self.call.limits.max_response_bytes as u64;
        let result = async {
            let mut response = send(self, req).await?;
            let (status, headers) = head_of(&response);
            if response.content_length().is_some_and(|len| len > cap) {
                return Err(Error::TooLarge(cap));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
                if body.len() as u64 + chunk.len() as u64 > cap {
                    return Err(Error::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        }
        .await;
        Ok(result)
    }

    async fn fetch_streaming(
        &mut self,
        req: Request,
    ) -> wasmtime::Result<Result<(ResponseHead, Resource<BodyStream>), Error>> {
        // Only the head is bounded here: the body is read across several guest calls, each
        // bounded by its own deadline in `read`.
        let sent = match prepare(self, req) {
            Ok((builder, timeout)) => tokio::time::timeout(timeout, builder.send()).await,
            Err(e) => return Ok(Err(e)),
        };
        let response = match sent {
            Err(_) => return Ok(Err(Error::Timeout)),
            Ok(Err(e)) => return Ok(Err(transport_error(e))),
            Ok(Ok(response)) => response,
        };
        let (status, headers) = head_of(&response);
        let stream = self.table.push(BodyStream {
            response,
            pending: Bytes::new(),
            read_total: 0,
        })?;
        Ok(Ok((ResponseHead { status, headers }, stream)))
    }
}

impl http::HostBodyStream for HostState {
    async fn read(
        &mut self,
        stream: Resource<BodyStream>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let cap = self.call.limits.max_response_bytes as u64;
        let left = self.call.deadline.saturating_duration_since(Instant::now());
        let body = self.table.get_mut(&stream)?;
        if body.pending.is_empty() {
            match tokio::time::timeout(left, body.response.chunk()).await {
                Err(_) => return Ok(Err(Error::Timeout)),
                Ok(Err(e)) => return Ok(Err(transport_error(e))),
                Ok(Ok(None)) => return Ok(Ok(None)),
                Ok(Ok(Some(chunk))) => {
                    body.read_total += chunk.len() as u64;
                    if body.read_total > cap {
                        return Ok(Err(Error::TooLarge(cap)));
                    }
                    body.pending = chunk;
                }
            }
        }
        let take = body.pending.len().min(max_bytes.max(1) as usize);
        Ok(Ok(Some(body.pending.split_to(take).to_vec())))
    }

    async fn drop(&mut self, stream: Resource<BodyStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn eff() -> Effective {
        Effective {
            plugin: Arc::from("p"),
            values: BTreeMap::new(),
            secrets: BTreeMap::from([("api_key".to_string(), Secret::new("sk-123"))]),
            secret_names: BTreeSet::from(["api_key".to_string(), "other".to_string()]),
            allowed: BTreeSet::new(),
        }
    }

    #[test]
    fn substitutes_declared_configured_secrets_only() {
        let e = eff();
        assert_eq!(
            substitute("Bearer {{secret:api_key}}", &e).unwrap(),
            "Bearer sk-123"
        );
        assert_eq!(substitute("plain", &e).unwrap(), "plain");
        assert!(matches!(
            substitute("{{secret:other}}", &e),
            Err(Error::InvalidRequest(m)) if m.contains("not configured")
        ));
        assert!(matches!(
            substitute("{{secret:HOME}}", &e),
            Err(Error::InvalidRequest(m)) if m.contains("not a secret declared")
        ));
        assert!(substitute("{{secret:api_key", &e).is_err());
    }
}
