//! `Idempotency-Key` on `POST /v1/api` (design §1.4): the first request
//! with a key (per user) runs and its answer is kept for 24 hours; a repeat
//! with the same body gets the kept answer with `Idempotency-Replayed:
//! true` and changes nothing; another body under the same key is 422; a
//! repeat while the first runs is 409. The keys live in the database
//! (`store::idempotency`), so every instance honours them. An answer of 5xx
//! is not kept: the claim is released and a retry runs again.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::clock::micros;
use crate::error::ApiError;
use crate::store::idempotency::{Claim, KEEP};

use super::AppState;

/// The header a client sends.
const HEADER: &str = "idempotency-key";

/// The header on a kept answer.
const REPLAYED: &str = "idempotency-replayed";

/// The request's key, if it sent one: 1–255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let bad = || {
        ApiError::Invalid(
            "Idempotency-Key must be one header of 1 to 255 visible ASCII characters (no spaces); send a fresh random value, e.g. a UUID.".into(),
        )
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Runs `work` once for `(user, key)` and `body`, or answers as the key's
/// state says.
pub async fn once<F>(
    state: &AppState,
    user: &str,
    key: &str,
    body: &[u8],
    work: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Vec<u8>, ApiError>>,
{
    let hash: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let now = state.clock.now();
    let expired = now - micros(KEEP);
    match state.store.claim_key(user, key, &hash, now, expired).await? {
        Claim::Run => {}
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::OtherBody => {
            return Err(ApiError::Unprocessable(
                "This Idempotency-Key was already used with another request body. Send a new key for a new request; nothing was run.".into(),
            ));
        }
        Claim::Running => {
            return Err(ApiError::Conflict(
                "The first request with this Idempotency-Key is still running. Retry the same request once it has finished; nothing was run.".into(),
            ));
        }
    }
    let result = work.await;
    let kept = match &result {
        Ok(answer) => state.store.keep_answer(user, key, 200, answer).await,
        Err(e) => match e.status_and_title().0 {
            code @ ..500 => {
                let answer = serde_json::to_vec(&e.body()).unwrap_or_default();
                state.store.keep_answer(user, key, code, &answer).await
            }
            _ => state.store.release_key(user, key).await,
        },
    };
    if let Err(e) = kept {
        tracing::warn!(error = %format!("{e:#}"), "could not keep an idempotent answer");
    }
    let answer = result?;
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}
