//! The `components.schemas` of the OpenAPI document: the error shape, the
//! sign-in and session bodies, the `POST /v1/api` request and response, and,
//! for a signed-in caller, one set of schemas per datasource it may use
//! (built from the catalog and the caller's grant, [`crate::catalog::Visible`]).
//!
//! Strict on purpose: `additionalProperties: false` where the server refuses
//! unknown keys, the limits the parser enforces, the attribute codes a
//! datasource has, so that a generated client or a fuzzer knows what is
//! valid.

use serde_json::{Map, Value, json};

use crate::catalog::{AttrType, Attribute, Visible};
use crate::config::Operation;
use crate::query::filter::Op;
use crate::query::limits::{MAX_ALIASES, MAX_DEPTH, MAX_ROWS};

/// A `$ref` to a schema of `components.schemas`.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Every schema; `visible` is `None` without a session.
pub fn schemas(visible: Option<&[Visible]>, max_limit: u32) -> Map<String, Value> {
    let mut schemas = Map::new();
    let mut put = |name: &str, schema: Value| {
        schemas.insert(name.to_owned(), schema);
    };
    put("Error", error());
    put("SignedIn", signed_in());
    put("Status", status());
    put(
        "Ok",
        json!({
            "type": "object", "required": ["status"], "additionalProperties": false,
            "properties": { "status": { "const": "OK" } }
        }),
    );
    put(
        "Jwks",
        json!({
            "type": "object", "required": ["keys"],
            "properties": { "keys": { "type": "array", "items": { "type": "object" } } }
        }),
    );
    put("Datasources", datasources());
    put("Filter", filter());
    put("FilterNode", filter_node());
    put("Query", query(None, max_limit));
    put(
        "ApiRequest",
        json!({
            "type": "object",
            "description": "Keyed by client aliases; each alias is a query or a post. The whole body runs in one transaction.",
            "minProperties": 1, "maxProperties": MAX_ALIASES,
            "additionalProperties": schema_ref("Alias"),
        }),
    );
    put("ApiResponse", api_response());
    put("AliasResult", alias_result(visible));
    match visible {
        None => {
            put("Alias", json!({ "oneOf": [schema_ref("QueryAlias"), schema_ref("PostAlias")] }));
            put(
                "QueryAlias",
                query_alias(json!({ "type": "string", "minLength": 1 }), schema_ref("Query")),
            );
            put(
                "PostAlias",
                post_alias(
                    json!({ "type": "string", "minLength": 1 }),
                    json!({
                        "type": "object", "required": ["_rs"],
                        "properties": { "_rs": { "enum": ["I", "U", "D"] } },
                    }),
                ),
            );
            put(
                "Row",
                json!({
                    "type": "object",
                    "properties": { "_rs": { "enum": ["Q", "D"] } },
                }),
            );
        }
        Some(visible) => {
            let mut aliases = Vec::new();
            for ds in visible {
                let name = ds.name();
                let ds_name = json!({ "const": name });
                put(&format!("{name}.Row"), row(ds));
                if ds.operations.contains(&Operation::Query) {
                    put(&format!("{name}.Query"), query(Some(ds), max_limit));
                    let alias = query_alias(ds_name.clone(), schema_ref(&format!("{name}.Query")));
                    put(&format!("{name}.QueryAlias"), alias);
                    aliases.push(schema_ref(&format!("{name}.QueryAlias")));
                }
                if let Some(post_row) = post_row(ds) {
                    put(&format!("{name}.PostRow"), post_row);
                    let alias = post_alias(ds_name, schema_ref(&format!("{name}.PostRow")));
                    put(&format!("{name}.PostAlias"), alias);
                    aliases.push(schema_ref(&format!("{name}.PostAlias")));
                }
            }
            // No datasource: no alias is valid.
            let alias =
                if aliases.is_empty() { json!({ "not": {} }) } else { json!({ "oneOf": aliases }) };
            put("Alias", alias);
        }
    }
    schemas
}

fn error() -> Value {
    json!({
        "type": "object",
        "description": "Every error has this one shape; code is the HTTP status.",
        "required": ["code", "status", "title", "message"],
        "additionalProperties": false,
        "properties": {
            "code": { "type": "integer", "minimum": 400, "maximum": 599 },
            "status": { "const": "ERROR" },
            "title": { "type": "string" },
            "message": { "type": "string", "description": "What to fix; never a password, token or internal error." },
        },
    })
}

fn signed_in() -> Value {
    let text = json!({ "type": "string" });
    json!({
        "type": "object",
        "required": ["orgUid", "sessionId", "userName", "displayName", "emailAddress", "csrf", "jwt", "status"],
        "additionalProperties": false,
        "properties": {
            "orgUid": text, "sessionId": { "type": "string", "format": "uuid" },
            "userName": text, "displayName": text, "emailAddress": text,
            "csrf": { "type": "string", "format": "uuid" }, "jwt": text,
            "status": { "const": "OK" },
        },
    })
}

fn status() -> Value {
    json!({
        "type": "object",
        "required": ["sessionId", "userName", "orgUid", "roles", "expiresAt", "idleExpiresAt", "status"],
        "additionalProperties": false,
        "properties": {
            "sessionId": { "type": "string", "format": "uuid" },
            "userName": { "type": "string" },
            "orgUid": { "type": "string" },
            "roles": { "type": "array", "items": { "type": "string" } },
            "expiresAt": { "type": "string", "format": "date-time" },
            "idleExpiresAt": { "type": "string", "format": "date-time" },
            "status": { "const": "OK" },
        },
    })
}

fn datasources() -> Value {
    let operation = json!({ "enum": ["query", "insert", "update", "delete"] });
    let attr_type = json!({ "enum": AttrType::NAMES });
    json!({
        "type": "object",
        "required": ["datasources", "status"],
        "additionalProperties": false,
        "properties": {
            "datasources": { "type": "array", "items": {
                "type": "object",
                "required": ["name", "operations", "attributes"],
                "additionalProperties": false,
                "properties": {
                    "name": { "type": "string" },
                    "operations": { "type": "array", "items": operation, "minItems": 1 },
                    "attributes": { "type": "array", "items": {
                        "type": "object",
                        "required": ["code", "type", "primaryKey", "required", "updatable"],
                        "additionalProperties": false,
                        "properties": {
                            "code": { "type": "string" }, "type": attr_type,
                            "primaryKey": { "type": "boolean" }, "required": { "type": "boolean" },
                            "updatable": { "type": "boolean" },
                        },
                    } },
                },
            } },
            "status": { "const": "OK" },
        },
    })
}

fn filter() -> Value {
    json!({
        "description": "A list of filters, ANDed (one object counts as a list of one; null or [] is none).",
        "oneOf": [
            { "type": "null" },
            { "type": "array", "items": schema_ref("FilterNode") },
            schema_ref("FilterNode"),
        ],
    })
}

fn filter_node() -> Value {
    let operators: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
    json!({
        "type": "object",
        "description": format!("{{\"attr\": {{\"op\": value}}}}, or a group {{\"and\"|\"or\"|\"not\": [filters]}} (at most {MAX_DEPTH} deep)."),
        "minProperties": 1,
        "additionalProperties": {
            "oneOf": [
                { "type": "array", "minItems": 1, "items": schema_ref("FilterNode") },
                { "type": "object", "minProperties": 1, "propertyNames": { "enum": operators } },
            ],
        },
    })
}

/// The `query` of an alias: for one datasource its attribute codes, else
/// any names.
fn query(ds: Option<&Visible>, max_limit: u32) -> Value {
    let code = match ds {
        Some(ds) => json!({ "enum": ds.attributes().map(|a| a.code.as_str()).collect::<Vec<_>>() }),
        None => json!({ "type": "string" }),
    };
    json!({
        "type": "object",
        "required": ["limit"],
        "additionalProperties": false,
        "properties": {
            "filter": schema_ref("Filter"),
            "projection": { "type": "object", "propertyNames": code, "additionalProperties": { "enum": [0, 1] } },
            "selectAttributeCodeList": { "type": "array", "items": code },
            "sort": { "type": "object", "propertyNames": code, "additionalProperties": { "enum": [1, -1] } },
            "offset": { "type": "integer", "minimum": 0, "maximum": i64::MAX },
            "limit": { "type": "integer", "minimum": 1, "maximum": max_limit },
        },
    })
}

fn query_alias(ds: Value, query: Value) -> Value {
    json!({
        "type": "object", "required": ["ds", "query"], "additionalProperties": false,
        "properties": { "ds": ds, "query": query },
    })
}

fn post_alias(ds: Value, row: Value) -> Value {
    json!({
        "type": "object", "required": ["ds", "data"], "additionalProperties": false,
        "properties": { "ds": ds, "data": { "type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": row } },
    })
}

/// The JSON schema of one attribute's value (always nullable).
fn value_schema(attribute: &Attribute) -> Value {
    let (kind, format) = match attribute.kind {
        AttrType::Integer => ("integer", None),
        AttrType::Decimal | AttrType::Double | AttrType::Percent => ("number", None),
        AttrType::Boolean => ("boolean", None),
        AttrType::Date => ("string", Some("date")),
        AttrType::DateTime => ("string", Some("date-time")),
        AttrType::YN => return json!({ "enum": ["Y", "N", null] }),
        _ => ("string", None),
    };
    let mut schema = json!({ "type": [kind, "null"], "description": attribute.kind.name() });
    if let Some(format) = format {
        schema["format"] = json!(format);
    }
    schema
}

/// A row as the caller reads it: the attributes it sees, and `_rs`.
fn row(ds: &Visible) -> Value {
    let mut properties = Map::new();
    for attribute in ds.attributes() {
        properties.insert(attribute.code.clone(), value_schema(attribute));
    }
    properties.insert("_rs".into(), json!({ "enum": ["Q", "D"] }));
    json!({ "type": "object", "additionalProperties": false, "properties": properties })
}

/// A row the caller may post, with the `_rs` kinds its grant allows; `None`
/// when it may not post.
fn post_row(ds: &Visible) -> Option<Value> {
    let kinds: Vec<&str> =
        [(Operation::Insert, "I"), (Operation::Update, "U"), (Operation::Delete, "D")]
            .into_iter()
            .filter(|(op, _)| ds.operations.contains(op))
            .map(|(_, kind)| kind)
            .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut properties = Map::new();
    properties.insert("_rs".into(), json!({ "enum": kinds }));
    for attribute in ds.attributes() {
        properties.insert(attribute.code.clone(), value_schema(attribute));
    }
    // What the server requires of each kind of row (docs/api.md, "Post").
    let insert: Vec<&str> = ds
        .attributes()
        .filter(|a| (a.required || a.primary_key) && !a.generated && a.who.is_none())
        .map(|a| a.code.as_str())
        .collect();
    let mut keyed: Vec<&str> =
        ds.attributes().filter(|a| a.primary_key).map(|a| a.code.as_str()).collect();
    keyed.push("lastUpdateDate");
    Some(json!({
        "type": "object", "required": ["_rs"], "additionalProperties": false, "properties": properties,
        "allOf": [
            { "if": { "properties": { "_rs": { "const": "I" } } }, "then": { "required": insert } },
            { "if": { "properties": { "_rs": { "enum": ["U", "D"] } } }, "then": { "required": keyed } },
        ],
    }))
}

fn alias_result(visible: Option<&[Visible]>) -> Value {
    let row = match visible {
        None => schema_ref("Row"),
        Some(visible) => {
            let rows: Vec<Value> =
                visible.iter().map(|ds| schema_ref(&format!("{}.Row", ds.name()))).collect();
            if rows.is_empty() { json!({ "type": "object" }) } else { json!({ "anyOf": rows }) }
        }
    };
    json!({
        "type": "object",
        "required": ["data"],
        "additionalProperties": false,
        "properties": {
            "data": { "type": "array", "items": row },
            "queryElapsed": { "type": "integer", "minimum": 0, "description": "Whole milliseconds the SQL took (queries only)." },
            "rowsFetched": { "type": "integer", "minimum": 0, "description": "Rows returned (queries only)." },
        },
    })
}

fn api_response() -> Value {
    json!({
        "type": "object",
        "required": ["status", "data"],
        "additionalProperties": false,
        "properties": {
            "status": { "const": "OK" },
            "data": { "type": "object", "additionalProperties": schema_ref("AliasResult") },
        },
    })
}
