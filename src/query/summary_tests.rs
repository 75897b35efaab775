//! Summaries against a real SQLite file (and PostgreSQL when
//! `TESSERA_TEST_POSTGRES_URL` is set): generated filters, group-by lists
//! and sorts give exactly the groups and aggregates an in-memory model of
//! the same rows computes, and both backends write the same JSON.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

use super::bind::tests::{catalog, prepare_all};
use super::tests::{
    filter, on_postgres, on_sqlite, picked_by_model, query, rows, same_on_both_backends, seeded,
};
use crate::catalog::values::datetime;

/// Every aggregate function over every kind of value.
fn aggregates() -> Value {
    json!([
        {"func": "Count"},
        {"func": "count", "code": "amount", "intoCode": "amounts"},
        {"func": "DistinctCount", "code": "name", "intoCode": "names"},
        {"func": "Sum", "code": "id", "intoCode": "idSum"},
        {"func": "SUM", "code": "amount", "intoCode": "amountSum"},
        {"func": "sum", "code": "score", "intoCode": "scoreSum"},
        {"func": "Avg", "code": "id", "intoCode": "idAvg"},
        {"func": "avg", "code": "amount", "intoCode": "amountAvg"},
        {"func": "Min", "code": "name", "intoCode": "firstName"},
        {"func": "Max", "code": "name", "intoCode": "lastName"},
        {"func": "min", "code": "day", "intoCode": "firstDay"},
        {"func": "MAX", "code": "at", "intoCode": "lastAt"},
        {"func": "Min", "code": "score", "intoCode": "lowScore"},
        {"func": "Max", "code": "ok", "intoCode": "anyOk"},
        {"func": "Min", "code": "ok", "intoCode": "allOk"},
        {"func": "Max", "code": "amount", "intoCode": "topAmount"},
    ])
}

/// Outputs compared as numbers within rounding: the model sums doubles.
const APPROX: [&str; 4] = ["amountSum", "scoreSum", "idAvg", "amountAvg"];

/// null first, then by value: strings by code point, false before true.
fn cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap()).unwrap(),
    }
}

fn extreme(values: &[Value], max: bool) -> Value {
    let present = values.iter().filter(|v| !v.is_null());
    let found =
        if max { present.max_by(|a, b| cmp(a, b)) } else { present.min_by(|a, b| cmp(a, b)) };
    found.cloned().unwrap_or(Value::Null)
}

/// The model's summary row of `group` (rows of one group).
fn model_row(keys: &[&str], key: &[Value], group: &[&Value]) -> Value {
    let col = |code: &str| -> Vec<Value> {
        group
            .iter()
            .map(|r| match (code, &r[code]) {
                ("at", Value::String(s)) => json!(datetime(s).unwrap()),
                (_, v) => v.clone(),
            })
            .collect()
    };
    let nums = |code: &str| -> Vec<f64> { col(code).iter().filter_map(Value::as_f64).collect() };
    let sum = |code: &str| {
        let n = nums(code);
        if n.is_empty() { Value::Null } else { json!(n.iter().sum::<f64>()) }
    };
    let avg = |code: &str| {
        let n = nums(code);
        if n.is_empty() { Value::Null } else { json!(n.iter().sum::<f64>() / n.len() as f64) }
    };
    let ids: Vec<i64> = col("id").iter().filter_map(Value::as_i64).collect();
    let names: BTreeSet<String> =
        col("name").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let mut row = serde_json::Map::new();
    for (k, v) in keys.iter().zip(key) {
        row.insert((*k).to_owned(), v.clone());
    }
    let fields = [
        ("count", json!(group.len())),
        ("amounts", json!(nums("amount").len())),
        ("names", json!(names.len())),
        ("idSum", if ids.is_empty() { Value::Null } else { json!(ids.iter().sum::<i64>()) }),
        ("amountSum", sum("amount")),
        ("scoreSum", sum("score")),
        ("idAvg", avg("id")),
        ("amountAvg", avg("amount")),
        ("firstName", extreme(&col("name"), false)),
        ("lastName", extreme(&col("name"), true)),
        ("firstDay", extreme(&col("day"), false)),
        ("lastAt", extreme(&col("at"), true)),
        ("lowScore", extreme(&col("score"), false)),
        ("anyOk", extreme(&col("ok"), true)),
        ("allOk", extreme(&col("ok"), false)),
        ("topAmount", extreme(&col("amount"), true)),
    ];
    for (k, v) in fields {
        row.insert(k.to_owned(), v);
    }
    row.insert("_rs".into(), json!("Q"));
    Value::Object(row)
}

fn same(got: &Value, want: &Value) -> bool {
    let (Value::Object(g), Value::Object(w)) = (got, want) else { return false };
    g.keys().eq(w.keys())
        && w.iter().all(|(k, wv)| match (APPROX.contains(&k.as_str()), &g[k], wv) {
            (true, Value::Number(a), Value::Number(b)) => {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                (a - b).abs() <= 1e-9 * a.abs().max(1.0)
            }
            (_, Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (_, gv, wv) => gv == wv,
        })
}

fn check_summaries_against_model(url: &str, cases: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (store, catalog) = runtime.block_on(seeded(url));
    let all_rows = rows();
    let keys = prop::sample::subsequence(vec!["flag", "ok", "day", "name"], 0..=2);
    let strategy = (prop::collection::vec(filter(), 0..2), keys, any::<bool>(), 0..3u64);
    let mut runner = TestRunner::new(RunnerConfig { cases, ..RunnerConfig::default() });
    runner
        .run(&strategy, |(filters, keys, desc, offset)| {
            let q = json!({"filter": filters, "groupByAttributeCodeList": keys,
                "aggregateList": aggregates(), "sort": {"count": if desc { -1 } else { 1 }},
                "offset": offset, "limit": 1000});
            let response = runtime.block_on(query(&store, &catalog, q.clone())).unwrap();
            let picked = picked_by_model(&q, &catalog, &all_rows);
            let mut groups: Vec<(Vec<Value>, Vec<&Value>)> = Vec::new();
            for row in &picked {
                let key: Vec<Value> = keys.iter().map(|k| row[*k].clone()).collect();
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, list)) => list.push(row),
                    None => groups.push((key, vec![row])),
                }
            }
            if keys.is_empty() && groups.is_empty() {
                groups.push((vec![], vec![]));
            }
            groups.sort_by(|(ka, ra), (kb, rb)| {
                let by_count = ra.len().cmp(&rb.len());
                let by_count = if desc { by_count.reverse() } else { by_count };
                let by_key = ka.iter().zip(kb).map(|(a, b)| cmp(a, b)).find(|o| o.is_ne());
                by_count.then(by_key.unwrap_or(Ordering::Equal))
            });
            let expected: Vec<Value> = groups
                .iter()
                .skip(usize::try_from(offset).unwrap())
                .map(|(key, list)| model_row(&keys, key, list))
                .collect();
            let got = response["data"]["q"]["data"].as_array().unwrap();
            prop_assert_eq!(got.len(), expected.len(), "query {}", q);
            for (g, w) in got.iter().zip(&expected) {
                prop_assert!(same(g, w), "query {}\n got {}\nwant {}", q, g, w);
            }
            // Distinct rows over the same keys: the groups, without aggregates.
            if !keys.is_empty() {
                let projection: serde_json::Map<String, Value> =
                    keys.iter().map(|k| ((*k).to_owned(), json!(1))).collect();
                let q = json!({"filter": filters, "fetchDistinct": true,
                    "projection": projection, "limit": 1000});
                let response = runtime.block_on(query(&store, &catalog, q.clone())).unwrap();
                let mut want: Vec<Vec<Value>> = groups.iter().map(|(k, _)| k.clone()).collect();
                want.sort_by(|a, b| {
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| cmp(x, y))
                        .find(|o| o.is_ne())
                        .unwrap_or(Ordering::Equal)
                });
                let got: Vec<Vec<Value>> = response["data"]["q"]["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| keys.iter().map(|k| r[*k].clone()).collect())
                    .collect();
                prop_assert_eq!(got, want, "query {}", q);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn generated_summaries_on_sqlite_match_the_model() {
    on_sqlite(|url| check_summaries_against_model(url, 128));
}

#[test]
fn generated_summaries_on_postgres_match_the_model() {
    on_postgres(|url| check_summaries_against_model(url, 64));
}

#[test]
fn both_backends_write_the_same_summaries() {
    same_on_both_backends(&[
        json!({"aggregateList": aggregates(), "limit": 10}),
        json!({"aggregateList": aggregates(), "groupByAttributeCodeList": ["flag", "day"], "limit": 100}),
        json!({"aggregateList": aggregates(), "groupByAttributeCodeList": ["name"],
            "sort": {"amountAvg": -1, "scoreSum": 1}, "limit": 5, "offset": 2}),
        json!({"aggregateList": aggregates(), "groupByAttributeCodeList": ["at"], "limit": 100}),
        json!({"groupByAttributeCodeList": ["amount", "score"], "limit": 100}),
        json!({"fetchDistinct": true, "projection": {"flag": 1, "at": 1, "amount": 1}, "limit": 100}),
    ]);
}

/// A Sum of whole numbers beyond 64 bits is the client's 400 on both
/// backends, never a 5xx; an Avg of the same numbers is fine.
async fn sum_beyond_64_bits_is_refused(url: &str) {
    let (store, catalog) = seeded(url).await;
    let big = json!({"big": {"ds": "Things", "data": [
        {"_rs": "I", "id": i64::MAX}, {"_rs": "I", "id": i64::MAX - 1}]}});
    let plan = prepare_all(&serde_json::to_vec(&big).unwrap(), &catalog).unwrap();
    let stamp = super::Stamp {
        user: "t".into(),
        org: "o".into(),
        session: "s".into(),
        now: "2024-05-01T00:00:00.000000Z".into(),
    };
    super::execute::execute(&store, &plan, &stamp).await.unwrap();
    let sum = json!({"aggregateList": [{"func": "Sum", "code": "id"}], "limit": 1});
    let err = query(&store, &catalog, sum).await.unwrap_err();
    assert!(err.starts_with("Invalid(") && err.contains("64-bit"), "{err}");
    let avg = json!({"aggregateList": [{"func": "Avg", "code": "id"}], "limit": 1});
    let v = query(&store, &catalog, avg).await.unwrap();
    // (2 × (2^63 - 1.5) + 780) / 42, to 15 significant digits on both.
    assert_eq!(v["data"]["q"]["data"][0]["id"].to_string(), "439208192231180000");
}

/// Runs an async check to its end on a runtime of its own.
fn block_on(check: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(check);
}

#[test]
fn sum_beyond_64_bits_is_a_400_on_sqlite() {
    on_sqlite(|url| block_on(sum_beyond_64_bits_is_refused(url)));
}

#[test]
fn sum_beyond_64_bits_is_a_400_on_postgres() {
    on_postgres(|url| block_on(sum_beyond_64_bits_is_refused(url)));
}

#[test]
fn the_catalog_fixture_has_what_the_model_reads() {
    let catalog = catalog();
    let ds = catalog.datasource("Things").unwrap();
    for code in ["id", "name", "amount", "score", "day", "at", "flag", "ok"] {
        assert!(ds.index_of(code).is_some(), "{code}");
    }
}
