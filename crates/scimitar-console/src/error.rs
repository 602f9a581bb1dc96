//! The console's errors: each becomes an error page with the status it
//! deserves (400 for bad input, 403, 404, 409 for a conflict, 500 only for
//! what went wrong inside), never a stack trace or a storage detail.

use askama::Template;
use axum::response::{IntoResponse, Response};
use scimitar_protocol::ScimError;
use scimitar_store::StoreError;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub title: String,
    pub message: String,
}

/// What a console handler can fail with.
#[derive(Debug)]
pub enum ConsoleError {
    /// A page with this status and message for the person at the browser.
    Page { status: u16, message: String },
}

/// The result of a console handler.
pub type PageResult = Result<Response, ConsoleError>;

impl ConsoleError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ConsoleError::Page {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: &str) -> Self {
        Self::new(404, message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            403,
            "Your role does not allow this. Viewers can look at everything but cannot change anything; ask an Admin.",
        )
    }

    pub fn csrf_failed() -> Self {
        Self::new(
            403,
            "This form has expired or did not come from this console. Go back, reload the page and try again.",
        )
    }
}

/// `detail` as a sentence: a capital first letter and a full stop.
pub fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl From<ScimError> for ConsoleError {
    fn from(e: ScimError) -> Self {
        if e.status >= 500 {
            // The detail was logged where it arose; the page says what to do.
            return Self::new(
                500,
                "The console could not read or write its database. Try again; if it persists, check the server log.",
            );
        }
        Self::new(e.status, sentence(&e.detail))
    }
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        scimitar_app::scim_error(e).into()
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Page { status, message } => crate::error_page(status, &message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_status() {
        let status = |e: ConsoleError| match e {
            ConsoleError::Page { status, .. } => status,
        };
        assert_eq!(status(ScimError::not_found("no tenant named 'x'").into()), 404);
        assert_eq!(status(ScimError::uniqueness("taken").into()), 409);
        assert_eq!(status(ScimError::invalid_value("bad").into()), 400);
        assert_eq!(status(StoreError::NotFound.into()), 404);
        assert_eq!(status(StoreError::Conflict("email".into()).into()), 409);
        assert_eq!(status(StoreError::Internal("disk full".into()).into()), 500);
        let ConsoleError::Page { message, .. } = StoreError::Internal("disk full at /var".into()).into();
        assert!(!message.contains("disk full"), "storage details stay in the log");
        assert_eq!(
            sentence("a tenant named 'x' already exists"),
            "A tenant named 'x' already exists."
        );
    }
}
