//! The one place where failures become HTTP responses: every SCIM error
//! leaves the server as an RFC 7644 §3.12 body with
//! `Content-Type: application/scim+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scimitar_protocol::ScimError;
use scimitar_store::StoreError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl ApiError {
    /// Adds `Retry-After` (seconds) to the response, for 429 and 503.
    pub fn with_retry_after(self, secs: u64) -> Self {
        ApiError(ScimError {
            retry_after: Some(secs),
            ..self.0
        })
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(scimitar_app::scim_error(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = e.status, detail = %e.detail, "request failed");
        }
        let body = serde_json::to_vec(&e.to_json()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimitar\""),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A panic in a handler, answered as a SCIM 500 (the panic's message may
/// carry request data, so it is not shown).
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(ScimError::internal("internal server error")).into_response()
}

/// A query string that does not parse, answered as a SCIM 400 rather than
/// axum's plain-text rejection.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError(ScimError::invalid_value(format!(
            "invalid query string: {}",
            r.body_text()
        )))
    }
}
