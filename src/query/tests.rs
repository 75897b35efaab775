//! The query engine against a real SQLite file (and PostgreSQL when
//! `TESSERA_TEST_POSTGRES_URL` is set): generated filters return exactly
//! the rows an in-memory model of the same filter picks.

use std::cmp::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

use super::Stamp;
use super::bind::tests::{catalog, prepare_all};
use super::bind::{Cmp, Filter, Match, Test};
use super::execute::execute;
use crate::catalog::values::{Scalar, datetime};
use crate::catalog::{AttrType, Catalog, sync_tables};
use crate::store::Store;

/// Rows full of awkward values: NULLs, wildcards, quotes, case, Unicode.
pub(super) fn rows() -> Vec<Value> {
    let names = [
        json!("Dana"),
        json!("dana"),
        json!("DANA"),
        json!("a%b"),
        json!("a_b"),
        json!("a\\b"),
        json!("O'Brien"),
        json!("x*y?[z]"),
        json!(""),
        Value::Null,
        json!("Ünïcode é"),
        json!("'; DROP TABLE things; --"),
        json!("ab"),
        json!("' OR '1'='1"),
    ];
    let amounts = [json!(0), json!(1.5), json!(10.1), json!(-3), json!(100), Value::Null];
    let scores = [json!(0.1), json!(2.5), json!(-1), Value::Null, json!(1e10)];
    let days = [json!("2024-01-01"), json!("2024-01-02"), json!("2023-12-31"), Value::Null];
    let ats = [
        json!("2024-01-01T00:00:00Z"),
        json!("2024-01-01T23:59:59.999999Z"),
        json!("2024-01-02T12:30:00+02:00"),
        json!("2023-12-31T23:00:00-01:00"),
        Value::Null,
    ];
    let flags = [json!("Y"), json!("N"), Value::Null];
    let oks = [json!(true), json!(false), Value::Null];
    (0..40)
        .map(|i: usize| {
            json!({
                "_rs": "I",
                "id": i,
                "name": names[i % names.len()],
                "amount": amounts[i % amounts.len()],
                "score": scores[(i / 2) % scores.len()],
                "day": days[(i / 3) % days.len()],
                "at": ats[(i * 7) % ats.len()],
                "flag": flags[(i / 5) % flags.len()],
                "ok": oks[(i * 3 + 1) % oks.len()],
            })
        })
        .collect()
}

pub(super) async fn seeded(url: &str) -> (Store, Catalog) {
    let store = Store::open(url).await.unwrap();
    let catalog = catalog();
    sync_tables(&store, &catalog).await.unwrap();
    let body = json!({"seed": {"ds": "Things", "data": rows()}});
    let plan = prepare_all(&serde_json::to_vec(&body).unwrap(), &catalog).unwrap();
    let stamp = Stamp {
        user: "tester".into(),
        org: "o".into(),
        session: "s".into(),
        now: "2024-05-01T00:00:00.000000Z".into(),
    };
    execute(&store, &plan, &stamp).await.unwrap();
    (store, catalog)
}

pub(super) async fn query(store: &Store, catalog: &Catalog, q: Value) -> Result<Value, String> {
    let body = json!({"q": {"ds": "Things", "query": q}});
    let plan =
        prepare_all(&serde_json::to_vec(&body).unwrap(), catalog).map_err(|e| e.to_string())?;
    let stamp = Stamp {
        user: "tester".into(),
        org: "o".into(),
        session: "s".into(),
        now: "2024-05-01T00:00:00.000000Z".into(),
    };
    let out = execute(store, &plan, &stamp).await.map_err(|e| format!("{e:?}"))?;
    Ok(serde_json::from_slice(&out).unwrap())
}

fn ids(response: &Value) -> Vec<i64> {
    response["data"]["q"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

// ---- the in-memory model -----------------------------------------------------

const CODES: [&str; 8] = ["id", "name", "amount", "score", "day", "at", "flag", "ok"];

fn order(kind: AttrType, stored: &Value, s: &Scalar) -> Option<Ordering> {
    match s {
        Scalar::Text(t) => Some(stored.as_str()?.cmp(t)),
        Scalar::Int(_) | Scalar::Num(_) | Scalar::Double(_) => {
            let want = match s {
                Scalar::Int(i) => *i as f64,
                Scalar::Num(n) => n.parse().ok()?,
                Scalar::Double(f) => *f,
                _ => return None,
            };
            stored.as_f64()?.partial_cmp(&want)
        }
        Scalar::Date(d) => Some(stored.as_str()?.cmp(d.as_str())),
        Scalar::DateTime(t) if kind == AttrType::DateTime => {
            Some(datetime(stored.as_str()?)?.cmp(t))
        }
        Scalar::DateTime(_) => None,
        Scalar::Bool(b) => Some(stored.as_bool()?.cmp(b)),
    }
}

fn test_row(kind: AttrType, value: &Value, test: &Test) -> bool {
    if value.is_null() {
        return matches!(test, Test::Null | Test::Blank);
    }
    let ord = |s: &Scalar| order(kind, value, s);
    match test {
        Test::Null => false,
        Test::NotNull => true,
        Test::Blank => value.as_str() == Some(""),
        Test::NotBlank => value.as_str() != Some(""),
        Test::Cmp(cmp, s) => ord(s).is_some_and(|o| match cmp {
            Cmp::Eq => o.is_eq(),
            Cmp::Ne => o.is_ne(),
            Cmp::Gt => o.is_gt(),
            Cmp::Gte => o.is_ge(),
            Cmp::Lt => o.is_lt(),
            Cmp::Lte => o.is_le(),
        }),
        Test::Between(low, high) => {
            ord(low).is_some_and(Ordering::is_ge) && ord(high).is_some_and(Ordering::is_le)
        }
        Test::In(list) => list.iter().any(|s| ord(s) == Some(Ordering::Equal)),
        Test::NotIn(list) => list.iter().all(|s| ord(s).is_some_and(Ordering::is_ne)),
        Test::Match { how, values, all, negate } => {
            let text = value.as_str().unwrap_or_default();
            let hit = |v: &String| match how {
                Match::Contains => text.contains(v.as_str()),
                Match::StartsWith => text.starts_with(v.as_str()),
                Match::EndsWith => text.ends_with(v.as_str()),
            };
            let found = if *all { values.iter().all(hit) } else { values.iter().any(hit) };
            found != *negate
        }
    }
}

pub(super) fn eval(filter: &Filter, row: &Value, catalog: &Catalog) -> bool {
    let ds = catalog.datasource("Things").unwrap();
    match filter {
        Filter::And(list) => list.iter().all(|f| eval(f, row, catalog)),
        Filter::Or(list) => list.iter().any(|f| eval(f, row, catalog)),
        Filter::Not(list) => !list.iter().any(|f| eval(f, row, catalog)),
        Filter::Leaf { attr, test } => {
            let a = &ds.attributes[*attr];
            test_row(a.kind, &row[&a.code], test)
        }
    }
}

// ---- generated filters -----------------------------------------------------------

fn leaf() -> impl Strategy<Value = Value> {
    let text_values = prop::sample::select(vec![
        "Dana",
        "dana",
        "a",
        "A",
        "%",
        "_",
        "\\",
        "'",
        "*",
        "?",
        "[",
        "b",
        "",
        "é",
        "--",
        "' OR '1'='1",
    ]);
    let text_ops = prop::sample::select(vec!["is", "not", "like", "nct", "sw", "ew"]);
    let list_ops = prop::sample::select(vec!["in", "nin", "hasAll", "hasAny", "notAny"]);
    let null_ops = prop::sample::select(vec!["empty", "notEmpty", "null", "notNull"]);
    let num_attrs = prop::sample::select(vec!["id", "amount", "score"]);
    let num_ops = prop::sample::select(vec!["eq", "ne", "gt", "gte", "lt", "lte"]);
    let nums = prop::sample::select(vec![
        json!(0),
        json!(1.5),
        json!(10.1),
        json!(-3),
        json!(5),
        json!(2.5),
        json!(0.1),
        json!(20),
    ]);
    let days = prop::sample::select(vec!["2024-01-01", "2024-01-02", "2023-12-31", "2024-01-03"]);
    let instants = prop::sample::select(vec![
        "2024-01-01",
        "2024-01-02",
        "2023-12-31",
        "2024-01-01T00:00:00Z",
        "2024-01-02T10:30:00Z",
        "2024-01-01T23:59:59.999999Z",
        "2024-01-02T12:30:00+02:00",
    ]);
    let date_ops =
        prop::sample::select(vec!["after", "before", "on", "onOrAfter", "onOrBefore", "eq", "ne"]);
    let attrs = prop::sample::select(CODES.to_vec());
    let days_again = days.clone();
    let instants_again = instants.clone();
    prop_oneof![
        (text_ops, text_values.clone()).prop_map(|(op, v)| json!({"name": {op: v}})),
        (list_ops, prop::collection::vec(text_values, 1..3))
            .prop_map(|(op, v)| json!({"name": {op: v}})),
        (attrs, null_ops).prop_map(|(a, op)| json!({a: {op: 1}})),
        (num_attrs.clone(), num_ops, nums.clone()).prop_map(|(a, op, v)| {
            let v = if a == "id" { json!(v.as_f64().unwrap().round() as i64) } else { v };
            json!({a: {op: v}})
        }),
        (num_attrs, nums.clone(), nums).prop_map(|(a, x, y)| {
            let int =
                |v: Value| if a == "id" { json!(v.as_f64().unwrap().round() as i64) } else { v };
            json!({a: {"bn": [int(x), int(y)]}})
        }),
        (date_ops.clone(), days.clone()).prop_map(|(op, v)| json!({"day": {op: v}})),
        (days.clone(), days).prop_map(|(x, y)| json!({"day": {"bn": [x, y]}})),
        (date_ops, instants.clone()).prop_map(|(op, v)| json!({"at": {op: v}})),
        (instants.clone(), instants).prop_map(|(x, y)| json!({"at": {"bn": [x, y]}})),
        prop::sample::select(vec!["is", "not"])
            .prop_flat_map(|op| prop::sample::select(vec!["Y", "N"])
                .prop_map(move |v| json!({"flag": {op: v}}))),
        (prop::sample::select(vec!["is", "not"]), any::<bool>())
            .prop_map(|(op, v)| json!({"ok": {op: v}})),
        (prop::sample::select(vec!["flag", "ok"]), prop::sample::select(vec!["isTrue", "isFalse"]))
            .prop_map(|(a, op)| json!({a: {op: true}})),
        prop::sample::select(vec!["day", "at"]).prop_flat_map(move |a| {
            let relative = prop::sample::select(vec![
                "today",
                "yesterday",
                "tomorrow",
                "last7Days",
                "next7Days",
                "thisWeek",
                "thisMonth",
                "thisYear",
                "inThePast",
                "inTheFuture",
            ]);
            relative.prop_map(move |op| json!({a: {op: true}}))
        }),
        days_again.prop_map(|v| json!({"day": {"notOn": v}})),
        instants_again.prop_map(|v| json!({"at": {"notOn": v}})),
    ]
}

pub(super) fn filter() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        let groups = vec!["and", "or", "not", "allOf", "ANYOF", "noneOf"];
        (prop::sample::select(groups), prop::collection::vec(inner, 1..4))
            .prop_map(|(group, list)| json!({group: list}))
    })
}

/// Runs `check` with the URL of a fresh SQLite file.
pub(super) fn on_sqlite(check: impl FnOnce(&str)) {
    let dir = tempfile::tempdir().unwrap();
    check(&format!("sqlite://{}", dir.path().join("q.db").display()));
}

/// Runs `check` with the URL of a fresh PostgreSQL database (dropped after),
/// or says it was skipped when `TESSERA_TEST_POSTGRES_URL` is not set.
pub(super) fn on_postgres(check: impl FnOnce(&str)) {
    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        crate::testing::skip("set TESSERA_TEST_POSTGRES_URL to run the PostgreSQL variant");
        return;
    };
    let name = format!("tessera_query_{}", uuid::Uuid::new_v4().simple());
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
    let ddl = |sql: String| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::connect(&admin).await.unwrap();
            store.execute_ddl(&sql).await.unwrap();
            store.close().await;
        });
    };
    ddl(format!("CREATE DATABASE {name}"));
    check(&format!("{base}/{name}"));
    ddl(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

/// Asserts that each query of Things answers the same JSON on both backends
/// (`queryElapsed` aside); needs PostgreSQL.
pub(super) fn same_on_both_backends(queries: &[Value]) {
    on_postgres(|url| {
        on_sqlite(|sqlite_url| {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (pg, catalog) = seeded(url).await;
                let (lite, _) = seeded(sqlite_url).await;
                for q in queries {
                    let mut a = query(&pg, &catalog, q.clone()).await.unwrap();
                    let mut b = query(&lite, &catalog, q.clone()).await.unwrap();
                    a["data"]["q"]["queryElapsed"] = json!(0);
                    b["data"]["q"]["queryElapsed"] = json!(0);
                    assert_eq!(a.to_string(), b.to_string(), "query {q}");
                }
            });
        });
    });
}

/// The rows of `all` that the model says the filter of query `q` picks.
pub(super) fn picked_by_model<'a>(
    q: &Value,
    catalog: &Catalog,
    all: &'a [Value],
) -> Vec<&'a Value> {
    let body = json!({"q": {"ds": "Things", "query": q}});
    let plan = prepare_all(&serde_json::to_vec(&body).unwrap(), catalog).unwrap();
    let super::plan::Planned::Query(bound) = &plan.aliases[0].action else { unreachable!() };
    all.iter().filter(|row| bound.filter.iter().all(|f| eval(f, row, catalog))).collect()
}

fn check_filters_against_model(url: &str, cases: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (store, catalog) = runtime.block_on(seeded(url));
    let all_rows = rows();
    let mut runner = TestRunner::new(RunnerConfig { cases, ..RunnerConfig::default() });
    runner
        .run(&prop::collection::vec(filter(), 1..3), |filters| {
            let q = json!({"filter": filters, "projection": {"id": 1}, "sort": {"id": 1}, "limit": 1000});
            let response = runtime.block_on(query(&store, &catalog, q.clone())).unwrap();
            let expected: Vec<i64> = picked_by_model(&q, &catalog, &all_rows)
                .iter()
                .map(|row| row["id"].as_i64().unwrap())
                .collect();
            prop_assert_eq!(ids(&response), expected, "filter {}", q["filter"]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn generated_filters_on_sqlite_match_the_model() {
    on_sqlite(|url| check_filters_against_model(url, 256));
}

#[test]
fn generated_filters_on_postgres_match_the_model() {
    on_postgres(|url| check_filters_against_model(url, 128));
}

#[test]
fn both_backends_render_the_same_json() {
    let sorts = [
        json!({"id": 1}),
        json!({"name": 1}),
        json!({"score": -1, "at": 1}),
        json!({"day": 1, "ok": -1, "amount": 1}),
    ];
    let queries: Vec<Value> =
        sorts.into_iter().map(|sort| json!({"sort": sort, "limit": 1000})).collect();
    same_on_both_backends(&queries);
}

#[tokio::test]
async fn values_round_trip_and_sort_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let (store, catalog) = seeded(&url).await;
    let r =
        query(&store, &catalog, json!({"filter": [{"id": {"eq": 2}}], "limit": 1})).await.unwrap();
    let row = &r["data"]["q"]["data"][0];
    assert_eq!(row["name"], "DANA");
    assert_eq!(row["amount"].to_string(), "10.1");
    assert_eq!(row["day"], "2024-01-01");
    assert_eq!(row["_rs"], "Q");
    assert_eq!(row["creationDate"], "2024-05-01T00:00:00.000000Z");
    let r = query(
        &store,
        &catalog,
        json!({"sort": {"score": -1, "name": 1}, "limit": 3, "offset": 1, "projection": {"id": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(r["data"]["q"]["rowsFetched"], 3);
    let r =
        query(&store, &catalog, json!({"filter": {"id": {"eq": 13}}, "limit": 1})).await.unwrap();
    assert_eq!(r["data"]["q"]["data"][0]["name"], "' OR '1'='1");
}

/// Binds a list of filters as written, for the model.
fn bound_list(written: &Value, catalog: &Catalog) -> Vec<Filter> {
    let raw = super::filter::parse_list(written, 1, &mut super::filter::Budget::default()).unwrap();
    super::bind::bind(&raw, catalog.datasource("Things").unwrap(), 0).unwrap()
}

#[test]
fn grants_and_filters_return_the_rows_the_model_picks() {
    use crate::config::{Config, GrantConfig, GrantRules, Operation};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let (store, _) = runtime.block_on(seeded(&url));
    let all_rows = rows();
    let strategy = (
        prop::collection::vec(filter(), 1..3),
        prop::collection::vec(filter(), 1..3),
        prop::collection::vec(filter(), 0..3),
    );
    let mut runner = TestRunner::new(RunnerConfig { cases: 128, ..RunnerConfig::default() });
    runner
        .run(&strategy, |(grant_a, grant_b, asked)| {
            let mut config = Config::parse(crate::catalog::fixtures::THINGS).unwrap();
            for (role, written) in [("a", &grant_a), ("b", &grant_b)] {
                let rules = GrantRules {
                    operations: vec![Operation::Query],
                    filter: Some(json!(written)),
                    attributes: None,
                };
                config
                    .roles
                    .insert(role.into(), [("Things".into(), GrantConfig::Rules(rules))].into());
            }
            let catalog = Catalog::from_config(&config).unwrap();
            let principal = crate::auth::Principal {
                roles: vec!["a".into(), "b".into()],
                ..super::bind::tests::owner()
            };
            let q =
                json!({"filter": asked, "projection": {"id": 1}, "sort": {"id": 1}, "limit": 1000});
            let body = serde_json::to_vec(&json!({"q": {"ds": "Things", "query": q}})).unwrap();
            let plan = super::prepare(&catalog, &principal, &body, 1000, 0).unwrap();
            let stamp = Stamp {
                user: "t".into(),
                org: "o".into(),
                session: "s".into(),
                now: "2024-05-01T00:00:00.000000Z".into(),
            };
            let out = runtime.block_on(execute(&store, &plan, &stamp)).unwrap();
            let response: Value = serde_json::from_slice(&out).unwrap();
            let (a, b) =
                (bound_list(&json!(grant_a), &catalog), bound_list(&json!(grant_b), &catalog));
            let user = bound_list(&json!(asked), &catalog);
            let passes = |list: &[Filter], row: &Value| list.iter().all(|f| eval(f, row, &catalog));
            let expected: Vec<i64> = all_rows
                .iter()
                .filter(|row| (passes(&a, row) || passes(&b, row)) && passes(&user, row))
                .map(|row| row["id"].as_i64().unwrap())
                .collect();
            prop_assert_eq!(
                ids(&response),
                expected,
                "grants {:?} {:?}, filter {:?}",
                grant_a,
                grant_b,
                asked
            );
            Ok(())
        })
        .unwrap();
}
