//! Parse: the `POST /v1/api` body (spec §4–§7, design §1.4) becomes typed
//! requests before anything else looks at it. This stage knows nothing of
//! the catalog: attribute codes stay names and filter values stay JSON until
//! the planner (`plan.rs`) binds them to a datasource.

use serde_json::{Map, Value};

use super::aggregate::{self, RawAggregate};
use super::filter::{self, RawFilter};
use super::limits::{MAX_ALIASES, MAX_OFFSET, MAX_ROWS};
use crate::config::Operation;
use crate::error::ApiError;

/// A whole body: aliases in request order.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub aliases: Vec<AliasRequest>,
}

/// One alias: a query or a post against one datasource.
#[derive(Clone, Debug)]
pub struct AliasRequest {
    /// The client's key for this entry; the response uses it too.
    pub alias: String,
    /// The datasource name as sent (checked against the catalog later).
    pub ds: String,
    pub action: Action,
}

/// What an alias asks for.
#[derive(Clone, Debug)]
pub enum Action {
    Query(QueryRequest),
    Post(Vec<PostRow>),
}

/// `{"ds": ..., "query": {...}}`.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    /// Top-level filters, ANDed.
    pub filter: Vec<RawFilter>,
    pub projection: Projection,
    /// `(attribute, descending)` in key order.
    pub sort: Vec<(String, bool)>,
    pub offset: u64,
    pub limit: u32,
    /// `params`: `(attribute, value)` equality filters, ANDed with `filter`.
    pub params: Vec<(String, Value)>,
    /// `fetchDistinct: true`.
    pub distinct: bool,
    /// `aggregateList`.
    pub aggregates: Vec<RawAggregate>,
    /// `groupByAttributeCodeList`.
    pub group_by: Vec<String>,
}

/// Which attributes a query returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Every attribute, in catalog order.
    All,
    /// These, in the order given.
    Only(Vec<String>),
    /// Every attribute but these (`{"attr": 0}`).
    Except(Vec<String>),
}

/// The record status of a post row (spec §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowStatus {
    Insert,
    Update,
    Delete,
}

impl RowStatus {
    /// The grant this row needs.
    pub fn operation(self) -> Operation {
        match self {
            Self::Insert => Operation::Insert,
            Self::Update => Operation::Update,
            Self::Delete => Operation::Delete,
        }
    }
}

/// One post row: its `_rs` and every other key as sent.
#[derive(Clone, Debug)]
pub struct PostRow {
    pub status: RowStatus,
    pub values: Map<String, Value>,
}

impl AliasRequest {
    /// The grants this alias needs, each once, in a fixed order.
    pub fn operations(&self) -> Vec<Operation> {
        match &self.action {
            Action::Query(_) => vec![Operation::Query],
            Action::Post(rows) => {
                let mut ops: Vec<Operation> = rows.iter().map(|r| r.status.operation()).collect();
                ops.sort();
                ops.dedup();
                ops
            }
        }
    }

    /// Whether this alias writes.
    pub fn writes(&self) -> bool {
        matches!(self.action, Action::Post(_))
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(message.into())
}

/// Why a body is not JSON we take; serde_json's nesting limit is named.
fn not_json(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("recursion limit exceeded") {
        return "The request body nests JSON deeper than 128 levels: flatten it (filters nest at most 16 groups).".into();
    }
    format!("The request body is not valid JSON: {text}.")
}

/// Parses a body. `max_limit` is the config's cap on `limit`.
pub fn parse(body: &[u8], max_limit: u32) -> Result<ApiRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid(not_json(&e)))?;
    parse_value(&value, max_limit)
}

/// Parses a body already read as JSON.
pub fn parse_value(value: &Value, max_limit: u32) -> Result<ApiRequest, ApiError> {
    let Value::Object(map) = value else {
        return Err(invalid(
            "The body must be a JSON object keyed by alias: {\"ALIAS\": {\"ds\": NAME, \"query\": {...}}}.",
        ));
    };
    if map.is_empty() {
        return Err(invalid("The body has no aliases: send at least one."));
    }
    if map.len() > MAX_ALIASES {
        return Err(invalid(format!("The body has more than {MAX_ALIASES} aliases.")));
    }
    let mut rows = 0;
    let mut aliases = Vec::with_capacity(map.len());
    for (alias, entry) in map {
        let parsed = parse_alias(alias, entry, max_limit)?;
        if let Action::Post(list) = &parsed.action {
            rows += list.len();
            if rows > MAX_ROWS {
                return Err(invalid(format!(
                    "The body has more than {MAX_ROWS} post rows: send them in several requests."
                )));
            }
        }
        aliases.push(parsed);
    }
    Ok(ApiRequest { aliases })
}

fn parse_alias(alias: &str, entry: &Value, max_limit: u32) -> Result<AliasRequest, ApiError> {
    let Value::Object(entry) = entry else {
        return Err(invalid(format!(
            "Alias {alias}: must be an object {{\"ds\": NAME, \"query\": {{...}}}} or {{\"ds\": NAME, \"data\": [rows]}}."
        )));
    };
    let ds = match entry.get("ds") {
        Some(Value::String(ds)) if !ds.is_empty() => ds.clone(),
        _ => return Err(invalid(format!("Alias {alias}: \"ds\" must name a datasource."))),
    };
    if let Some(key) = entry.keys().find(|k| !matches!(k.as_str(), "ds" | "query" | "data")) {
        return Err(invalid(format!(
            "Alias {alias}: unknown key {key:?}; an alias has \"ds\" and either \"query\" or \"data\"."
        )));
    }
    let action = match (entry.get("query"), entry.get("data")) {
        (Some(query), None) => Action::Query(parse_query(alias, query, max_limit)?),
        (None, Some(data)) => Action::Post(parse_rows(alias, data)?),
        _ => {
            return Err(invalid(format!(
                "Alias {alias}: give exactly one of \"query\" (to read) or \"data\" (to post rows)."
            )));
        }
    };
    Ok(AliasRequest { alias: alias.to_owned(), ds, action })
}

fn parse_query(alias: &str, query: &Value, max_limit: u32) -> Result<QueryRequest, ApiError> {
    let Value::Object(query) = query else {
        return Err(invalid(format!("Alias {alias}: \"query\" must be an object.")));
    };
    let mut filter = Vec::new();
    let mut projection = Projection::All;
    let mut sort = Vec::new();
    let mut offset = 0;
    let mut limit = None;
    let mut params = Vec::new();
    let mut distinct = false;
    let mut aggregates = Vec::new();
    let mut group_by = Vec::new();
    let mut budget = filter::Budget::default();
    for (key, value) in query {
        let at = |what: &str| invalid(format!("Alias {alias}: {what}"));
        match key.as_str() {
            "filter" => {
                filter = filter::parse_list(value, 1, &mut budget)
                    .map_err(|e| at(&format!("filter: {e}")))?;
            }
            "projection" => {
                if projection != Projection::All {
                    return Err(at(
                        "give \"projection\" or \"selectAttributeCodeList\", not both.",
                    ));
                }
                projection = parse_projection(value).map_err(|e| at(&e))?;
            }
            "selectAttributeCodeList" => {
                if projection != Projection::All {
                    return Err(at(
                        "give \"projection\" or \"selectAttributeCodeList\", not both.",
                    ));
                }
                projection = parse_code_list(value).map_err(|e| at(&e))?;
            }
            "sort" => sort = parse_sort(value).map_err(|e| at(&e))?,
            "offset" => {
                offset = value.as_u64().filter(|n| *n <= MAX_OFFSET).ok_or_else(|| {
                    at(&format!("\"offset\" must be a whole number from 0 to {MAX_OFFSET}."))
                })?;
            }
            "limit" => {
                let range =
                    || at(&format!("\"limit\" must be a whole number from 1 to {max_limit}."));
                let n = value.as_u64().ok_or_else(range)?;
                limit = Some(
                    u32::try_from(n)
                        .ok()
                        .filter(|n| (1..=max_limit).contains(n))
                        .ok_or_else(range)?,
                );
            }
            "fetchDistinct" => {
                distinct = match value {
                    Value::Bool(b) => *b,
                    Value::Null => false,
                    _ => return Err(at("\"fetchDistinct\" must be true or false.")),
                };
            }
            "aggregateList" => {
                aggregates = aggregate::parse_aggregates(value).map_err(|e| at(&e))?
            }
            "groupByAttributeCodeList" => {
                group_by = aggregate::parse_group_by(value).map_err(|e| at(&e))?;
            }
            "params" => params = aggregate::parse_params(value).map_err(|e| at(&e))?,
            // Accepted only when it asks for nothing.
            "data" if value.is_null() || value.as_object().is_some_and(Map::is_empty) => {}
            "data" => {
                return Err(at("query key \"data\" is not supported by this server."));
            }
            _ => {
                return Err(at(&format!(
                    "unknown query key {key:?}; known: filter, params, projection, selectAttributeCodeList, sort, offset, limit, fetchDistinct, aggregateList, groupByAttributeCodeList."
                )));
            }
        }
    }
    let limit = limit.ok_or_else(|| {
        invalid(format!(
            "Alias {alias}: \"limit\" is required: a whole number from 1 to {max_limit}."
        ))
    })?;
    Ok(QueryRequest {
        filter,
        projection,
        sort,
        offset,
        limit,
        params,
        distinct,
        aggregates,
        group_by,
    })
}

fn parse_projection(value: &Value) -> Result<Projection, String> {
    let Value::Object(map) = value else {
        return Err("\"projection\" must be an object {\"attribute\": 1}.".into());
    };
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (code, flag) in map {
        match flag {
            Value::Bool(true) => include.push(code.clone()),
            Value::Bool(false) => exclude.push(code.clone()),
            Value::Number(n) if n.as_u64() == Some(1) => include.push(code.clone()),
            Value::Number(n) if n.as_u64() == Some(0) => exclude.push(code.clone()),
            _ => return Err(format!("projection of {code:?} must be 1 (include) or 0 (exclude).")),
        }
    }
    match (include.is_empty(), exclude.is_empty()) {
        (true, true) => Ok(Projection::All),
        (false, true) => Ok(Projection::Only(include)),
        (true, false) => Ok(Projection::Except(exclude)),
        (false, false) => Err("a projection either includes (1) or excludes (0), not both.".into()),
    }
}

fn parse_code_list(value: &Value) -> Result<Projection, String> {
    let message = || "\"selectAttributeCodeList\" must be a list of attribute codes.".to_owned();
    let list = value.as_array().ok_or_else(message)?;
    let codes: Option<Vec<String>> = list.iter().map(|v| v.as_str().map(str::to_owned)).collect();
    let codes = codes.ok_or_else(message)?;
    Ok(if codes.is_empty() { Projection::All } else { Projection::Only(codes) })
}

fn parse_sort(value: &Value) -> Result<Vec<(String, bool)>, String> {
    let Value::Object(map) = value else {
        return Err("\"sort\" must be an object {\"attribute\": 1 | -1}.".into());
    };
    map.iter()
        .map(|(code, dir)| match dir.as_i64() {
            Some(1) => Ok((code.clone(), false)),
            Some(-1) => Ok((code.clone(), true)),
            _ => Err(format!("sort of {code:?} must be 1 (ascending) or -1 (descending).")),
        })
        .collect()
}

fn parse_rows(alias: &str, data: &Value) -> Result<Vec<PostRow>, ApiError> {
    let Value::Array(list) = data else {
        return Err(invalid(format!("Alias {alias}: \"data\" must be a list of rows.")));
    };
    if list.is_empty() {
        return Err(invalid(format!("Alias {alias}: \"data\" has no rows.")));
    }
    if list.len() > MAX_ROWS {
        return Err(invalid(format!("Alias {alias}: \"data\" has more than {MAX_ROWS} rows.")));
    }
    list.iter()
        .enumerate()
        .map(|(i, row)| {
            let at = |what: &str| invalid(format!("Alias {alias}, row {}: {what}", i + 1));
            let Value::Object(row) = row else { return Err(at("a row must be an object.")) };
            let status = match row.get("_rs").and_then(Value::as_str) {
                Some("I") => RowStatus::Insert,
                Some("U") => RowStatus::Update,
                Some("D") => RowStatus::Delete,
                _ => {
                    return Err(at(
                        "\"_rs\" must be \"I\" (insert), \"U\" (update) or \"D\" (delete).",
                    ));
                }
            };
            let mut values = row.clone();
            values.shift_remove("_rs");
            Ok(PostRow { status, values })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: Value) -> Result<ApiRequest, String> {
        parse_value(&value, 1000).map_err(|e| e.to_string())
    }

    fn query(q: Value) -> Result<QueryRequest, String> {
        let request = parse_json(json!({"a": {"ds": "Employees", "query": q}}))?;
        match request.aliases.into_iter().next().map(|a| a.action) {
            Some(Action::Query(q)) => Ok(q),
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn aliases_keep_request_order_and_kinds() {
        let request = parse_json(json!({
            "z": {"ds": "A", "query": {"limit": 1}},
            "a": {"ds": "B", "data": [{"_rs": "I", "x": 1}, {"_rs": "D"}]},
        }))
        .unwrap();
        let names: Vec<_> = request.aliases.iter().map(|a| a.alias.as_str()).collect();
        assert_eq!(names, ["z", "a"]);
        assert_eq!(request.aliases[0].operations(), [Operation::Query]);
        assert_eq!(request.aliases[1].operations(), [Operation::Insert, Operation::Delete]);
        let Action::Post(rows) = &request.aliases[1].action else { panic!() };
        assert!(!rows[0].values.contains_key("_rs"));
    }

    #[test]
    fn envelope_mistakes_are_named() {
        assert!(parse(b"{", 10).unwrap_err().to_string().contains("not valid JSON"));
        assert!(parse_json(json!([])).unwrap_err().contains("keyed by alias"));
        assert!(parse_json(json!({})).unwrap_err().contains("no aliases"));
        assert!(parse_json(json!({"a": {"query": {}}})).unwrap_err().contains("\"ds\""));
        let both = json!({"a": {"ds": "X", "query": {"limit": 1}, "data": []}});
        assert!(parse_json(both).unwrap_err().contains("exactly one"));
        let extra = json!({"a": {"ds": "X", "query": {"limit": 1}, "sql": "x"}});
        assert!(parse_json(extra).unwrap_err().contains("unknown key \"sql\""));
        assert!(parse_json(json!({"a": {"ds": "X", "data": []}})).unwrap_err().contains("no rows"));
        let bad_rs = json!({"a": {"ds": "X", "data": [{"_rs": "Q"}]}});
        assert!(parse_json(bad_rs).unwrap_err().contains("row 1: \"_rs\""));
    }

    #[test]
    fn limit_is_required_and_bounded() {
        assert!(query(json!({})).unwrap_err().contains("\"limit\" is required"));
        for bad in [json!(0), json!(-1), json!(1001), json!(2.5), json!("10"), json!(1e30)] {
            let err = query(json!({"limit": bad})).unwrap_err();
            assert!(err.contains("from 1 to 1000"), "{bad}: {err}");
        }
        assert_eq!(query(json!({"limit": 1000})).unwrap().limit, 1000);
        assert!(query(json!({"limit": 1, "offset": -1})).unwrap_err().contains("\"offset\""));
        assert_eq!(query(json!({"limit": 1, "offset": 7})).unwrap().offset, 7);
    }

    #[test]
    fn projection_sort_and_unsupported_keys() {
        let q = query(json!({"limit": 1, "projection": {"name": 1, "empId": 1}})).unwrap();
        assert_eq!(q.projection, Projection::Only(vec!["name".into(), "empId".into()]));
        let q = query(json!({"limit": 1, "selectAttributeCodeList": ["name"]})).unwrap();
        assert_eq!(q.projection, Projection::Only(vec!["name".into()]));
        let q = query(json!({"limit": 1, "projection": {"salary": 0}})).unwrap();
        assert_eq!(q.projection, Projection::Except(vec!["salary".into()]));
        assert!(query(json!({"limit": 1, "projection": {"a": 1, "b": 0}})).is_err());
        assert!(query(json!({"limit": 1, "projection": {"a": 2}})).is_err());
        let q = query(json!({"limit": 1, "sort": {"name": 1, "lastUpdateDate": -1}})).unwrap();
        assert_eq!(q.sort, [("name".into(), false), ("lastUpdateDate".into(), true)]);
        assert!(query(json!({"limit": 1, "sort": {"name": "asc"}})).is_err());
        let q = query(json!({"limit": 1, "groupByAttributeCodeList": ["x"],
            "aggregateList": [{"func": "count"}], "fetchDistinct": true, "params": {"a": 1}}))
        .unwrap();
        assert_eq!((q.group_by.len(), q.aggregates.len(), q.distinct), (1, 1, true));
        assert_eq!(q.params, [("a".to_owned(), json!(1))]);
        assert!(query(json!({"limit": 1, "fetchDistinct": false})).is_ok_and(|q| !q.distinct));
        let err = query(json!({"limit": 1, "fetchDistinct": "yes"})).unwrap_err();
        assert!(err.contains("\"fetchDistinct\" must be"), "{err}");
        let err = query(json!({"limit": 1, "aggregateList": [{"func": "Sum"}]})).unwrap_err();
        assert!(err.contains("Alias a: \"aggregateList\", item 1: Sum needs"), "{err}");
        assert!(
            query(json!({"limit": 1, "data": {"x": 1}})).unwrap_err().contains("not supported")
        );
        assert!(query(json!({"limit": 1, "where": 1})).unwrap_err().contains("unknown query key"));
    }
}
