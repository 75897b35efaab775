//! Plan: the summary of a query (design §1.4) bound to a datasource: the
//! group attributes and aggregates of `groupByAttributeCodeList` and
//! `aggregateList`, or the distinct rows of `fetchDistinct`, with their sort.
//! Every bad combination is refused here, naming the member.

use super::aggregate::{Func, RawAggregate};
use super::render::Form;
use super::request::{Projection, QueryRequest};
use crate::catalog::{AttrType, Datasource, Family};
use crate::error::ApiError;

/// Rows that summarise the rows a filter picks: one per group (one in all
/// without groups), holding the group attributes, then every output.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Group attributes, by index, in output order.
    pub groups: Vec<usize>,
    pub outputs: Vec<Output>,
    /// Sort keys in request order; the SQL adds every group attribute as a
    /// tie-breaker.
    pub sort: Vec<(Key, bool)>,
}

/// One aggregate of a summary row.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The key it has in the row (`intoCode`).
    pub name: String,
    pub func: Func,
    /// The attribute it reads; `None` for `Count` of rows.
    pub attr: Option<usize>,
    /// How its cell is written.
    pub form: Form,
}

/// What a summary sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A group attribute, by attribute index.
    Group(usize),
    /// An output, by its place in [`Summary::outputs`].
    Output(usize),
}

fn invalid(message: String) -> ApiError {
    ApiError::Invalid(message)
}

/// The summary `query` asks for, if any: `columns` are the projected
/// attributes (the rows of `fetchDistinct`), `lookup` resolves an attribute
/// code for a member (the planner's one look-up, so its checks apply here
/// too).
pub fn plan_summary(
    query: &QueryRequest,
    ds: &Datasource,
    columns: &[usize],
    lookup: &dyn Fn(&str, &str) -> Result<usize, ApiError>,
) -> Result<Option<Summary>, ApiError> {
    if query.aggregates.is_empty() && query.group_by.is_empty() {
        if !query.distinct {
            return Ok(None);
        }
        // Distinct rows: the projected attributes are the groups.
        let mut sort = Vec::with_capacity(query.sort.len());
        for (code, desc) in &query.sort {
            let i = lookup(code, "sort")?;
            if !columns.contains(&i) {
                return Err(invalid(format!(
                    "sort: {code} is not projected; with \"fetchDistinct\", sort by projected attributes only."
                )));
            }
            if !sort.iter().any(|(k, _)| *k == Key::Group(i)) {
                sort.push((Key::Group(i), *desc));
            }
        }
        return Ok(Some(Summary { groups: columns.to_vec(), outputs: Vec::new(), sort }));
    }
    if query.projection != Projection::All {
        return Err(invalid(
            "projection: with \"aggregateList\" or \"groupByAttributeCodeList\" a row holds the group attributes and the intoCodes; leave projection and selectAttributeCodeList out.".into(),
        ));
    }
    let mut groups = Vec::with_capacity(query.group_by.len());
    for code in &query.group_by {
        let i = lookup(code, "groupByAttributeCodeList")?;
        if groups.contains(&i) {
            return Err(invalid(format!("groupByAttributeCodeList: {code} is named twice.")));
        }
        groups.push(i);
    }
    let mut outputs: Vec<Output> = Vec::with_capacity(query.aggregates.len());
    for (n, raw) in query.aggregates.iter().enumerate() {
        let at = |e: String| invalid(format!("\"aggregateList\", item {}: {e}", n + 1));
        if query.group_by.contains(&raw.into) {
            return Err(at(format!(
                "the output name {:?} is also a groupByAttributeCodeList attribute; give the aggregate another \"intoCode\".",
                raw.into
            )));
        }
        if let Some(m) = outputs.iter().position(|o| o.name == raw.into) {
            return Err(at(format!(
                "the output name {:?} is already that of item {}; give each aggregate its own \"intoCode\".",
                raw.into,
                m + 1
            )));
        }
        let attr = match &raw.code {
            Some(code) => Some(lookup(code, "aggregateList").map_err(|e| match e {
                ApiError::Invalid(m) => at(m),
                other => other,
            })?),
            None => None,
        };
        let kind = attr.map(|i| ds.attributes[i].kind);
        let form = form_of(raw, kind).map_err(at)?;
        outputs.push(Output { name: raw.into.clone(), func: raw.func, attr, form });
    }
    let mut sort: Vec<(Key, bool)> = Vec::with_capacity(query.sort.len());
    for (code, desc) in &query.sort {
        let key = match outputs.iter().position(|o| &o.name == code) {
            Some(n) => Key::Output(n),
            None => match ds.index_of(code).filter(|i| groups.contains(i)) {
                Some(_) => Key::Group(lookup(code, "sort")?),
                None => {
                    return Err(invalid(format!(
                        "sort: {code} is neither a groupByAttributeCodeList attribute nor an intoCode of aggregateList."
                    )));
                }
            },
        };
        if !sort.iter().any(|(k, _)| *k == key) {
            sort.push((key, *desc));
        }
    }
    Ok(Some(Summary { groups, outputs, sort }))
}

/// How the result of `raw` over an attribute of type `kind` is written, or
/// why the pair makes no sense.
fn form_of(raw: &RawAggregate, kind: Option<AttrType>) -> Result<Form, String> {
    let numeric = kind.is_some_and(|k| k.family() == Family::Number);
    Ok(match (raw.func, kind) {
        (Func::Count | Func::DistinctCount, _) => Form::As(AttrType::Integer),
        (Func::Sum | Func::Avg, Some(kind)) if !numeric => {
            return Err(format!(
                "{} of {} ({}) needs a number attribute (Integer, Decimal, Double or Percent).",
                raw.func.name(),
                raw.code.as_deref().unwrap_or_default(),
                kind.name()
            ));
        }
        (Func::Sum, Some(AttrType::Integer)) => Form::As(AttrType::Integer),
        (Func::Sum | Func::Avg, _) => Form::Rounded,
        (Func::Min | Func::Max, Some(kind)) => Form::As(kind),
        (Func::Min | Func::Max, None) => Form::As(AttrType::String),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::query::bind::tests::{catalog, prepare_all};
    use crate::query::plan::Planned;

    fn summary(q: Value) -> Result<Option<Summary>, String> {
        let mut q = q;
        q["limit"] = json!(10);
        let body = json!({"q": {"ds": "Things", "query": q}});
        let plan = prepare_all(&serde_json::to_vec(&body).unwrap(), &catalog())
            .map_err(|e| e.to_string())?;
        match &plan.aliases[0].action {
            Planned::Query(q) => Ok(q.summary.clone()),
            Planned::Post(_) => unreachable!(),
        }
    }

    #[test]
    fn outputs_are_typed_and_named() {
        let s = summary(json!({
            "groupByAttributeCodeList": ["flag", "day"],
            "aggregateList": [
                {"func": "count"}, {"func": "Sum", "code": "id"}, {"func": "SUM", "code": "amount", "intoCode": "total"},
                {"func": "avg", "code": "id", "intoCode": "mean"}, {"func": "Min", "code": "day", "intoCode": "first"},
                {"func": "max", "code": "ok"}, {"func": "DistinctCount", "code": "name", "intoCode": "names"},
            ],
            "sort": {"count": -1, "day": 1},
        }))
        .unwrap()
        .unwrap();
        assert_eq!(s.groups, [6, 4]);
        let shapes: Vec<(&str, Form)> =
            s.outputs.iter().map(|o| (o.name.as_str(), o.form)).collect();
        assert_eq!(
            shapes,
            [
                ("count", Form::As(AttrType::Integer)),
                ("id", Form::As(AttrType::Integer)),
                ("total", Form::Rounded),
                ("mean", Form::Rounded),
                ("first", Form::As(AttrType::Date)),
                ("ok", Form::As(AttrType::Boolean)),
                ("names", Form::As(AttrType::Integer)),
            ]
        );
        assert_eq!(s.sort, [(Key::Output(0), true), (Key::Group(4), false)]);
        assert_eq!(summary(json!({"sort": {"id": 1}})).unwrap(), None);
    }

    #[test]
    fn distinct_rows_group_the_projection() {
        let s = summary(
            json!({"fetchDistinct": true, "projection": {"flag": 1, "ok": 1}, "sort": {"ok": -1}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.groups, s.outputs, s.sort),
            (vec![6, 7], vec![], vec![(Key::Group(7), true)])
        );
        let err =
            summary(json!({"fetchDistinct": true, "projection": {"flag": 1}, "sort": {"id": 1}}));
        assert!(err.unwrap_err().contains("sort: id is not projected"));
    }

    #[test]
    fn bad_combinations_name_the_member() {
        let err = |q: Value| summary(q).unwrap_err();
        let e = err(json!({"aggregateList": [{"func": "Sum", "code": "name"}]}));
        assert!(
            e.contains("Alias q: \"aggregateList\", item 1: Sum of name (String) needs a number"),
            "{e}"
        );
        let e = err(json!({"aggregateList": [{"func": "Avg", "code": "day"}]}));
        assert!(e.contains("Avg of day (Date)"), "{e}");
        let e = err(
            json!({"aggregateList": [{"func": "Count"}, {"func": "Count", "code": "id"}, {"func": "Count"}]}),
        );
        assert!(e.contains("item 3: the output name \"count\" is already that of item 1"), "{e}");
        let e = err(
            json!({"groupByAttributeCodeList": ["flag"], "aggregateList": [{"func": "Max", "code": "flag"}]}),
        );
        assert!(
            e.contains("item 1: the output name \"flag\" is also a groupByAttributeCodeList"),
            "{e}"
        );
        let e = err(json!({"aggregateList": [{"func": "Max", "code": "nope"}]}));
        assert!(e.contains("item 1: aggregateList: unknown attribute \"nope\""), "{e}");
        let e = err(json!({"groupByAttributeCodeList": ["flag", "flag"]}));
        assert!(e.contains("groupByAttributeCodeList: flag is named twice"), "{e}");
        let e = err(json!({"groupByAttributeCodeList": ["nope"]}));
        assert!(e.contains("groupByAttributeCodeList: unknown attribute \"nope\""), "{e}");
        let e = err(json!({"groupByAttributeCodeList": ["flag"], "sort": {"id": 1}}));
        assert!(
            e.contains("sort: id is neither a groupByAttributeCodeList attribute nor an intoCode"),
            "{e}"
        );
        let e = err(json!({"groupByAttributeCodeList": ["flag"], "projection": {"flag": 1}}));
        assert!(e.contains("leave projection"), "{e}");
    }
}
