//! `POST /v1/api` beyond filters: the envelope, projection and paging, the
//! post rules (spec §6–§8), one transaction per request, grants, and bad
//! or hostile input.

use std::time::Duration;

use super::*;

fn is_iso_micros(text: &str) -> bool {
    let b = text.as_bytes();
    text.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

async fn row_named(c: &Caller<'_>, name: &str) -> Value {
    c.all().await.into_iter().find(|r| r["name"] == name).unwrap()
}

both_backends!(query_envelope_is_exact_and_in_request_order, config = catalog);
async fn query_envelope_is_exact_and_in_request_order(app: TestApp) {
    let c = seeded(&app).await;
    let body = json!({
        "z": {"ds": "Employees", "query": {"filter": [{"name": {"is": "Dana"}}], "limit": 5}},
        "a": {"ds": "Employees", "query": {"limit": 2}},
    });
    let response = c.call(&body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type").as_deref(), Some("application/json"));
    let text = response.text().await.unwrap();
    assert_eq!(keys_in_order(&text), ["status", "data"]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "OK");
    let aliases: Vec<_> = v["data"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(aliases, ["z", "a"]);
    let z = v["data"]["z"].as_object().unwrap();
    assert_eq!(z.keys().collect::<Vec<_>>(), ["data", "queryElapsed", "rowsFetched"]);
    assert!(z["queryElapsed"].is_u64());
    assert_eq!(z["rowsFetched"], 1);
    assert_eq!(v["data"]["a"]["rowsFetched"], 2);
    let row = rows(&v, "z")[0].as_object().unwrap();
    let keys: Vec<_> = row.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "empId",
            "name",
            "salary",
            "active",
            "email",
            "hired",
            "seen",
            "remote",
            "rating",
            "orgUid",
            "createdBy",
            "creationDate",
            "lastUpdatedBy",
            "lastUpdateDate",
            "_rs",
        ]
    );
    assert_eq!(row["_rs"], "Q");
    assert_eq!(row["salary"], json!(5000));
    assert_eq!(row["rating"], json!(4.5));
    assert_eq!(row["remote"], json!(true));
    assert_eq!(row["hired"], "2020-01-15");
    assert_eq!(row["seen"], "2024-01-01T09:00:00.000000Z");
    assert!(is_iso_micros(row["lastUpdateDate"].as_str().unwrap()));
}

both_backends!(projection_sort_offset_and_limit_are_exact, config = catalog);
async fn projection_sort_offset_and_limit_are_exact(app: TestApp) {
    let c = seeded(&app).await;
    let q = |query: Value| json!({"q": {"ds": "Employees", "query": query}});
    let v = c.ok(&q(json!({"projection": {"name": 1, "empId": 1}, "limit": 1}))).await;
    let keys: Vec<_> = rows(&v, "q")[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["name", "empId", "_rs"]);
    let v = c.ok(&q(json!({"selectAttributeCodeList": ["salary"], "limit": 1}))).await;
    let keys: Vec<_> = rows(&v, "q")[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["salary", "_rs"]);
    let names = |v: &Value| -> Vec<String> {
        rows(v, "q").iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    };
    let v = c.ok(&q(json!({"sort": {"name": 1}, "projection": {"name": 1}, "limit": 100}))).await;
    assert_eq!(
        names(&v),
        [
            "",
            "' OR '1'='1",
            "50% off",
            "Dana",
            "O'Brien",
            "Robert'); DROP TABLE employees;--",
            "a_b",
            "back\\slash",
            "dana",
        ]
    );
    let paged = json!({"sort": {"active": 1, "salary": -1}, "offset": 2, "limit": 3, "projection": {"name": 1}});
    let v = c.ok(&q(paged)).await;
    assert_eq!(names(&v), ["Robert'); DROP TABLE employees;--", "O'Brien", "Dana"]);
    assert_eq!(v["data"]["q"]["rowsFetched"], 3);
    let v = c.ok(&q(json!({"sort": {"salary": 1}, "limit": 2, "projection": {"name": 1}}))).await;
    assert_eq!(names(&v), ["50% off", ""], "NULLs sort first ascending");
}

both_backends!(insert_returns_generated_key_who_columns_and_defaults, config = catalog);
async fn insert_returns_generated_key_who_columns_and_defaults(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let body = json!({"new": {"ds": "Employees", "data": [
        {"_rs": "I", "empId": 999, "name": "Zed", "salary": 12345.678,
         "createdBy": "mallory", "creationDate": "2000-01-01T00:00:00Z"},
    ]}});
    let v = c.ok(&body).await;
    let row = &rows(&v, "new")[0];
    assert_ne!(row["empId"], json!(999), "a generated key is the server's");
    assert!(row["empId"].is_i64());
    assert_eq!(row["active"], "Y", "the default fills an absent value");
    assert_eq!(row["salary"], json!(12345.678));
    assert_eq!(row["createdBy"], "ada");
    assert_eq!(row["lastUpdatedBy"], "ada");
    assert_eq!(row["creationDate"], row["lastUpdateDate"]);
    assert!(is_iso_micros(row["creationDate"].as_str().unwrap()), "{row}");
    assert_eq!(row["_rs"], "Q");
    assert!(v["data"]["new"].get("queryElapsed").is_none());
    assert_eq!(c.all().await, vec![row.clone()]);
}

both_backends!(insert_without_a_required_attribute_is_400_and_writes_nothing, config = catalog);
async fn insert_without_a_required_attribute_is_400_and_writes_nothing(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let body = json!({"new": {"ds": "Employees", "data": [{"_rs": "I", "name": "Ok"}, {"_rs": "I", "salary": 1}]}});
    let e = assert_error(c.call(&body).await, 400, "Invalid Request").await;
    assert!(e.message.contains("row 2") && e.message.contains("name is required"), "{}", e.message);
    assert!(c.all().await.is_empty());
}

both_backends!(unknown_attribute_rejects_the_whole_request, config = catalog);
async fn unknown_attribute_rejects_the_whole_request(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let body = json!({"new": {"ds": "Employees", "data": [{"_rs": "I", "name": "Ok"}, {"_rs": "I", "name": "X", "gender": "M"}]}});
    let e = assert_error(c.call(&body).await, 400, "Invalid Request").await;
    assert!(e.message.contains("unknown attribute \"gender\""), "{}", e.message);
    assert!(c.all().await.is_empty());
}

both_backends!(a_wrong_type_names_the_attribute, config = catalog);
async fn a_wrong_type_names_the_attribute(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let body =
        json!({"new": {"ds": "Employees", "data": [{"_rs": "I", "name": "X", "salary": "lots"}]}});
    let e = assert_error(c.call(&body).await, 400, "Invalid Request").await;
    assert!(e.message.contains("attribute salary (Decimal): expected a number"), "{}", e.message);
    let q = json!({"q": {"ds": "Employees", "query": {"filter": [{"salary": {"gt": "5"}}], "limit": 1}}});
    let e = assert_error(c.call(&q).await, 400, "Invalid Request").await;
    assert!(e.message.contains("salary") && e.message.contains("gt"), "{}", e.message);
}

both_backends!(update_changes_only_the_attributes_sent, config = catalog);
async fn update_changes_only_the_attributes_sent(app: TestApp) {
    let c = seeded(&app).await;
    let before = row_named(&c, "Dana").await;
    app.clock.advance(Duration::from_secs(5));
    let body = json!({"u": {"ds": "Employees", "data": [{
        "_rs": "U", "empId": before["empId"], "lastUpdateDate": before["lastUpdateDate"],
        "salary": 5100, "email": "new@x.io", "lastUpdatedBy": "mallory"}]}});
    let v = c.ok(&body).await;
    let after = &rows(&v, "u")[0];
    assert_eq!(after["salary"], json!(5100));
    assert_eq!(after["email"], "dana@x.io", "email is not updatable");
    assert_eq!(after["lastUpdatedBy"], "ada");
    assert_ne!(after["lastUpdateDate"], before["lastUpdateDate"]);
    for same in [
        "empId",
        "name",
        "active",
        "hired",
        "seen",
        "remote",
        "rating",
        "createdBy",
        "creationDate",
    ] {
        assert_eq!(after[same], before[same], "{same} changed");
    }
    assert_eq!(&row_named(&c, "Dana").await, after);
}

both_backends!(update_and_delete_need_the_key_and_last_update_date, config = catalog);
async fn update_and_delete_need_the_key_and_last_update_date(app: TestApp) {
    let c = seeded(&app).await;
    let dana = row_named(&c, "Dana").await;
    for (row, needle) in [
        (json!({"_rs": "U", "empId": dana["empId"], "salary": 1}), "lastUpdateDate is required"),
        (json!({"_rs": "D", "lastUpdateDate": dana["lastUpdateDate"]}), "empId is required"),
        (
            json!({"_rs": "U", "empId": dana["empId"], "lastUpdateDate": dana["lastUpdateDate"], "name": null}),
            "name is required",
        ),
    ] {
        let e = assert_error(
            c.call(&json!({"u": {"ds": "Employees", "data": [row]}})).await,
            400,
            "Invalid Request",
        )
        .await;
        assert!(e.message.contains(needle), "{}", e.message);
    }
    assert_eq!(row_named(&c, "Dana").await, dana);
}

both_backends!(a_stale_update_is_409_and_writes_nothing, config = catalog);
async fn a_stale_update_is_409_and_writes_nothing(app: TestApp) {
    let c = seeded(&app).await;
    let dana = row_named(&c, "Dana").await;
    let body = json!({
        "first": {"ds": "Employees", "data": [{"_rs": "I", "name": "Newbie"}]},
        "second": {"ds": "Employees", "data": [{"_rs": "U", "empId": dana["empId"],
            "lastUpdateDate": "2000-01-01T00:00:00.000000Z", "salary": 1}]},
    });
    let e = assert_error(c.call(&body).await, 409, "Conflict").await;
    assert!(e.message.contains("row changed since read"), "{}", e.message);
    let all = c.all().await;
    assert_eq!(all.len(), 9);
    assert!(!all.iter().any(|r| r["name"] == "Newbie"));
    assert_eq!(row_named(&c, "Dana").await, dana);
}

both_backends!(updating_or_deleting_a_missing_row_is_409, config = catalog);
async fn updating_or_deleting_a_missing_row_is_409(app: TestApp) {
    let c = seeded(&app).await;
    for rs in ["U", "D"] {
        let body = json!({"x": {"ds": "Employees", "data": [{"_rs": rs, "empId": 9999, "lastUpdateDate": "2024-01-01T00:00:00Z"}]}});
        let e = assert_error(c.call(&body).await, 409, "Conflict").await;
        assert!(e.message.contains("no longer exists"), "{}", e.message);
    }
}

both_backends!(delete_returns_the_key_and_removes_the_row, config = catalog);
async fn delete_returns_the_key_and_removes_the_row(app: TestApp) {
    let c = seeded(&app).await;
    let dana = row_named(&c, "Dana").await;
    let stale = json!({"d": {"ds": "Employees", "data": [{"_rs": "D", "empId": dana["empId"], "lastUpdateDate": "2001-01-01"}]}});
    assert_error(c.call(&stale).await, 409, "Conflict").await;
    let body = json!({"d": {"ds": "Employees", "data": [{"_rs": "D", "empId": dana["empId"], "lastUpdateDate": dana["lastUpdateDate"]}]}});
    let v = c.ok(&body).await;
    assert_eq!(rows(&v, "d"), &vec![json!({"empId": dana["empId"], "_rs": "D"})]);
    assert_eq!(c.names(json!({"name": {"is": "Dana"}})).await, Vec::<String>::new());
}

both_backends!(mixed_rows_run_and_answer_in_request_order, config = catalog);
async fn mixed_rows_run_and_answer_in_request_order(app: TestApp) {
    let c = seeded(&app).await;
    let dana = row_named(&c, "Dana").await;
    let ob = row_named(&c, "O'Brien").await;
    let body = json!({"m": {"ds": "Employees", "data": [
        {"_rs": "D", "empId": ob["empId"], "lastUpdateDate": ob["lastUpdateDate"]},
        {"_rs": "I", "name": "Ravi", "salary": 10},
        {"_rs": "U", "empId": dana["empId"], "lastUpdateDate": dana["lastUpdateDate"], "active": "N"},
    ]}});
    let v = c.ok(&body).await;
    let got: Vec<(Value, Value)> =
        rows(&v, "m").iter().map(|r| (r["_rs"].clone(), r["empId"].clone())).collect();
    assert_eq!(got[0], (json!("D"), ob["empId"].clone()));
    assert_eq!(rows(&v, "m")[1]["name"], "Ravi");
    assert_eq!(got[2], (json!("Q"), dana["empId"].clone()));
    assert_eq!(rows(&v, "m")[2]["active"], "N");
}

both_backends!(a_bad_second_alias_leaves_the_first_unwritten, config = catalog);
async fn a_bad_second_alias_leaves_the_first_unwritten(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let insert = json!({"ds": "Employees", "data": [{"_rs": "I", "name": "First"}]});
    let bad_query = json!({"first": insert, "second": {"ds": "Employees", "query": {"filter": [{"name": {"regex": "x"}}], "limit": 1}}});
    assert_error(c.call(&bad_query).await, 400, "Invalid Request").await;
    let ungranted = json!({"first": insert, "second": {"ds": "Secrets", "query": {"limit": 1}}});
    assert_error(c.call(&ungranted).await, 403, "Access Denied").await;
    let duplicate = json!({"first": insert, "second": {"ds": "Codes", "data": [
        {"_rs": "I", "code": "A"}, {"_rs": "I", "code": "A"}]}});
    let e = assert_error(c.call(&duplicate).await, 409, "Conflict").await;
    assert!(e.message.contains("already exists"), "{}", e.message);
    assert!(c.all().await.is_empty());
    let codes = c.ok(&json!({"q": {"ds": "Codes", "query": {"limit": 10}}})).await;
    assert!(rows(&codes, "q").is_empty());
}

both_backends!(a_reader_can_query_but_not_insert, config = catalog);
async fn a_reader_can_query_but_not_insert(app: TestApp) {
    seeded(&app).await;
    let reader = caller(&app, "rita", &["hr_reader"]).await;
    assert_eq!(reader.all().await.len(), 9);
    let body = json!({"new": {"ds": "Employees", "data": [{"_rs": "I", "name": "Sneaky"}]}});
    let e = assert_error(reader.call(&body).await, 403, "Access Denied").await;
    assert_eq!(e.message, "Access Denied - no insert access to datasource Employees");
    assert_eq!(reader.all().await.len(), 9);
}

both_backends!(unknown_and_ungranted_datasources_get_the_same_403, config = catalog);
async fn unknown_and_ungranted_datasources_get_the_same_403(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    let mut bodies = Vec::new();
    for ds in ["Secrets", "Nope"] {
        for action in [json!({"query": {"limit": 1}}), json!({"data": [{"_rs": "I", "id": 1}]})] {
            let mut alias = action.clone();
            alias["ds"] = json!(ds);
            let response = c.call(&json!({"a": alias})).await;
            let text = response.text().await.unwrap();
            bodies.push(text.replace(ds, "NAME"));
        }
    }
    let expected = r#"{"code":403,"status":"ERROR","title":"Access Denied","message":"Access Denied - no access to datasource NAME"}"#;
    assert!(bodies.iter().all(|b| b == expected), "{bodies:?}");
}

both_backends!(sql_in_attribute_and_datasource_names_is_refused, config = catalog);
async fn sql_in_attribute_and_datasource_names_is_refused(app: TestApp) {
    let c = seeded(&app).await;
    let evil = "name\" FROM employees; DROP TABLE employees; --";
    let q = |query: Value| json!({"q": {"ds": "Employees", "query": query}});
    for body in [
        q(json!({"filter": [{evil: {"is": "x"}}], "limit": 1})),
        q(json!({"projection": {evil: 1}, "limit": 1})),
        q(json!({"selectAttributeCodeList": ["name; --"], "limit": 1})),
        q(json!({"sort": {"name DESC; --": 1}, "limit": 1})),
        json!({"p": {"ds": "Employees", "data": [{"_rs": "I", "name": "x", evil: 1}]}}),
    ] {
        let e = assert_error(c.call(&body).await, 400, "Invalid Request").await;
        assert!(e.message.contains("unknown attribute"), "{}", e.message);
    }
    let body = json!({"p": {"ds": "Employees; DROP TABLE employees", "query": {"limit": 1}}});
    assert_error(c.call(&body).await, 403, "Access Denied").await;
    assert_eq!(c.all().await.len(), 9);
    let v = c.ok(&json!({"p": {"ds": "Employees", "data": [{"_rs": "I", "name": "x'); DELETE FROM employees; --"}]}})).await;
    assert_eq!(rows(&v, "p")[0]["name"], "x'); DELETE FROM employees; --");
    assert_eq!(c.all().await.len(), 10);
}

both_backends!(bad_input_is_400_in_our_shape, config = catalog);
async fn bad_input_is_400_in_our_shape(app: TestApp) {
    let c = caller(&app, "ada", &["hr_admin"]).await;
    for raw in ["{", "", "[]", "null", "{\"a\": 1}", "{\"a\": {\"ds\": \"Employees\"}}"] {
        assert_error(c.raw(raw).await, 400, "Invalid Request").await;
    }
    let q = |query: Value| json!({"q": {"ds": "Employees", "query": query}});
    for limit in [json!(0), json!(-1), json!(1001), json!("10"), json!(1e40)] {
        let e =
            assert_error(c.call(&q(json!({"limit": limit}))).await, 400, "Invalid Request").await;
        assert!(e.message.contains("from 1 to 1000"), "{}", e.message);
    }
    let e = assert_error(c.call(&q(json!({}))).await, 400, "Invalid Request").await;
    assert!(e.message.contains("\"limit\" is required"), "{}", e.message);
    let e =
        assert_error(c.call(&q(json!({"limit": 1, "offset": -5}))).await, 400, "Invalid Request")
            .await;
    assert!(e.message.contains("offset"), "{}", e.message);
    let e = assert_error(
        c.call(&q(json!({"limit": 1, "data": {"name": "x"}}))).await,
        400,
        "Invalid Request",
    )
    .await;
    assert!(e.message.contains("not supported"), "{}", e.message);
    let mut deep = json!({"name": {"is": "x"}});
    for _ in 0..40 {
        deep = json!({"or": [deep]});
    }
    let e = assert_error(
        c.call(&q(json!({"filter": [deep], "limit": 1}))).await,
        400,
        "Invalid Request",
    )
    .await;
    assert!(e.message.contains("deeper than"), "{}", e.message);
    let nested = "[".repeat(5000) + &"]".repeat(5000);
    assert_error(c.raw(&nested).await, 400, "Invalid Request").await;
    let huge: Vec<i64> = (0..5000).collect();
    let e = assert_error(
        c.call(&q(json!({"filter": [{"empId": {"in": huge}}], "limit": 1}))).await,
        400,
        "Invalid Request",
    )
    .await;
    assert!(e.message.contains("more than 1000"), "{}", e.message);
    let e = assert_error(
        c.call(&q(json!({"filter": [{"name": {"matches": "x"}}], "limit": 1}))).await,
        400,
        "Invalid Request",
    )
    .await;
    assert!(e.message.contains("unknown operator \"matches\""), "{}", e.message);
    let too_big =
        r#"{"x": {"ds": "Employees", "data": [{"_rs": "I", "name": "x", "salary": 1e999}]}}"#;
    let e = assert_error(c.raw(too_big).await, 400, "Invalid Request").await;
    assert!(e.message.contains("salary"), "{}", e.message);
}

both_backends!(calls_without_a_session_are_401, config = catalog);
async fn calls_without_a_session_are_401(app: TestApp) {
    let body = json!({"q": {"ds": "Employees", "query": {"limit": 1}}}).to_string();
    assert_unauthorized(app.post("/v1/api", &[], Some(&body)).await).await;
}
