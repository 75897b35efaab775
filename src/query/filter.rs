//! Filters (spec §5.3, design §1.4): the raw tree as the client wrote it
//! ([`RawFilter`], from [`parse_list`]) and the tree bound to a datasource's
//! attributes with typed values ([`Filter`], from [`bind`]).
//!
//! Semantics, the same on both backends and in the in-memory model that the
//! property tests check them against: a condition on a NULL value is false,
//! except `null`/`empty`, which look for it; `{"not": [...]}` is true when
//! none of its filters is.

use serde_json::Value;

use super::request::{MAX_DEPTH, MAX_FILTER_NODES, MAX_FILTER_VALUES, MAX_LIST, operator_names};
use super::values::{self, Scalar, from_json};
use crate::catalog::{AttrType, Datasource, Family};
use crate::error::ApiError;

macro_rules! operators {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A filter operator.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Op { $($variant),* }

        impl Op {
            /// Every operator.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];

            /// The operator with this wire name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }
        }
    };
}

operators! {
    Is = "is", Not = "not", Empty = "empty", NotEmpty = "notEmpty", Nct = "nct", Like = "like",
    Sw = "sw", Ew = "ew", In = "in", Nin = "nin", HasAll = "hasAll", HasAny = "hasAny",
    NotAny = "notAny", Eq = "eq", Ne = "ne", Null = "null", NotNull = "notNull", Gt = "gt",
    Gte = "gte", Lt = "lt", Lte = "lte", Bn = "bn", After = "after", Before = "before", On = "on",
    OnOrAfter = "onOrAfter", OnOrBefore = "onOrBefore",
}

/// A filter as written: groups and `{attribute: {operator: value}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum RawFilter {
    And(Vec<RawFilter>),
    Or(Vec<RawFilter>),
    Not(Vec<RawFilter>),
    Cond { attr: String, op: Op, value: Value },
}

/// What one query's filter has used of its limits.
#[derive(Debug, Default)]
pub struct Budget {
    nodes: usize,
    values: usize,
}

impl Budget {
    fn node(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_FILTER_NODES {
            return Err(format!("more than {MAX_FILTER_NODES} filters and groups."));
        }
        Ok(())
    }

    fn values(&mut self, n: usize) -> Result<(), String> {
        self.values += n;
        if self.values > MAX_FILTER_VALUES {
            return Err(format!("more than {MAX_FILTER_VALUES} values in all."));
        }
        Ok(())
    }
}

/// Parses a list of filters (one object stands for a list of one) at
/// nesting `depth` (the top level is 1).
pub fn parse_list(
    value: &Value,
    depth: usize,
    budget: &mut Budget,
) -> Result<Vec<RawFilter>, String> {
    match value {
        Value::Null if depth == 1 => Ok(Vec::new()),
        Value::Array(list) => list.iter().map(|item| parse_node(item, depth, budget)).collect(),
        Value::Object(_) => Ok(vec![parse_node(value, depth, budget)?]),
        _ => Err("must be a list of filters such as [{\"name\": {\"is\": \"Dana\"}}].".into()),
    }
}

fn parse_node(value: &Value, depth: usize, budget: &mut Budget) -> Result<RawFilter, String> {
    let Value::Object(map) = value else {
        return Err(format!("a filter must be an object, not {}.", kind_of(value)));
    };
    if map.is_empty() {
        return Err("an empty filter {} says nothing: remove it.".into());
    }
    let mut parts = Vec::with_capacity(map.len());
    for (key, inner) in map {
        budget.node()?;
        match (key.as_str(), inner) {
            (group @ ("and" | "or" | "not"), Value::Array(list)) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("filter groups nest deeper than {MAX_DEPTH} levels."));
                }
                if list.is_empty() {
                    return Err(format!("the group {group:?} has no filters."));
                }
                let children = parse_list(inner, depth + 1, budget)?;
                parts.push(match group {
                    "and" => RawFilter::And(children),
                    "or" => RawFilter::Or(children),
                    _ => RawFilter::Not(children),
                });
            }
            (attr, Value::Object(ops)) => {
                if ops.is_empty() {
                    return Err(format!("the filter on {attr} has no operator."));
                }
                for (name, value) in ops {
                    let op = Op::parse(name).ok_or_else(|| {
                        format!("unknown operator {name:?} on {attr}; known: {}.", operator_names())
                    })?;
                    let n = match value {
                        Value::Array(list) if list.len() > MAX_LIST => {
                            return Err(format!(
                                "{attr} {name}: more than {MAX_LIST} values in one list."
                            ));
                        }
                        Value::Array(list) => list.len(),
                        _ => 1,
                    };
                    budget.values(n)?;
                    if ops.len() > 1 {
                        budget.node()?;
                    }
                    parts.push(RawFilter::Cond { attr: attr.to_owned(), op, value: value.clone() });
                }
            }
            (attr, _) => {
                return Err(format!(
                    "the filter on {attr} must be an object {{\"operator\": value}}, or a group \"and\"/\"or\"/\"not\" with a list."
                ));
            }
        }
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { RawFilter::And(parts) })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A filter bound to a datasource: attributes by index, values typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// None of.
    Not(Vec<Filter>),
    Leaf {
        attr: usize,
        test: Test,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Where a partial string must occur.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    Contains,
    StartsWith,
    EndsWith,
}

/// One condition on one attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Null,
    NotNull,
    /// Text that is NULL or `''`.
    Blank,
    /// Text that is neither NULL nor `''`.
    NotBlank,
    Cmp(Cmp, Scalar),
    /// Inclusive at both ends.
    Between(Scalar, Scalar),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    /// Case-sensitive, literal substring tests: all of them (`all`) or any
    /// of them, negated if `negate`.
    Match {
        how: Match,
        values: Vec<String>,
        all: bool,
        negate: bool,
    },
}

/// Binds a list of raw filters (ANDed) to `ds`.
pub fn bind(raw: &[RawFilter], ds: &Datasource) -> Result<Vec<Filter>, ApiError> {
    raw.iter().map(|f| bind_one(f, ds)).collect()
}

fn bind_one(raw: &RawFilter, ds: &Datasource) -> Result<Filter, ApiError> {
    Ok(match raw {
        RawFilter::And(list) => Filter::And(bind(list, ds)?),
        RawFilter::Or(list) => Filter::Or(bind(list, ds)?),
        RawFilter::Not(list) => Filter::Not(bind(list, ds)?),
        RawFilter::Cond { attr, op, value } => {
            let Some(index) = ds.attributes.iter().position(|a| a.code == *attr) else {
                return Err(ApiError::Invalid(format!(
                    "filter: unknown attribute {attr:?} of datasource {}.",
                    ds.name
                )));
            };
            let kind = ds.attributes[index].kind;
            condition(index, kind, *op, value).map_err(|e| {
                ApiError::Invalid(format!(
                    "filter on {attr} ({}), operator {}: {e}.",
                    kind.name(),
                    op.name()
                ))
            })?
        }
    })
}

fn leaf(attr: usize, test: Test) -> Filter {
    Filter::Leaf { attr, test }
}

/// The operators each family takes, for messages.
fn allowed(family: Family) -> &'static str {
    match family {
        Family::Text => {
            "is, not, empty, notEmpty, null, notNull, like, nct, sw, ew, in, nin, hasAll, hasAny, notAny"
        }
        Family::Number => "eq, ne, null, notNull, gt, gte, lt, lte, in, nin, bn",
        Family::Date => {
            "after, before, on, onOrAfter, onOrBefore, bn, eq, ne, null, notNull, in, nin"
        }
        Family::Boolean => "is, not, empty, notEmpty",
    }
}

fn condition(attr: usize, kind: AttrType, op: Op, value: &Value) -> Result<Filter, String> {
    use Op::*;
    let family = kind.family();
    let one = |v: &Value| from_json(kind, v, true);
    let list = |v: &Value| -> Result<Vec<Scalar>, String> {
        let items = non_empty_list(v)?;
        items.iter().map(one).collect()
    };
    let test = match (family, op) {
        (_, Null) => Test::Null,
        (_, NotNull) => Test::NotNull,
        (Family::Text, Empty) => Test::Blank,
        (Family::Text, NotEmpty) => Test::NotBlank,
        (_, Empty) => Test::Null,
        (_, NotEmpty) => Test::NotNull,
        (Family::Text | Family::Boolean, Is)
        | (Family::Number | Family::Date | Family::Boolean, Eq) => Test::Cmp(Cmp::Eq, one(value)?),
        (Family::Text | Family::Boolean, Not)
        | (Family::Number | Family::Date | Family::Boolean, Ne) => Test::Cmp(Cmp::Ne, one(value)?),
        (Family::Text | Family::Number | Family::Date, In) => Test::In(list(value)?),
        (Family::Text | Family::Number | Family::Date, Nin) => Test::NotIn(list(value)?),
        (Family::Text, Like | Nct | Sw | Ew) => {
            let text = value.as_str().ok_or("expected a string")?.to_owned();
            let how = match op {
                Sw => Match::StartsWith,
                Ew => Match::EndsWith,
                _ => Match::Contains,
            };
            Test::Match { how, values: vec![text], all: true, negate: op == Nct }
        }
        (Family::Text, HasAll | HasAny | NotAny) => {
            let values = non_empty_list(value)?
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("expected a list of strings")?;
            Test::Match { how: Match::Contains, values, all: op == HasAll, negate: op == NotAny }
        }
        (Family::Number, Gt | Gte | Lt | Lte) => Test::Cmp(cmp_of(op), one(value)?),
        (Family::Number, Bn) | (Family::Date, Bn) if kind != AttrType::DateTime => {
            let (low, high) = pair(value)?;
            Test::Between(one(low)?, one(high)?)
        }
        (Family::Date, Gt | Gte | Lt | Lte | After | Before | OnOrAfter | OnOrBefore | On | Bn) => {
            return date_condition(attr, kind, op, value);
        }
        _ => {
            return Err(format!(
                "does not apply to a {} attribute (use one of: {})",
                kind.name(),
                allowed(family)
            ));
        }
    };
    Ok(leaf(attr, test))
}

fn cmp_of(op: Op) -> Cmp {
    match op {
        Op::Gt | Op::After => Cmp::Gt,
        Op::Gte | Op::OnOrAfter => Cmp::Gte,
        Op::Lt | Op::Before => Cmp::Lt,
        _ => Cmp::Lte,
    }
}

fn non_empty_list(value: &Value) -> Result<&Vec<Value>, String> {
    match value {
        Value::Array(list) if !list.is_empty() => Ok(list),
        Value::Array(_) => Err("expected a list with at least one value".into()),
        _ => Err("expected a list of values".into()),
    }
}

fn pair(value: &Value) -> Result<(&Value, &Value), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([low, high]) => Ok((low, high)),
        _ => Err("expected a list [low, high] of two values (both included)".into()),
    }
}

/// Date operators. On a Date attribute they compare days. On a DateTime
/// attribute a full date-time compares instants, and a plain date stands for
/// its whole UTC day: `after` is after that day, `onOrBefore` up to its end.
fn date_condition(attr: usize, kind: AttrType, op: Op, value: &Value) -> Result<Filter, String> {
    if kind == AttrType::Date {
        let day = from_json(kind, value, false)?;
        let cmp = match op {
            Op::On => Cmp::Eq,
            other => cmp_of(other),
        };
        return Ok(leaf(attr, Test::Cmp(cmp, day)));
    }
    // (start, end) of the value: a day's first and last microsecond, or
    // the instant twice.
    let span = |v: &Value| -> Result<(Scalar, Scalar), String> {
        let text = v.as_str().ok_or_else(|| format!("expected {}", kind.expected()))?;
        if values::parse_day(text).is_some() {
            let start =
                values::datetime(text).ok_or_else(|| format!("expected {}", kind.expected()))?;
            let end = format!("{}T23:59:59.999999Z", &start[..10]);
            return Ok((Scalar::DateTime(start), Scalar::DateTime(end)));
        }
        let instant = from_json(kind, v, false)?;
        Ok((instant.clone(), instant))
    };
    let day_of = |t: &Scalar| -> (Scalar, Scalar) {
        let text = match t {
            Scalar::DateTime(s) => s[..10].to_owned(),
            _ => String::new(),
        };
        (
            Scalar::DateTime(format!("{text}T00:00:00.000000Z")),
            Scalar::DateTime(format!("{text}T23:59:59.999999Z")),
        )
    };
    let test = match op {
        Op::Bn => {
            let (low, high) = pair(value)?;
            Test::Between(span(low)?.0, span(high)?.1)
        }
        Op::On => {
            let (start, _) = span(value)?;
            let (start, end) = day_of(&start);
            Test::Between(start, end)
        }
        _ => {
            let (start, end) = span(value)?;
            match op {
                Op::Gt | Op::After => Test::Cmp(Cmp::Gt, end),
                Op::Gte | Op::OnOrAfter => Test::Cmp(Cmp::Gte, start),
                Op::Lt | Op::Before => Test::Cmp(Cmp::Lt, start),
                _ => Test::Cmp(Cmp::Lte, end),
            }
        }
    };
    Ok(leaf(attr, test))
}

#[cfg(test)]
#[path = "filter_tests.rs"]
pub(crate) mod tests;
