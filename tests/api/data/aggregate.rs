//! `POST /v1/api` summaries and the rest of design §1.4's query language,
//! as a client sees them on both backends: aggregates, group-by, sort and
//! paging over groups, `fetchDistinct`, `params`, the other group
//! spellings, `notOn`, `isTrue`/`isFalse`, relative dates on the server's
//! clock, and a 400 naming the member for every bad combination.

use std::time::Duration;

use chrono::{Datelike, NaiveDate};

use super::*;

fn q(query: Value) -> Value {
    json!({"q": {"ds": "Employees", "query": query}})
}

/// The rows of alias `q`, each as its JSON text (keys in response order).
async fn summary(c: &Caller<'_>, query: Value) -> Vec<String> {
    rows(&c.ok(&q(query)).await, "q").iter().map(Value::to_string).collect()
}

/// The 400 message of a bad query.
async fn refused(c: &Caller<'_>, query: Value) -> String {
    assert_error(c.call(&q(query)).await, 400, "Invalid Request").await.message
}

both_backends!(aggregates_grouped_by_one_attribute_are_typed_and_exact, config = catalog);
async fn aggregates_grouped_by_one_attribute_are_typed_and_exact(app: TestApp) {
    let c = seeded(&app).await;
    let got = summary(
        &c,
        json!({
            "groupByAttributeCodeList": ["active"],
            "aggregateList": [
                {"func": "Count"},
                {"func": "sum", "code": "salary"},
                {"func": "AVG", "code": "rating", "intoCode": "avgRating"},
                {"func": "Sum", "code": "empId", "intoCode": "idSum"},
                {"func": "Min", "code": "hired", "intoCode": "firstHired"},
                {"func": "max", "code": "seen", "intoCode": "lastSeen"},
                {"func": "DistinctCount", "code": "remote", "intoCode": "remotes"},
            ],
            "sort": {"count": -1},
            "limit": 10,
        }),
    )
    .await;
    assert_eq!(
        got,
        [
            r#"{"active":"Y","count":6,"salary":12251.75,"avgRating":2.6875,"idSum":30,"firstHired":"2019-03-10","lastSeen":"2024-01-03T00:00:00.000000Z","remotes":2,"_rs":"Q"}"#,
            r#"{"active":"N","count":3,"salary":4102.5,"avgRating":2,"idSum":15,"firstHired":"2020-01-14","lastSeen":"2024-01-02T18:30:00.000000Z","remotes":2,"_rs":"Q"}"#,
        ]
    );
}

both_backends!(aggregates_without_groups_give_one_row, config = catalog);
async fn aggregates_without_groups_give_one_row(app: TestApp) {
    let c = seeded(&app).await;
    let list = json!([
        {"func": "count"},
        {"func": "Count", "code": "salary", "intoCode": "salaries"},
        {"func": "Max", "code": "name", "intoCode": "last"},
        {"func": "MIN", "code": "name", "intoCode": "first"},
        {"func": "Min", "code": "remote", "intoCode": "allRemote"},
        {"func": "Max", "code": "remote", "intoCode": "anyRemote"},
        {"func": "Max", "code": "rating"},
        {"func": "Avg", "code": "salary", "intoCode": "mean"},
    ]);
    let got = summary(&c, json!({"aggregateList": list, "limit": 1})).await;
    assert_eq!(
        got,
        [
            r#"{"count":9,"salaries":8,"last":"dana","first":"","allRemote":false,"anyRemote":true,"rating":5,"mean":2044.28125,"_rs":"Q"}"#
        ]
    );
    // No row picked: counts are 0, the rest null.
    let none = json!({"aggregateList": list, "filter": {"name": {"is": "nobody"}}, "limit": 1});
    assert_eq!(
        summary(&c, none).await,
        [
            r#"{"count":0,"salaries":0,"last":null,"first":null,"allRemote":null,"anyRemote":null,"rating":null,"mean":null,"_rs":"Q"}"#
        ]
    );
    // The one row is a page like any other.
    let v = c.ok(&q(json!({"aggregateList": [{"func": "Count"}], "offset": 1, "limit": 5}))).await;
    assert_eq!((rows(&v, "q").len(), &v["data"]["q"]["rowsFetched"]), (0, &json!(0)));
    // The filter applies before aggregation.
    let filtered = json!({"aggregateList": [{"func": "Count"}, {"func": "Sum", "code": "salary"}],
        "filter": [{"salary": {"gt": 100}}], "limit": 1});
    assert_eq!(summary(&c, filtered).await, [r#"{"count":4,"salary":16251.25,"_rs":"Q"}"#]);
}

both_backends!(groups_sort_by_an_into_code_and_page, config = catalog);
async fn groups_sort_by_an_into_code_and_page(app: TestApp) {
    let c = seeded(&app).await;
    let count_by_hired = |sort: Value, offset: u64, limit: u32| {
        json!({"groupByAttributeCodeList": ["hired"], "aggregateList": [{"func": "Count", "intoCode": "n"}],
            "sort": sort, "offset": offset, "limit": limit})
    };
    let got = summary(&c, count_by_hired(json!({"n": -1, "hired": 1}), 1, 3)).await;
    assert_eq!(
        got,
        [
            r#"{"hired":"2020-01-15","n":2,"_rs":"Q"}"#,
            r#"{"hired":"2019-03-10","n":1,"_rs":"Q"}"#,
            r#"{"hired":"2020-01-14","n":1,"_rs":"Q"}"#,
        ]
    );
    // Ties are broken by the group attributes, NULL first.
    let got = summary(&c, count_by_hired(json!({"n": 1}), 0, 100)).await;
    let hired: Vec<String> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).unwrap()["hired"].to_string())
        .collect();
    assert_eq!(
        hired,
        [
            "\"2019-03-10\"",
            "\"2020-01-14\"",
            "\"2020-01-16\"",
            "\"2021-06-01\"",
            "\"2022-02-28\"",
            "null",
            "\"2020-01-15\""
        ]
    );
    // Group-by alone lists the groups.
    let got =
        summary(&c, json!({"groupByAttributeCodeList": ["remote", "active"], "limit": 100})).await;
    assert_eq!(
        got,
        [
            r#"{"remote":null,"active":"Y","_rs":"Q"}"#,
            r#"{"remote":false,"active":"N","_rs":"Q"}"#,
            r#"{"remote":false,"active":"Y","_rs":"Q"}"#,
            r#"{"remote":true,"active":"N","_rs":"Q"}"#,
            r#"{"remote":true,"active":"Y","_rs":"Q"}"#,
        ]
    );
}

both_backends!(fetch_distinct_is_distinct_over_the_projection, config = catalog);
async fn fetch_distinct_is_distinct_over_the_projection(app: TestApp) {
    let c = seeded(&app).await;
    let got = summary(
        &c,
        json!({"fetchDistinct": true, "projection": {"active": 1, "remote": 1}, "sort": {"remote": -1}, "limit": 100}),
    )
    .await;
    assert_eq!(
        got,
        [
            r#"{"active":"N","remote":true,"_rs":"Q"}"#,
            r#"{"active":"Y","remote":true,"_rs":"Q"}"#,
            r#"{"active":"N","remote":false,"_rs":"Q"}"#,
            r#"{"active":"Y","remote":false,"_rs":"Q"}"#,
            r#"{"active":"Y","remote":null,"_rs":"Q"}"#,
        ]
    );
    let page = json!({"fetchDistinct": true, "selectAttributeCodeList": ["hired"], "offset": 5, "limit": 100});
    assert_eq!(
        summary(&c, page).await,
        [r#"{"hired":"2021-06-01","_rs":"Q"}"#, r#"{"hired":"2022-02-28","_rs":"Q"}"#]
    );
    // Every attribute, the key among them: every row.
    let v = c.ok(&q(json!({"fetchDistinct": true, "limit": 100}))).await;
    assert_eq!(v["data"]["q"]["rowsFetched"], 9);
    let v =
        c.ok(&q(json!({"fetchDistinct": false, "projection": {"active": 1}, "limit": 100}))).await;
    assert_eq!(v["data"]["q"]["rowsFetched"], 9);
}

both_backends!(params_are_equality_filters_anded_with_filter, config = catalog);
async fn params_are_equality_filters_anded_with_filter(app: TestApp) {
    let c = seeded(&app).await;
    let names = |v: &Value| -> Vec<String> {
        rows(v, "q").iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    };
    let ask = |params: Value, filter: Value| {
        q(
            json!({"params": params, "filter": filter, "projection": {"name": 1}, "sort": {"empId": 1}, "limit": 100}),
        )
    };
    let v = c.ok(&ask(json!({"active": "N"}), json!([{"salary": {"gt": 50}}]))).await;
    assert_eq!(names(&v), ["dana", "a_b"]);
    let v = c.ok(&ask(json!({"hired": null}), json!([]))).await;
    assert_eq!(names(&v), ["50% off", ""]);
    let v = c.ok(&ask(json!({"hired": "2020-01-15", "remote": true}), Value::Null)).await;
    assert_eq!(names(&v), ["Dana"]);
    let v =
        c.ok(&ask(json!({"seen": "2024-01-01T11:00:00+02:00", "salary": 5000}), json!([]))).await;
    assert_eq!(names(&v), ["Dana"]);
    let counted =
        json!({"params": {"active": "N"}, "aggregateList": [{"func": "Count"}], "limit": 1});
    assert_eq!(summary(&c, counted).await, [r#"{"count":3,"_rs":"Q"}"#]);
}

both_backends!(every_bad_combination_is_a_400_naming_the_member, config = catalog);
async fn every_bad_combination_is_a_400_naming_the_member(app: TestApp) {
    let c = seeded(&app).await;
    let agg = |list: Value| json!({"aggregateList": list, "limit": 10});
    let cases = [
        (
            agg(json!([{"func": "Sum", "code": "name"}])),
            "Alias q: \"aggregateList\", item 1: Sum of name (String) needs a number attribute",
        ),
        (
            agg(json!([{"func": "Count"}, {"func": "avg", "code": "hired"}])),
            "\"aggregateList\", item 2: Avg of hired (Date) needs a number attribute",
        ),
        (agg(json!([{"func": "Sum", "code": "remote"}])), "Sum of remote (Boolean)"),
        (
            agg(json!([{"func": "Sum", "code": "salary"}, {"func": "Max", "code": "salary"}])),
            "item 2: the output name \"salary\" is already that of item 1",
        ),
        (
            agg(json!([{"func": "Count"}, {"func": "count"}])),
            "item 2: the output name \"count\" is already that of item 1",
        ),
        (
            agg(
                json!([{"func": "Count", "intoCode": "n"}, {"func": "Max", "code": "name", "intoCode": "n"}]),
            ),
            "item 2: the output name \"n\"",
        ),
        (
            json!({"groupByAttributeCodeList": ["active"], "aggregateList": [{"func": "Count", "intoCode": "active"}], "limit": 1}),
            "item 1: the output name \"active\" is also a groupByAttributeCodeList attribute",
        ),
        (
            json!({"groupByAttributeCodeList": ["active"], "aggregateList": [{"func": "Max", "code": "active"}], "limit": 1}),
            "item 1: the output name \"active\" is also a groupByAttributeCodeList attribute",
        ),
        (
            agg(json!([{"func": "Median", "code": "salary"}])),
            "item 1: unknown func \"Median\"; known: Count, DistinctCount, Sum, Avg, Min, Max",
        ),
        (agg(json!([{"func": "DistinctCount"}])), "item 1: DistinctCount needs \"code\""),
        (
            agg(json!([{"func": "Max", "code": "bogus"}])),
            "item 1: aggregateList: unknown attribute \"bogus\"",
        ),
        (agg(json!([{"func": "Count", "into": "n"}])), "item 1: unknown key \"into\""),
        (agg(json!({"func": "Count"})), "\"aggregateList\" must be a list"),
        (
            json!({"groupByAttributeCodeList": ["bogus"], "limit": 1}),
            "groupByAttributeCodeList: unknown attribute \"bogus\"",
        ),
        (
            json!({"groupByAttributeCodeList": ["name", "name"], "limit": 1}),
            "groupByAttributeCodeList: name is named twice",
        ),
        (
            json!({"groupByAttributeCodeList": ["active"], "sort": {"salary": 1}, "limit": 1}),
            "sort: salary is neither a groupByAttributeCodeList attribute nor an intoCode",
        ),
        (
            json!({"aggregateList": [{"func": "Count"}], "projection": {"name": 1}, "limit": 1}),
            "leave projection",
        ),
        (
            json!({"fetchDistinct": true, "projection": {"name": 1}, "sort": {"salary": 1}, "limit": 1}),
            "sort: salary is not projected",
        ),
        (json!({"fetchDistinct": 1, "limit": 1}), "\"fetchDistinct\" must be true or false"),
        (json!({"params": {"bogus": 1}, "limit": 1}), "params: unknown attribute \"bogus\""),
        (
            json!({"params": {"salary": "lots"}, "limit": 1}),
            "params: filter on salary (Decimal), operator eq: expected a number",
        ),
        (json!({"params": {"name": ["a", "b"]}, "limit": 1}), "\"params\": name must be one value"),
        (
            json!({"filter": {"name": {"isTrue": true}}, "limit": 1}),
            "operator isTrue: does not apply to a String attribute",
        ),
        (
            json!({"filter": {"salary": {"today": true}}, "limit": 1}),
            "operator today: does not apply to a Decimal attribute",
        ),
        (
            json!({"filter": {"hired": {"notOn": "soon"}}, "limit": 1}),
            "filter on hired (Date), operator notOn: expected a date",
        ),
    ];
    for (query, wanted) in cases {
        let message = refused(&c, query.clone()).await;
        assert!(message.contains(wanted), "{query}: {message}");
    }
    assert_eq!(c.all().await.len(), 9, "the table is intact");
}

// ---- the other spellings of groups, notOn, isTrue / isFalse -----------------------

filter_test!(group_any_of_in_any_case_is_or, [{"ANYOF": [{"name": {"is": "Dana"}}, {"salary": {"lt": 2}}]}],
    ["Dana", "' OR '1'='1", ""]);
filter_test!(group_all_of_is_and, [{"allOf": [{"active": {"is": "Y"}}, {"salary": {"gte": 5000}}]}], ["Dana", "O'Brien"]);
filter_test!(group_none_of_is_not, [{"NoneOf": [{"remote": {"is": true}}]}], ["dana", "50% off", "a_b", "' OR '1'='1", ""]);
filter_test!(date_not_on_skips_nulls, {"hired": {"notOn": "2020-01-15"}},
    ["dana", "O'Brien", "back\\slash", "' OR '1'='1", "Robert'); DROP TABLE employees;--"]);
filter_test!(datetime_not_on_a_day, {"seen": {"notOn": "2024-01-01"}},
    ["dana", "O'Brien", "' OR '1'='1", "Robert'); DROP TABLE employees;--"]);
filter_test!(yn_is_true, {"active": {"isTrue": true}}, ["Dana", "O'Brien", "50% off", "back\\slash", "' OR '1'='1", ""]);
filter_test!(yn_is_false, {"active": {"isFalse": true}}, ["dana", "a_b", "Robert'); DROP TABLE employees;--"]);
filter_test!(boolean_is_true, {"remote": {"isTrue": true}}, ["Dana", "O'Brien", "back\\slash", "Robert'); DROP TABLE employees;--"]);
filter_test!(boolean_is_false_skips_nulls, {"remote": {"isFalse": true}}, ["dana", "a_b", "' OR '1'='1"]);

// ---- relative dates -------------------------------------------------------------

const DAY: i64 = 86_400_000_000;
const RELATIVE: [&str; 10] = [
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
];

/// Whether day `d` is in relative operator `op` at `today` (the reference).
fn in_span(op: &str, d: NaiveDate, today: NaiveDate) -> bool {
    let off = (d - today).num_days();
    let monday = today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
    match op {
        "today" => off == 0,
        "yesterday" => off == -1,
        "tomorrow" => off == 1,
        "last7Days" => (-6..=0).contains(&off),
        "next7Days" => (0..=6).contains(&off),
        "thisWeek" => (0..7).contains(&(d - monday).num_days()),
        "thisMonth" => (d.year(), d.month()) == (today.year(), today.month()),
        "thisYear" => d.year() == today.year(),
        "inThePast" => off < 0,
        _ => off > 0,
    }
}

fn micros_to_iso(at: i64) -> String {
    tessera::clock::iso8601(at)
}

/// Moves the server's clock forward to the next noon UTC (so no midnight
/// passes while a test runs), freshens the key ring, and signs in anew.
async fn at_noon<'a>(app: &'a TestApp, roles: &[&str], name: &str) -> Caller<'a> {
    let to_noon = (DAY / 2 - app.clock.now().rem_euclid(DAY)).rem_euclid(DAY);
    app.clock.advance(Duration::from_micros(u64::try_from(to_noon).unwrap()));
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();
    caller(app, name, roles).await
}

both_backends!(relative_dates_follow_the_server_clock_in_utc, config = catalog);
async fn relative_dates_follow_the_server_clock_in_utc(app: TestApp) {
    let c = at_noon(&app, &["hr_admin"], "ada").await;
    let now = app.clock.now();
    let today = chrono::DateTime::from_timestamp_micros(now).unwrap().date_naive();
    // Rows a day apart around today, each hired that day and seen at 06:00
    // UTC on it; two more seen an hour either side of now.
    let offsets: Vec<i64> = vec![-400, -40, -31, -8, -7, -6, -3, -1, 0, 1, 3, 6, 7, 8, 31, 40, 400];
    let mut data: Vec<Value> = offsets
        .iter()
        .map(|off| {
            let day = today + chrono::TimeDelta::days(*off);
            json!({"_rs": "I", "name": format!("d{off}"), "hired": day.to_string(),
                "seen": format!("{day}T06:00:00Z")})
        })
        .collect();
    for (name, at) in [("hour ago", now - DAY / 24), ("hour ahead", now + DAY / 24)] {
        data.push(json!({"_rs": "I", "name": name, "seen": micros_to_iso(at)}));
    }
    c.ok(&json!({"seed": {"ds": "Employees", "data": data}})).await;
    for op in RELATIVE {
        let want: Vec<String> = offsets
            .iter()
            .filter(|off| in_span(op, today + chrono::TimeDelta::days(**off), today))
            .map(|off| format!("d{off}"))
            .collect();
        assert_eq!(c.names(json!({"hired": {op: true}})).await, want, "hired {op}");
        // On a DateTime the days are UTC days; the past and future are before and after now.
        let mut want_seen: Vec<String> = offsets
            .iter()
            .filter(|off| match op {
                "inThePast" => **off <= 0,
                "inTheFuture" => **off > 0,
                _ => in_span(op, today + chrono::TimeDelta::days(**off), today),
            })
            .map(|off| format!("d{off}"))
            .collect();
        for (name, ahead) in [("hour ago", false), ("hour ahead", true)] {
            let hit = match op {
                "inThePast" => !ahead,
                "inTheFuture" => ahead,
                _ => in_span(op, today, today),
            };
            if hit {
                want_seen.push(name.to_owned());
            }
        }
        assert_eq!(c.names(json!({"seen": {op: true}})).await, want_seen, "seen {op}");
    }
    // A day later by the server's clock, yesterday is the day the rows were written.
    app.clock.advance(Duration::from_secs(24 * 3600));
    app.state.keys.refresh(app.store(), app.clock.now()).await.unwrap();
    let s = app.sign_in_ok("ada", "pw").await;
    let c = Caller { app: &app, jwt: s.jwt, csrf: s.csrf };
    assert_eq!(c.names(json!({"hired": {"yesterday": true}})).await, ["d0"]);
    assert_eq!(c.names(json!({"hired": {"today": "any value"}})).await, ["d1"]);
    let counted = json!({"filter": {"seen": {"last7Days": true}}, "aggregateList": [{"func": "Count"}], "limit": 1});
    let want = offsets.iter().filter(|off| (-5..=1).contains(*off)).count() + 2;
    assert_eq!(summary(&c, counted).await, [format!(r#"{{"count":{want},"_rs":"Q"}}"#)]);
}
