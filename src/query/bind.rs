//! Bind: a raw filter tree becomes one bound to a datasource's attributes
//! (by index) with typed values ([`Filter`], from [`bind`]).
//!
//! Semantics, the same on both backends and in the in-memory model that the
//! property tests check them against: a condition on a NULL value is false,
//! except `null`/`empty`, which look for it; `{"not": [...]}` is true when
//! none of its filters is.
//!
//! Relative date operators (`today`, `thisWeek`, ...) are fixed here, from
//! the request's `now` (see `dates.rs`).

use serde_json::Value;

use super::dates::relative_test;
use super::filter::{Op, RawFilter};
use crate::catalog::values::{Scalar, datetime, from_json, parse_day};
use crate::catalog::{AttrType, Datasource, Family};
use crate::clock::Micros;
use crate::error::ApiError;

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

/// Binds a list of raw filters (ANDed) to `ds`, relative dates at `now`.
pub fn bind(raw: &[RawFilter], ds: &Datasource, now: Micros) -> Result<Vec<Filter>, ApiError> {
    raw.iter().map(|f| bind_one(f, ds, now)).collect()
}

fn bind_one(raw: &RawFilter, ds: &Datasource, now: Micros) -> Result<Filter, ApiError> {
    Ok(match raw {
        RawFilter::And(list) => Filter::And(bind(list, ds, now)?),
        RawFilter::Or(list) => Filter::Or(bind(list, ds, now)?),
        RawFilter::Not(list) => Filter::Not(bind(list, ds, now)?),
        RawFilter::Cond { attr, op, value } => {
            let Some(index) = ds.index_of(attr) else {
                return Err(ApiError::Invalid(format!(
                    "filter: unknown attribute {attr:?} of datasource {}.",
                    ds.name
                )));
            };
            let kind = ds.attributes[index].kind;
            condition(index, kind, *op, value, now).map_err(|e| {
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
            "is, not, empty, notEmpty, null, notNull, like, nct, sw, ew, in, nin, hasAll, hasAny, notAny; isTrue, isFalse on YN"
        }
        Family::Number => "eq, ne, null, notNull, gt, gte, lt, lte, in, nin, bn",
        Family::Date => {
            "after, before, on, notOn, onOrAfter, onOrBefore, bn, eq, ne, null, notNull, in, nin, today, yesterday, tomorrow, last7Days, next7Days, thisWeek, thisMonth, thisYear, inThePast, inTheFuture"
        }
        Family::Boolean => "is, not, empty, notEmpty, isTrue, isFalse",
    }
}

fn condition(
    attr: usize,
    kind: AttrType,
    op: Op,
    value: &Value,
    now: Micros,
) -> Result<Filter, String> {
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
        (
            Family::Date,
            Gt | Gte | Lt | Lte | After | Before | OnOrAfter | OnOrBefore | On | NotOn | Bn,
        ) => {
            return date_condition(attr, kind, op, value);
        }
        (
            Family::Date,
            Today | Yesterday | Tomorrow | Last7Days | Next7Days | ThisWeek | ThisMonth | ThisYear
            | InThePast | InTheFuture,
        ) => relative_test(kind, op, now)?,
        // The value is ignored; a NULL is neither true nor false.
        (_, IsTrue | IsFalse) if kind == AttrType::YN => {
            Test::Cmp(Cmp::Eq, Scalar::Text(if op == IsTrue { "Y" } else { "N" }.into()))
        }
        (Family::Boolean, IsTrue | IsFalse) => Test::Cmp(Cmp::Eq, Scalar::Bool(op == IsTrue)),
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
            Op::NotOn => Cmp::Ne,
            other => cmp_of(other),
        };
        return Ok(leaf(attr, Test::Cmp(cmp, day)));
    }
    // (start, end) of the value: a day's first and last microsecond, or
    // the instant twice.
    let span = |v: &Value| -> Result<(Scalar, Scalar), String> {
        let text = v.as_str().ok_or_else(|| format!("expected {}", kind.expected()))?;
        if parse_day(text).is_some() {
            let start = datetime(text).ok_or_else(|| format!("expected {}", kind.expected()))?;
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
        // Outside that UTC day; a NULL is on no day, so it is not "not on" one either.
        Op::NotOn => {
            let (start, _) = span(value)?;
            let (start, end) = day_of(&start);
            return Ok(Filter::Or(vec![
                leaf(attr, Test::Cmp(Cmp::Lt, start)),
                leaf(attr, Test::Cmp(Cmp::Gt, end)),
            ]));
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
#[path = "bind_tests.rs"]
pub(crate) mod tests;
