//! Parse: the summary members of a query as the client wrote them (design
//! §1.4): `aggregateList`, `groupByAttributeCodeList` and `params`.
//! Attribute codes stay names here; `summary.rs` binds them to a
//! datasource and checks how they combine.

use serde_json::{Map, Value};

use super::limits::{MAX_AGGREGATES, MAX_GROUP_BY};

macro_rules! funcs {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// An aggregate function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Func { $($variant),* }

        impl Func {
            /// Every function.
            pub const ALL: &'static [Func] = &[$(Func::$variant),*];

            /// The function with this name, in any case (`sum`, `SUM`, `Sum`).
            pub fn parse(name: &str) -> Option<Self> {
                $(if name.eq_ignore_ascii_case($name) { return Some(Self::$variant); })*
                None
            }

            /// The name as documented.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
    };
}

funcs! {
    Count = "Count", DistinctCount = "DistinctCount", Sum = "Sum", Avg = "Avg", Min = "Min",
    Max = "Max",
}

/// One `aggregateList` entry as written, its output name settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAggregate {
    pub func: Func,
    /// The attribute; `None` only for `Count` (every row).
    pub code: Option<String>,
    /// The output name: `intoCode`, else `code`, else `count`.
    pub into: String,
}

fn func_names() -> String {
    Func::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// Parses `aggregateList`: `[{"func": F, "code": ATTR, "intoCode": NAME}]`.
/// `null` is an empty list.
pub fn parse_aggregates(value: &Value) -> Result<Vec<RawAggregate>, String> {
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => {
            return Err("\"aggregateList\" must be a list such as [{\"func\": \"Count\"}, {\"func\": \"Sum\", \"code\": \"salary\"}].".into());
        }
    };
    if list.len() > MAX_AGGREGATES {
        return Err(format!("\"aggregateList\" has more than {MAX_AGGREGATES} aggregates."));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            parse_one(item).map_err(|e| format!("\"aggregateList\", item {}: {e}", i + 1))
        })
        .collect()
}

fn parse_one(item: &Value) -> Result<RawAggregate, String> {
    let Value::Object(map) = item else {
        return Err("must be an object {\"func\": F, \"code\": ATTR, \"intoCode\": NAME}.".into());
    };
    if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "func" | "code" | "intoCode")) {
        return Err(format!(
            "unknown key {key:?}; an aggregate has \"func\", \"code\" and \"intoCode\"."
        ));
    }
    let func = match map.get("func") {
        Some(Value::String(name)) => Func::parse(name)
            .ok_or_else(|| format!("unknown func {name:?}; known: {}.", func_names()))?,
        _ => return Err(format!("\"func\" must be one of {}.", func_names())),
    };
    let code = name_of(map, "code")?;
    let into = name_of(map, "intoCode")?;
    if code.is_none() && func != Func::Count {
        return Err(format!("{} needs \"code\", the attribute it reads.", func.name()));
    }
    let into = into.or_else(|| code.clone()).unwrap_or_else(|| "count".to_owned());
    if into == "_rs" {
        return Err("\"_rs\" is the row status key; give another \"intoCode\".".into());
    }
    Ok(RawAggregate { func, code, into })
}

/// An optional non-empty string member (`null` is absent).
fn name_of(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key:?} must be a non-empty string.")),
    }
}

/// Parses `groupByAttributeCodeList`: a list of attribute codes.
pub fn parse_group_by(value: &Value) -> Result<Vec<String>, String> {
    let message = || "\"groupByAttributeCodeList\" must be a list of attribute codes.".to_owned();
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err(message()),
    };
    if list.len() > MAX_GROUP_BY {
        return Err(format!("\"groupByAttributeCodeList\" has more than {MAX_GROUP_BY} codes."));
    }
    list.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(message)).collect()
}

/// Parses `params`: `{ATTR: value}`, each an equality filter. `null` is
/// none.
pub fn parse_params(value: &Value) -> Result<Vec<(String, Value)>, String> {
    let map = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => map,
        _ => return Err("\"params\" must be an object {\"attribute\": value}.".into()),
    };
    map.iter()
        .map(|(code, v)| match v {
            Value::Array(_) | Value::Object(_) => Err(format!(
                "\"params\": {code} must be one value (for several, use filter with \"in\")."
            )),
            _ => Ok((code.clone(), v.clone())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Result<RawAggregate, String> {
        parse_aggregates(&json!([v])).map(|mut l| l.remove(0))
    }

    #[test]
    fn funcs_are_case_insensitive_and_into_code_defaults() {
        let a = one(json!({"func": "sUm", "code": "salary"})).unwrap();
        assert_eq!(
            (a.func, a.code.as_deref(), a.into.as_str()),
            (Func::Sum, Some("salary"), "salary")
        );
        let a = one(json!({"func": "COUNT"})).unwrap();
        assert_eq!((a.func, a.code, a.into.as_str()), (Func::Count, None, "count"));
        let a = one(json!({"func": "distinctcount", "code": "name", "intoCode": "names"})).unwrap();
        assert_eq!((a.func, a.into.as_str()), (Func::DistinctCount, "names"));
        assert_eq!(parse_aggregates(&Value::Null), Ok(vec![]));
    }

    #[test]
    fn mistakes_name_the_item() {
        let err = |v: Value| one(v).unwrap_err();
        assert!(
            err(json!({"func": "Median", "code": "x"})).contains("item 1: unknown func \"Median\"")
        );
        assert!(err(json!({"func": "Sum"})).contains("Sum needs \"code\""));
        assert!(err(json!({"func": "Min", "code": 3})).contains("\"code\" must be"));
        assert!(err(json!({"func": "Count", "as": "n"})).contains("unknown key \"as\""));
        assert!(err(json!({"func": "Count", "intoCode": "_rs"})).contains("_rs"));
        assert!(err(json!("Count")).contains("must be an object"));
        assert!(parse_aggregates(&json!({})).unwrap_err().contains("must be a list"));
        let many: Vec<Value> = (0..65).map(|_| json!({"func": "Count"})).collect();
        assert!(parse_aggregates(&Value::Array(many)).unwrap_err().contains("more than 64"));
    }

    #[test]
    fn group_by_and_params_parse() {
        assert_eq!(parse_group_by(&json!(["a", "b"])), Ok(vec!["a".into(), "b".into()]));
        assert!(parse_group_by(&json!([1])).is_err());
        assert_eq!(
            parse_params(&json!({"a": 1, "b": null})),
            Ok(vec![("a".into(), json!(1)), ("b".into(), Value::Null)])
        );
        assert!(parse_params(&json!({"a": [1]})).unwrap_err().contains("\"in\""));
        assert!(parse_params(&json!([1])).is_err());
    }
}
