//! Filter parsing and binding: every operator, every refusal, and a
//! property that no JSON makes the parser panic.

use super::*;
use crate::catalog::Catalog;
use crate::catalog::fixtures::THINGS;
use crate::config::Config;
use crate::query::filter::{Budget, parse_list};
use proptest::prelude::*;
use serde_json::json;

/// The `now` of requests in these tests: 2024-02-28T10:00:00Z, a Wednesday.
pub(crate) const NOW: crate::clock::Micros = 1_709_114_400_000_000;

pub(crate) fn catalog() -> Catalog {
    Catalog::from_config(&Config::parse(THINGS).unwrap()).unwrap()
}

/// Whoever holds the `things_all` role of [`THINGS`].
pub(crate) fn owner() -> crate::auth::Principal {
    crate::auth::Principal {
        session_id: "s".into(),
        user_id: 1,
        user_name: "tester".into(),
        org_uid: "o".into(),
        roles: vec!["things_all".into()],
    }
}

/// Parse → authorize → plan as [`owner`], then build every statement for
/// both backends: what the property tests drive.
pub(crate) fn prepare_all(body: &[u8], catalog: &Catalog) -> Result<crate::query::Plan, ApiError> {
    let plan = crate::query::prepare(catalog, &owner(), body, 1000, NOW)?;
    let stamp = crate::query::Stamp {
        user: "t".into(),
        org: "o".into(),
        session: "s".into(),
        now: "2024-01-01T00:00:00.000000Z".into(),
    };
    for backend in [crate::store::Backend::Sqlite, crate::store::Backend::Postgres] {
        crate::query::sql::statements(&plan, &stamp, backend);
    }
    Ok(plan)
}

fn bound(filter: Value) -> Result<Vec<Filter>, String> {
    let catalog = catalog();
    let ds = catalog.datasource("Things").unwrap();
    let raw = parse_list(&filter, 1, &mut Budget::default())?;
    bind(&raw, ds, NOW).map_err(|e| e.to_string())
}

fn one(filter: Value) -> Test {
    match bound(filter).unwrap().remove(0) {
        Filter::Leaf { test, .. } => test,
        other => panic!("not a leaf: {other:?}"),
    }
}

fn text(s: &str) -> Scalar {
    Scalar::Text(s.into())
}

fn dt(s: &str) -> Scalar {
    Scalar::DateTime(s.into())
}

#[test]
fn string_operators_parse() {
    assert_eq!(one(json!({"name": {"is": "Dana"}})), Test::Cmp(Cmp::Eq, text("Dana")));
    assert_eq!(one(json!({"name": {"not": "Dana"}})), Test::Cmp(Cmp::Ne, text("Dana")));
    assert_eq!(one(json!({"name": {"empty": ""}})), Test::Blank);
    assert_eq!(one(json!({"name": {"notEmpty": ""}})), Test::NotBlank);
    assert_eq!(one(json!({"name": {"null": 1}})), Test::Null);
    assert_eq!(one(json!({"name": {"notNull": 1}})), Test::NotNull);
    let m = |how, values: &[&str], all, negate| Test::Match {
        how,
        values: values.iter().map(|s| (*s).to_owned()).collect(),
        all,
        negate,
    };
    assert_eq!(one(json!({"name": {"like": "a%"}})), m(Match::Contains, &["a%"], true, false));
    assert_eq!(one(json!({"name": {"nct": "a"}})), m(Match::Contains, &["a"], true, true));
    assert_eq!(one(json!({"name": {"sw": "a"}})), m(Match::StartsWith, &["a"], true, false));
    assert_eq!(one(json!({"name": {"ew": "a"}})), m(Match::EndsWith, &["a"], true, false));
    assert_eq!(
        one(json!({"name": {"hasAll": ["a", "b"]}})),
        m(Match::Contains, &["a", "b"], true, false)
    );
    assert_eq!(
        one(json!({"name": {"hasAny": ["a", "b"]}})),
        m(Match::Contains, &["a", "b"], false, false)
    );
    assert_eq!(one(json!({"name": {"notAny": ["a"]}})), m(Match::Contains, &["a"], false, true));
    assert_eq!(one(json!({"name": {"in": ["a", "b"]}})), Test::In(vec![text("a"), text("b")]));
    assert_eq!(one(json!({"name": {"nin": ["a"]}})), Test::NotIn(vec![text("a")]));
    assert_eq!(one(json!({"flag": {"is": "Y"}})), Test::Cmp(Cmp::Eq, text("Y")));
}

#[test]
fn number_operators_parse() {
    let int = Scalar::Int;
    assert_eq!(one(json!({"id": {"eq": 5}})), Test::Cmp(Cmp::Eq, int(5)));
    assert_eq!(one(json!({"id": {"ne": 5}})), Test::Cmp(Cmp::Ne, int(5)));
    assert_eq!(one(json!({"id": {"gt": 5}})), Test::Cmp(Cmp::Gt, int(5)));
    assert_eq!(one(json!({"id": {"gte": 5}})), Test::Cmp(Cmp::Gte, int(5)));
    assert_eq!(one(json!({"id": {"lt": 5}})), Test::Cmp(Cmp::Lt, int(5)));
    assert_eq!(one(json!({"id": {"lte": 2.5}})), Test::Cmp(Cmp::Lte, Scalar::Num("2.5".into())));
    assert_eq!(one(json!({"id": {"in": [1, 2]}})), Test::In(vec![int(1), int(2)]));
    assert_eq!(one(json!({"id": {"nin": [1]}})), Test::NotIn(vec![int(1)]));
    assert_eq!(one(json!({"id": {"bn": [1, 3]}})), Test::Between(int(1), int(3)));
    assert_eq!(one(json!({"id": {"null": 1}})), Test::Null);
    assert_eq!(one(json!({"id": {"notNull": 1}})), Test::NotNull);
    assert_eq!(
        one(json!({"amount": {"eq": 10.5}})),
        Test::Cmp(Cmp::Eq, Scalar::Num("10.5".into()))
    );
    assert_eq!(one(json!({"score": {"gt": 0.5}})), Test::Cmp(Cmp::Gt, Scalar::Double(0.5)));
}

#[test]
fn date_operators_parse() {
    let day = |s: &str| Scalar::Date(s.into());
    assert_eq!(one(json!({"day": {"after": "2024-01-02"}})), Test::Cmp(Cmp::Gt, day("2024-01-02")));
    assert_eq!(
        one(json!({"day": {"before": "2024-01-02"}})),
        Test::Cmp(Cmp::Lt, day("2024-01-02"))
    );
    assert_eq!(one(json!({"day": {"on": "2024-01-02"}})), Test::Cmp(Cmp::Eq, day("2024-01-02")));
    assert_eq!(
        one(json!({"day": {"onOrAfter": "2024-01-02"}})),
        Test::Cmp(Cmp::Gte, day("2024-01-02"))
    );
    assert_eq!(
        one(json!({"day": {"onOrBefore": "2024-01-02"}})),
        Test::Cmp(Cmp::Lte, day("2024-01-02"))
    );
    assert_eq!(
        one(json!({"day": {"bn": ["2024-01-01", "2024-01-31"]}})),
        Test::Between(day("2024-01-01"), day("2024-01-31"))
    );
    // A plain date on a DateTime attribute stands for its whole UTC day.
    assert_eq!(
        one(json!({"at": {"after": "2024-01-02"}})),
        Test::Cmp(Cmp::Gt, dt("2024-01-02T23:59:59.999999Z"))
    );
    assert_eq!(
        one(json!({"at": {"before": "2024-01-02"}})),
        Test::Cmp(Cmp::Lt, dt("2024-01-02T00:00:00.000000Z"))
    );
    assert_eq!(
        one(json!({"at": {"on": "2024-01-02T15:00:00+02:00"}})),
        Test::Between(dt("2024-01-02T00:00:00.000000Z"), dt("2024-01-02T23:59:59.999999Z"))
    );
    // A full date-time is an instant; `after` is strictly after.
    assert_eq!(
        one(json!({"at": {"after": "2023-01-31T23:59:59.999Z"}})),
        Test::Cmp(Cmp::Gt, dt("2023-01-31T23:59:59.999000Z"))
    );
    assert_eq!(
        one(json!({"at": {"bn": ["2024-01-01", "2024-01-02T12:00:00Z"]}})),
        Test::Between(dt("2024-01-01T00:00:00.000000Z"), dt("2024-01-02T12:00:00.000000Z"))
    );
    assert_eq!(one(json!({"ok": {"is": true}})), Test::Cmp(Cmp::Eq, Scalar::Bool(true)));
    assert_eq!(one(json!({"ok": {"not": false}})), Test::Cmp(Cmp::Ne, Scalar::Bool(false)));
    assert_eq!(one(json!({"ok": {"empty": ""}})), Test::Null);
}

#[test]
fn design_1_4_operators_parse() {
    let day = |s: &str| Scalar::Date(s.into());
    assert_eq!(one(json!({"day": {"notOn": "2024-01-02"}})), Test::Cmp(Cmp::Ne, day("2024-01-02")));
    assert_eq!(
        bound(json!({"at": {"notOn": "2024-01-02T15:00:00+02:00"}})).unwrap(),
        [Filter::Or(vec![
            Filter::Leaf { attr: 5, test: Test::Cmp(Cmp::Lt, dt("2024-01-02T00:00:00.000000Z")) },
            Filter::Leaf { attr: 5, test: Test::Cmp(Cmp::Gt, dt("2024-01-02T23:59:59.999999Z")) },
        ])]
    );
    // NOW is Wednesday 2024-02-28T10:00:00Z; the value of a relative operator is ignored.
    assert_eq!(one(json!({"day": {"today": true}})), Test::Cmp(Cmp::Eq, day("2024-02-28")));
    assert_eq!(
        one(json!({"day": {"thisWeek": "ignored"}})),
        Test::Between(day("2024-02-26"), day("2024-03-03"))
    );
    assert_eq!(
        one(json!({"at": {"thisMonth": true}})),
        Test::Between(dt("2024-02-01T00:00:00.000000Z"), dt("2024-02-29T23:59:59.999999Z"))
    );
    assert_eq!(
        one(json!({"at": {"inThePast": true}})),
        Test::Cmp(Cmp::Lt, dt("2024-02-28T10:00:00.000000Z"))
    );
    assert_eq!(one(json!({"flag": {"isTrue": true}})), Test::Cmp(Cmp::Eq, text("Y")));
    assert_eq!(one(json!({"flag": {"isFalse": 1}})), Test::Cmp(Cmp::Eq, text("N")));
    assert_eq!(one(json!({"ok": {"isFalse": true}})), Test::Cmp(Cmp::Eq, Scalar::Bool(false)));
    let err = bound(json!({"name": {"isTrue": true}})).unwrap_err();
    assert!(err.contains("operator isTrue: does not apply to a String attribute"), "{err}");
    let err = bound(json!({"id": {"today": true}})).unwrap_err();
    assert!(err.contains("operator today: does not apply to a Integer"), "{err}");
    // Group keys in any case, and their other spellings.
    for (key, group) in [("ANYOF", "or"), ("allOf", "and"), ("NoneOf", "not"), ("Or", "or")] {
        let spelled = bound(json!({key: [{"id": {"eq": 1}}]})).unwrap();
        let plain = bound(json!({group: [{"id": {"eq": 1}}]})).unwrap();
        assert_eq!(spelled, plain, "{key}");
    }
}

#[test]
fn groups_nest_and_several_conditions_are_anded() {
    let filters = bound(json!([
        {"or": [{"name": {"is": "a"}}, {"not": [{"id": {"eq": 1}}]}]},
        {"id": {"gte": 1, "lte": 3}, "name": {"sw": "x"}},
    ]))
    .unwrap();
    assert!(matches!(&filters[0], Filter::Or(list) if matches!(list[1], Filter::Not(_))));
    assert!(matches!(&filters[1], Filter::And(list) if list.len() == 3));
}

#[test]
fn bad_filters_say_what_is_wrong() {
    let err = |f: Value| bound(f).unwrap_err();
    assert!(err(json!({"salary": {"eq": 1}})).contains("unknown attribute \"salary\""));
    assert!(err(json!({"name": {"regex": "a"}})).contains("unknown operator \"regex\" on name"));
    let wrong = err(json!({"id": {"eq": "five"}}));
    assert!(
        wrong.contains("filter on id (Integer), operator eq: expected a whole number"),
        "{wrong}"
    );
    let wrong = err(json!({"name": {"gt": "a"}}));
    assert!(wrong.contains("operator gt: does not apply to a String attribute"), "{wrong}");
    assert!(err(json!({"id": {"bn": [1]}})).contains("[low, high]"));
    assert!(err(json!({"name": {"in": []}})).contains("at least one"));
    assert!(err(json!({"name": {"hasAny": [1]}})).contains("list of strings"));
    assert!(err(json!({"flag": {"is": "yes"}})).contains("\"Y\" or \"N\""));
    assert!(err(json!({"day": {"after": "2024-01-02T00:00:00Z"}})).contains("YYYY-MM-DD"));
    assert!(err(json!({"at": {"after": "soon"}})).contains("ISO 8601"));
    assert!(err(json!({"name": "Dana"})).contains("must be an object"));
    assert!(err(json!({"or": []})).contains("has no filters"));
    assert!(err(json!([{}])).contains("empty filter"));
    assert!(err(json!("x")).contains("list of filters"));
}

#[test]
fn depth_and_size_are_bounded() {
    let mut deep = json!({"id": {"eq": 1}});
    for _ in 0..20 {
        deep = json!({"and": [deep]});
    }
    assert!(bound(deep).unwrap_err().contains("deeper than 16"));
    let many: Vec<Value> = (0..300).map(|i| json!({"id": {"eq": i}})).collect();
    assert!(bound(Value::Array(many)).unwrap_err().contains("more than 256"));
    let long: Vec<i64> = (0..1001).collect();
    assert!(bound(json!({"id": {"in": long}})).unwrap_err().contains("more than 1000"));
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "a",
        "ds",
        "query",
        "data",
        "filter",
        "limit",
        "offset",
        "sort",
        "projection",
        "selectAttributeCodeList",
        "_rs",
        "and",
        "or",
        "not",
        "anyOf",
        "NONEOF",
        "params",
        "fetchDistinct",
        "aggregateList",
        "groupByAttributeCodeList",
        "func",
        "code",
        "intoCode",
        "Count",
        "sum",
        "AVG",
        "max",
        "notOn",
        "today",
        "thisWeek",
        "isTrue",
        "id",
        "name",
        "amount",
        "score",
        "day",
        "at",
        "flag",
        "ok",
        "lastUpdateDate",
        "is",
        "in",
        "bn",
        "after",
        "on",
        "like",
        "hasAll",
        "gt",
        "null",
        "Things",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "Things",
            "I",
            "U",
            "D",
            "Y",
            "2024-01-02",
            "2024-01-02T03:04:05Z",
            "",
            "%",
            "x'--",
        ])
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_parser_never_panics(value in arbitrary_json()) {
        let catalog = catalog();
        let body = serde_json::to_vec(&value).unwrap();
        let _ = prepare_all(&body, &catalog);
        let wrapped = json!({"a": {"ds": "Things", "query": {"limit": 5, "filter": value.clone()}}});
        let _ = prepare_all(&serde_json::to_vec(&wrapped).unwrap(), &catalog);
        let summary = json!({"a": {"ds": "Things", "query": {"limit": 5,
            "aggregateList": value.clone(), "groupByAttributeCodeList": value.clone(),
            "params": value.clone(), "fetchDistinct": value.clone(), "sort": value.clone()}}});
        let _ = prepare_all(&serde_json::to_vec(&summary).unwrap(), &catalog);
        let aggregates = json!({"a": {"ds": "Things", "query": {"limit": 5,
            "aggregateList": [value.clone(), {"func": "Count"}], "groupByAttributeCodeList": ["flag"]}}});
        let _ = prepare_all(&serde_json::to_vec(&aggregates).unwrap(), &catalog);
        let rows = json!({"a": {"ds": "Things", "data": [value]}});
        let _ = prepare_all(&serde_json::to_vec(&rows).unwrap(), &catalog);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = prepare_all(&bytes, &catalog());
    }
}
