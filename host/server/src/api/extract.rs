//! Extractors whose rejections are envelope errors.

use axum::extract::{FromRequest, Request, rejection::JsonRejection};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ServerError;

/// `Json<T>` whose failures answer 400 `BAD_REQUEST` (or 413) in the envelope.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ServerError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ServerError::PayloadTooLarge;
    }
    ServerError::bad_request("无效的请求数据", rejection.body_text())
}

/// A strict JSON body whose malformed-body answer uses this route's own `message`.
pub fn with_message<T>(
    parsed: Result<ApiJson<T>, ServerError>,
    message: &str,
) -> Result<T, ServerError> {
    parsed.map(|ApiJson(body)| body).map_err(|e| match e {
        ServerError::BadRequest { details, .. } => ServerError::bad_request(message, details),
        other => other,
    })
}

/// Optional JSON body: absent, empty or unparsable bodies count as "none" (the reference's
/// lenient behaviour for `POST /api/settings/test-connection`).
pub struct LenientJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for LenientJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ServerError::PayloadTooLarge);
            }
            Err(rejection) => {
                return Err(ServerError::bad_request(
                    "无效的请求数据",
                    rejection.body_text(),
                ));
            }
        };
        Ok(LenientJson(serde_json::from_slice(&bytes).ok()))
    }
}
