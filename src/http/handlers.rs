//! Route handlers: thin glue from HTTP to the domain.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::client_addr::client_address;
use super::extract::{Body, Session, credential_header};
use super::{AppState, Peer};
use crate::auth::credentials::{CredentialError, parse_token};
use crate::auth::signin::SignedIn;
use crate::clock::iso8601;
use crate::error::ApiError;

/// `POST /v1/auth`: sign in with `Token base64(user:password)` (the seed).
pub async fn sign_in(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<SignedIn>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::Invalid("The body must be {} or empty.".into()))?;
    if !text.trim().is_empty()
        && !serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object())
    {
        return Err(ApiError::Invalid("The body must be {} or empty.".into()));
    }
    let header = credential_header(&headers).ok_or(CredentialError::Missing);
    let credentials = header.and_then(parse_token).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let trusted = &state.config.network.trusted_proxies;
    let client = client_address(peer.0.ip(), &headers, trusted);
    let signed_in = state.auth().sign_in(&credentials.user, credentials.password, client).await?;
    Ok(Json(signed_in))
}

/// `POST /v1/signout`: ends the caller's session.
pub async fn sign_out(
    State(state): State<AppState>,
    Session(caller): Session,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.auth().sign_out(&caller).await?;
    Ok(Json(serde_json::json!({ "status": "OK" })))
}

/// The body of `GET /v1/status`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody<'a> {
    pub session_id: &'a str,
    pub user_name: &'a str,
    pub org_uid: &'a str,
    pub roles: &'a [String],
    pub expires_at: String,
    pub idle_expires_at: String,
    pub status: &'static str,
}

/// `GET /v1/status`: the caller's session (design §1.5).
pub async fn status(Session(caller): Session) -> Response {
    let body = StatusBody {
        session_id: &caller.session_id,
        user_name: &caller.user_name,
        org_uid: &caller.org_uid,
        roles: &caller.roles,
        expires_at: iso8601(caller.expires_at),
        idle_expires_at: iso8601(caller.idle_expires_at),
        status: "OK",
    };
    Json(body).into_response()
}

/// `GET /.well-known/jwks.json`: the public keys that verify live tokens.
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.keys.jwks())
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "OK" }))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.ping().await.map_err(ApiError::Unavailable)?;
    Ok(Json(serde_json::json!({ "status": "OK" })))
}
