//! `GET /v1/openapi.json` (design §1.5): an OpenAPI 3.1 document of every
//! endpoint, its parameters and headers, the status codes each can give and
//! the error shape. Without a session it names no datasource; signed in
//! (Bearer + csrf) it also holds the row, query and post schemas of each
//! datasource the caller may use.
//!
//! Written as JSON from the code rather than derived with utoipa: the
//! interesting part (one schema set per granted datasource) comes from the
//! catalog at run time, and the handlers stay free of annotations.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::extract::{Session, credential_header};
use super::openapi_schemas::{schema_ref, schemas};
use crate::catalog::Visible;
use crate::error::ApiError;

/// `GET /v1/openapi.json`: the document, for this caller.
pub async fn openapi(
    State(state): State<AppState>,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let signed_in = credential_header(&parts.headers).is_some()
        || parts.headers.contains_key("x-csrf-token")
        || parts.uri.query().is_some_and(|q| q.contains("csrf="));
    let visible = if signed_in {
        let Session(principal) = Session::from_request_parts(&mut parts, &state).await?;
        Some(state.catalog.visible(&principal))
    } else {
        None
    };
    let metrics_here = state.config.network.metrics_listen.is_none();
    let document =
        document(visible.as_deref(), state.config.max_limit, &state.config.issuer, metrics_here);
    Ok(axum::Json(document).into_response())
}

/// The whole document. `visible` is the caller's datasources, or `None`
/// without a session; `metrics` says whether `/metrics` is on this listener.
pub fn document(visible: Option<&[Visible]>, max_limit: u32, issuer: &str, metrics: bool) -> Value {
    let mut paths = Map::new();
    paths.insert("/v1/auth".into(), json!({ "post": sign_in() }));
    paths.insert(
        "/v1/status".into(),
        json!({ "get": signed_in(
        "The caller's session", "Status", "status") }),
    );
    paths.insert(
        "/v1/signout".into(),
        json!({ "post": signed_in(
        "Ends the caller's session; its JWT stops working at once", "Ok", "signOut") }),
    );
    paths.insert("/v1/api".into(), json!({ "post": api() }));
    paths.insert("/v1/datasources".into(), json!({ "get": signed_in(
        "The datasources the caller may use, with operations and attributes", "Datasources", "datasources") }));
    paths.insert("/v1/openapi.json".into(), json!({ "get": openapi_operation() }));
    paths.insert(
        "/.well-known/jwks.json".into(),
        json!({ "get": public_json(
        "The public keys (Ed25519, RFC 8037) that verify live tokens", "Jwks", "jwks", false) }),
    );
    paths.insert(
        "/healthz".into(),
        json!({ "get": public_json("The process is up", "Ok", "healthz", false) }),
    );
    paths.insert(
        "/readyz".into(),
        json!({ "get": public_json("The database answers", "Ok", "readyz", true) }),
    );
    if metrics {
        paths.insert(
            "/metrics".into(),
            json!({ "get": text(
            "Prometheus text exposition (0.0.4): requests, latency, sign-ins, queues and pools",
            "metrics", "text/plain") }),
        );
    }
    paths.insert(
        "/".into(),
        json!({ "get": text("The API Playground page", "playgroundRoot", "text/html") }),
    );
    paths.insert(
        "/playground".into(),
        json!({ "get": text("The API Playground page", "playground", "text/html") }),
    );
    paths.insert(
        "/playground.js".into(),
        json!({ "get": text("The Playground's script", "playgroundScript", "text/javascript") }),
    );
    paths.insert(
        "/playground.svg".into(),
        json!({ "get": text("The Playground's icon", "playgroundIcon", "image/svg+xml") }),
    );
    paths.insert(
        "/playground.css".into(),
        json!({ "get": text("The Playground's style sheet", "playgroundStyle", "text/css") }),
    );

    let description = match visible {
        None => {
            "The CloudIO REST API as tessera serves it. Fetched with a session (Bearer + csrf), this document also holds a row, query and post schema for each datasource the caller may use."
        }
        Some(_) => {
            "The CloudIO REST API as tessera serves it, with the schemas of the datasources the caller may use."
        }
    };
    json!({
        "openapi": "3.1.0",
        "info": { "title": format!("tessera ({issuer})"), "version": env!("CARGO_PKG_VERSION"), "description": description },
        "paths": paths,
        "components": {
            "schemas": schemas(visible, max_limit),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The jwt from POST /v1/auth. The header may also be named Authentication, and the scheme word may be left out." },
                "csrfHeader": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token", "description": "The csrf from POST /v1/auth." },
                "csrfQuery": { "type": "apiKey", "in": "query", "name": "csrf", "description": "The csrf from POST /v1/auth." },
                "token": { "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "Token base64(user:password); the header may also be named Authentication." },
            },
        },
    })
}

/// The two ways a signed-in call may carry its credentials.
fn session_security() -> Value {
    json!([{ "bearer": [], "csrfHeader": [] }, { "bearer": [], "csrfQuery": [] }])
}

fn json_body(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema_ref(schema) } } })
}

fn retry_after() -> Value {
    json!({ "Retry-After": { "description": "Seconds to wait", "schema": { "type": "integer", "minimum": 1 } } })
}

/// An error response in the one shape, with the headers its status carries.
fn error(description: &str, code: u16) -> Value {
    let mut response = json_body(description, "Error");
    match code {
        401 => {
            response["headers"] = json!({ "WWW-Authenticate": {
                "description": "Always Bearer", "schema": { "const": "Bearer" } } });
        }
        429 | 503 => response["headers"] = retry_after(),
        _ => {}
    }
    response
}

/// The errors every signed-in call can give.
fn session_errors(responses: &mut Map<String, Value>) {
    responses.insert(
        "401".into(),
        error(
            "No valid session: a missing, malformed, expired or revoked token. Sign in again.",
            401,
        ),
    );
    responses.insert(
        "403".into(),
        error("The CSRF token is missing or wrong, or the call is not granted.", 403),
    );
    responses.insert(
        "503".into(),
        error("The database cannot be reached; retry after Retry-After seconds.", 503),
    );
}

fn sign_in() -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json_body("Signed in: a session, its CSRF token and its JWT", "SignedIn"),
    );
    responses.insert(
        "400".into(),
        error(
            "The Authorization header is missing or malformed, or the body is not {} or empty.",
            400,
        ),
    );
    responses.insert(
        "403".into(),
        error("Wrong user name or password (the seed's body, byte for byte).", 403),
    );
    responses.insert("413".into(), error("The body is larger than max_body.", 413));
    responses
        .insert("429".into(), error("Too many failed sign-ins; wait Retry-After seconds.", 429));
    responses.insert(
        "503".into(),
        error("The database or the password checks are saturated; retry.", 503),
    );
    json!({
        "operationId": "signIn",
        "summary": "Sign in with Authorization: Token base64(user:password)",
        "security": [{ "token": [] }],
        "requestBody": { "required": false, "content": { "application/json": { "schema": {
            "type": "object", "maxProperties": 0, "description": "{} or an empty body" } } } },
        "responses": responses,
    })
}

fn signed_in(summary: &str, schema: &str, id: &str) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), json_body(summary, schema));
    session_errors(&mut responses);
    json!({ "operationId": id, "summary": summary, "security": session_security(), "responses": responses })
}

fn api() -> Value {
    let mut responses = Map::new();
    responses
        .insert("200".into(), json_body("One result per alias, in request order", "ApiResponse"));
    responses.insert("400".into(), error("The body is malformed or names an unknown attribute or operator; the message says what to fix.", 400));
    session_errors(&mut responses);
    responses.insert("403".into(), error(
        "The CSRF token is wrong, or no access to the datasource or operation (unknown and ungranted datasources get the same answer).", 403));
    responses.insert(
        "409".into(),
        error("A row changed since it was read, or already exists; nothing was written.", 409),
    );
    responses.insert("413".into(), error("The body is larger than max_body.", 413));
    responses
        .insert("422".into(), error("The Idempotency-Key was used before with another body.", 422));
    json!({
        "operationId": "api",
        "summary": "Query and post rows of datasources, all in one transaction",
        "security": session_security(),
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 255 visible ASCII characters: a repeat with the same body gets the kept answer (design §1.4).",
            // The server does not check the key yet, so the schema may not
            // promise a refusal: minLength/maxLength/pattern come with it.
            "schema": { "type": "string" },
        }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("ApiRequest") } } },
        "responses": responses,
    })
}

fn openapi_operation() -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), json!({ "description": "This document",
        "content": { "application/json": { "schema": { "type": "object", "required": ["openapi", "paths"] } } } }));
    session_errors(&mut responses);
    json!({
        "operationId": "openapi",
        "summary": "This OpenAPI 3.1 document; with a session it also describes the caller's datasources",
        "security": [{}, { "bearer": [], "csrfHeader": [] }, { "bearer": [], "csrfQuery": [] }],
        "responses": responses,
    })
}

fn public_json(summary: &str, schema: &str, id: &str, may_fail: bool) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), json_body(summary, schema));
    if may_fail {
        responses.insert("503".into(), error("The database does not answer.", 503));
    }
    json!({ "operationId": id, "summary": summary, "security": [], "responses": responses })
}

fn text(summary: &str, id: &str, media_type: &str) -> Value {
    json!({
        "operationId": id, "summary": summary, "security": [],
        "responses": { "200": { "description": summary,
            "content": { media_type: { "schema": { "type": "string" } } } } },
    })
}
