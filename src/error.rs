//! The one error shape of the wire protocol (design §1):
//! `{"code": <status>, "status": "ERROR", "title": ..., "message": ...}`.
//!
//! Variants are named for what the client should do. Each maps to exactly one
//! status and title through [`ApiError::status_and_title`]. Messages never
//! carry a password, a token or an internal error chain: 5xx bodies say
//! nothing specific and the cause is logged once instead.

use serde::Serialize;

/// The seed's message for every failed sign-in (byte for byte).
pub const INVALID_CREDENTIALS: &str = "Access Denied - Invalid username and/or password!";

/// An error a client sees.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// 401: no valid signed-in session; sign in again.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists with another method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the row changed since the client read it.
    #[error("{0}")]
    Conflict(String),
    /// 422: the request cannot be done as sent (an `Idempotency-Key`
    /// reused with another body).
    #[error("{0}")]
    Unprocessable(String),
    /// 413: the body is larger than `max_body`.
    #[error("{0}")]
    TooLarge(String),
    /// 429: too many failed sign-ins; wait `retry_after` seconds.
    #[error("too many failed sign-ins")]
    TooManyRequests { retry_after: u64 },
    /// 503: the database is busy, or the work ran past `statement_timeout`;
    /// the message says what to change, `Retry-After` when to retry.
    #[error("{0}")]
    Busy(String),
    /// 503: the database cannot be reached; retry later.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// 500: a bug or an unexpected failure; the cause is only logged.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The wire body of every error.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: u16,
    pub status: String,
    pub title: String,
    pub message: String,
}

impl ApiError {
    /// The seed's 403 for any failed sign-in.
    pub fn invalid_credentials() -> Self {
        Self::Forbidden(INVALID_CREDENTIALS.into())
    }

    /// The one table of variant → (HTTP status, title).
    pub fn status_and_title(&self) -> (u16, &'static str) {
        match self {
            Self::Invalid(_) => (400, "Invalid Request"),
            Self::Unauthorized(_) => (401, "Unauthorized"),
            Self::Forbidden(_) => (403, "Access Denied"),
            Self::NotFound(_) => (404, "Not Found"),
            Self::MethodNotAllowed(_) => (405, "Method Not Allowed"),
            Self::Conflict(_) => (409, "Conflict"),
            Self::TooLarge(_) => (413, "Payload Too Large"),
            Self::Unprocessable(_) => (422, "Unprocessable Content"),
            Self::TooManyRequests { .. } => (429, "Too Many Requests"),
            Self::Internal(_) => (500, "Internal Server Error"),
            Self::Busy(_) | Self::Unavailable(_) => (503, "Service Unavailable"),
        }
    }

    /// The text a client sees: never a cause chain for 5xx.
    pub fn message(&self) -> String {
        match self {
            Self::TooManyRequests { retry_after } => {
                format!("Too many failed sign-ins. Wait {retry_after} seconds before trying again.")
            }
            Self::Internal(_) => {
                "The server failed to handle this request. It has been logged; try again later."
                    .into()
            }
            Self::Unavailable(_) => {
                "The server is busy or cannot reach its database right now. Try again in a few seconds."
                    .into()
            }
            other => other.to_string(),
        }
    }

    /// The body this error renders as.
    pub fn body(&self) -> ErrorBody {
        let (code, title) = self.status_and_title();
        ErrorBody { code, status: "ERROR".into(), title: title.into(), message: self.message() }
    }
}

impl From<anyhow::Error> for ApiError {
    /// Storage failures become 503 when the database is unreachable, else 500.
    fn from(error: anyhow::Error) -> Self {
        let unreachable = error.chain().any(|cause| {
            cause.downcast_ref::<sqlx::Error>().is_some_and(|e| match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                // PostgreSQL classes 08 (connection exception), 53
                // (insufficient resources: too many connections) and 57
                // (operator intervention: shutdown, terminated backend), and
                // 55000, which a database refusing connections answers.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    ["08", "53", "57"].iter().any(|class| code.starts_with(class))
                        || code == "55000"
                }),
                _ => false,
            })
        });
        if unreachable { Self::Unavailable(error) } else { Self::Internal(error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(error: ApiError) -> (u16, &'static str) {
        error.status_and_title()
    }

    #[test]
    fn every_variant_has_its_status_and_title() {
        assert_eq!(row(ApiError::Invalid(String::new())), (400, "Invalid Request"));
        assert_eq!(row(ApiError::Unauthorized(String::new())), (401, "Unauthorized"));
        assert_eq!(row(ApiError::Forbidden(String::new())), (403, "Access Denied"));
        assert_eq!(row(ApiError::NotFound(String::new())), (404, "Not Found"));
        assert_eq!(row(ApiError::MethodNotAllowed(String::new())), (405, "Method Not Allowed"));
        assert_eq!(row(ApiError::Conflict(String::new())), (409, "Conflict"));
        assert_eq!(row(ApiError::TooLarge(String::new())), (413, "Payload Too Large"));
        assert_eq!(row(ApiError::Unprocessable(String::new())), (422, "Unprocessable Content"));
        assert_eq!(row(ApiError::TooManyRequests { retry_after: 1 }), (429, "Too Many Requests"));
        assert_eq!(row(ApiError::Internal(anyhow::anyhow!("x"))), (500, "Internal Server Error"));
        assert_eq!(row(ApiError::Unavailable(anyhow::anyhow!("x"))), (503, "Service Unavailable"));
        assert_eq!(row(ApiError::Busy(String::new())), (503, "Service Unavailable"));
    }

    #[test]
    fn the_seed_403_body_is_exact() {
        let json = serde_json::to_string(&ApiError::invalid_credentials().body()).unwrap();
        assert_eq!(
            json,
            r#"{"code":403,"status":"ERROR","title":"Access Denied","message":"Access Denied - Invalid username and/or password!"}"#
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let body = ApiError::Internal(anyhow::anyhow!("secret detail")).body();
        assert!(!body.message.contains("secret"));
    }
}
