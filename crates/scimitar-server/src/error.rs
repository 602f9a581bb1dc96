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
        ApiError(match e {
            StoreError::NotFound => ScimError::not_found("resource not found"),
            StoreError::Conflict(attr) => ScimError::uniqueness(format!("{attr} is already in use in this tenant")),
            StoreError::PreconditionFailed => {
                ScimError::precondition_failed("the resource has changed: If-Match does not match its current version")
            }
            StoreError::Invalid(e) => e,
            StoreError::Internal(detail) => {
                tracing::error!(%detail, "storage failure");
                ScimError::internal("internal server error")
            }
        })
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
