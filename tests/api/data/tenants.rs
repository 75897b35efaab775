//! Orgs are tenants and grants carry row filters and attribute lists
//! (design §4.5, issue 12), on both backends: isolation for every
//! operation, `$user` filters, the union of roles, `WITH CHECK`, hidden
//! attributes, `/v1/datasources` and `tessera explain`.

use super::*;

const TENANTS: &str = r#"
    [datasources.Employees]
    table = "employees"
    [datasources.Employees.attributes]
    empId  = { type = "Integer", primary_key = true, generated = true }
    name   = { type = "String", required = true }
    salary = { type = "Decimal" }
    active = { type = "YN", default = "Y" }

    [datasources.Codes]
    table = "codes"
    scope = "global"
    [datasources.Codes.attributes]
    code  = { type = "String", primary_key = true }
    label = { type = "String" }

    [roles.editor]
    Employees = ["query", "insert", "update", "delete"]
    Codes = ["query", "insert"]
    [roles.inserter]
    Employees = ["insert"]
    [roles.own_rows.Employees]
    operations = ["query", "update"]
    filter = [{ createdBy = { is = "$user" } }]
    attributes = ["empId", "name", "active", "createdBy", "lastUpdateDate"]
    [roles.active_only.Employees]
    operations = ["query", "insert", "update"]
    filter = [{ active = { is = "Y" } }]
    [roles.named_x.Employees]
    operations = ["query"]
    filter = [{ name = { is = "X" } }]
    [roles.named_y.Employees]
    operations = ["query"]
    filter = [{ name = { is = "Y" } }]
"#;

fn tenants(config: &mut Config) {
    use_catalog(config, TENANTS);
}

fn insert(names: &[&str]) -> Value {
    let rows: Vec<Value> = names.iter().map(|n| json!({"_rs": "I", "name": n})).collect();
    json!({"i": {"ds": "Employees", "data": rows}})
}

both_backends!(an_org_sees_and_changes_only_its_own_rows, config = tenants);
async fn an_org_sees_and_changes_only_its_own_rows(app: TestApp) {
    let alice = caller_in(&app, "alice", "acme", &["editor"]).await;
    let bob = caller_in(&app, "bob", "globex", &["editor"]).await;
    // A forged orgUid in the body is ignored: the row belongs to the session's org.
    let forged = json!({"i": {"ds": "Employees", "data": [
        {"_rs": "I", "name": "Ann", "orgUid": "globex"}, {"_rs": "I", "name": "Abe"}]}});
    let written = alice.ok(&forged).await;
    assert_eq!(rows(&written, "i")[0]["orgUid"], "acme");
    bob.ok(&insert(&["Bea"])).await;

    assert_eq!(alice.names(json!([])).await, ["Ann", "Abe"]);
    assert_eq!(bob.names(json!([])).await, ["Bea"]);
    assert!(bob.names(json!([{"orgUid": {"is": "acme"}}])).await.is_empty());

    // Another org's row is answered exactly as a row that does not exist.
    let ann = alice.all().await.remove(0);
    let (id, stamp) = (ann["empId"].clone(), ann["lastUpdateDate"].clone());
    let missing = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": 999_999, "lastUpdateDate": stamp, "name": "Bob was here"}]}});
    let other = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": id, "lastUpdateDate": stamp, "name": "Bob was here"}]}});
    let a = assert_error(bob.call(&missing).await, 409, "Conflict").await.message;
    let b = assert_error(bob.call(&other).await, 409, "Conflict").await.message;
    assert_eq!(
        a.replace("empId=999999", "empId=ID"),
        b.replace(&format!("empId={id}"), "empId=ID")
    );
    let delete = json!({"d": {"ds": "Employees", "data": [
        {"_rs": "D", "empId": id, "lastUpdateDate": stamp}]}});
    assert_error(bob.call(&delete).await, 409, "Conflict").await;
    assert_eq!(alice.names(json!([])).await, ["Ann", "Abe"], "nothing of acme changed");

    // A global datasource is shared.
    alice
        .ok(&json!({"c": {"ds": "Codes", "data": [{"_rs": "I", "code": "A", "label": "a"}]}}))
        .await;
    let codes = bob.ok(&json!({"q": {"ds": "Codes", "query": {"limit": 10}}})).await;
    assert_eq!(rows(&codes, "q").len(), 1);
    assert!(rows(&codes, "q")[0].get("orgUid").is_none());
}

both_backends!(a_user_filter_and_an_attribute_list_narrow_what_a_role_reaches, config = tenants);
async fn a_user_filter_and_an_attribute_list_narrow_what_a_role_reaches(app: TestApp) {
    let carol = caller_in(&app, "carol", "acme", &["own_rows", "inserter"]).await;
    let dave = caller_in(&app, "dave", "acme", &["editor"]).await;
    carol.ok(&insert(&["C1", "C2"])).await;
    dave.ok(&insert(&["D1"])).await;

    let mine = carol.all().await;
    let names: Vec<_> = mine.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["C1", "C2"]);
    let keys: Vec<_> = mine[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["empId", "name", "active", "createdBy", "lastUpdateDate", "_rs"]);

    let hidden = |q: Value| json!({"q": {"ds": "Employees", "query": q}});
    for q in [
        json!({"filter": [{"salary": {"gt": 1}}], "limit": 5}),
        json!({"sort": {"salary": 1}, "limit": 5}),
        json!({"projection": {"salary": 1}, "limit": 5}),
        json!({"selectAttributeCodeList": ["name", "orgUid"], "limit": 5}),
    ] {
        let e = assert_error(carol.call(&hidden(q.clone())).await, 403, "Access Denied").await;
        assert!(e.message.starts_with("Access Denied - no access to attribute "), "{q}: {e:?}");
    }
    let (id, stamp) = (mine[0]["empId"].clone(), mine[0]["lastUpdateDate"].clone());
    let salary = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": id, "lastUpdateDate": stamp, "salary": 10}]}});
    let e = assert_error(carol.call(&salary).await, 403, "Access Denied").await;
    assert_eq!(e.message, "Access Denied - no access to attribute salary");

    // Dave's row is outside carol's update filter: as if it did not exist.
    let d1 = dave.all().await.into_iter().find(|r| r["name"] == "D1").unwrap();
    let steal = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": d1["empId"], "lastUpdateDate": d1["lastUpdateDate"], "name": "mine"}]}});
    assert_error(carol.call(&steal).await, 409, "Conflict").await;
    let rename = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": id, "lastUpdateDate": stamp, "name": "C1b"}]}});
    let renamed = carol.ok(&rename).await;
    assert_eq!(rows(&renamed, "u")[0]["name"], "C1b");
    assert!(rows(&renamed, "u")[0].get("salary").is_none(), "hidden in what is written back");
}

both_backends!(two_roles_reach_the_union_of_their_rows, config = tenants);
async fn two_roles_reach_the_union_of_their_rows(app: TestApp) {
    let admin = caller_in(&app, "admin", "acme", &["editor"]).await;
    admin.ok(&insert(&["X", "Y", "Z"])).await;
    let x = caller_in(&app, "x", "acme", &["named_x"]).await;
    let xy = caller_in(&app, "xy", "acme", &["named_x", "named_y"]).await;
    assert_eq!(x.names(json!([])).await, ["X"]);
    assert_eq!(xy.names(json!([])).await, ["X", "Y"]);
    assert_eq!(xy.names(json!([{"name": {"in": ["Y", "Z"]}}])).await, ["Y"]);
    let all = caller_in(&app, "all", "acme", &["named_x", "editor"]).await;
    assert_eq!(all.names(json!([])).await, ["X", "Y", "Z"], "a role without a filter reaches all");
}

both_backends!(a_write_must_stay_inside_the_filter_or_nothing_is_written, config = tenants);
async fn a_write_must_stay_inside_the_filter_or_nothing_is_written(app: TestApp) {
    let eve = caller_in(&app, "eve", "acme", &["active_only"]).await;
    let bad = json!({"i": {"ds": "Employees", "data": [
        {"_rs": "I", "name": "ok", "active": "Y"}, {"_rs": "I", "name": "out", "active": "N"}]}});
    let e = assert_error(eve.call(&bad).await, 403, "Access Denied").await;
    assert!(e.message.contains("outside what your roles may write"), "{e:?}");
    assert!(eve.names(json!([])).await.is_empty(), "the first row was rolled back too");

    eve.ok(&insert(&["in"])).await;
    let row = eve.all().await.remove(0);
    let out = json!({"u": {"ds": "Employees", "data": [
        {"_rs": "U", "empId": row["empId"], "lastUpdateDate": row["lastUpdateDate"], "active": "N"}]}});
    assert_error(eve.call(&out).await, 403, "Access Denied").await;
    assert_eq!(eve.all().await[0]["active"], "Y", "the update was not written");
}

both_backends!(datasources_and_explain_tell_the_truth, config = tenants);
async fn datasources_and_explain_tell_the_truth(app: TestApp) {
    let carol = caller_in(&app, "carol", "acme", &["own_rows"]).await;
    let bearer = format!("Bearer {}", carol.jwt);
    let listed: Value = app
        .get("/v1/datasources", &[("Authorization", &bearer), ("X-CSRF-Token", &carol.csrf)])
        .await
        .json()
        .await
        .unwrap();
    let list = listed["datasources"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    assert_eq!(list[0]["name"], "Employees");
    let codes: Vec<_> =
        list[0]["attributes"].as_array().unwrap().iter().map(|a| a["code"].clone()).collect();
    assert_eq!(codes, ["empId", "name", "active", "createdBy", "lastUpdateDate"]);

    let config = app.db.dir.path().join("tenants.toml");
    std::fs::write(&config, TENANTS).unwrap();
    let explain = |args: Vec<&str>| {
        let mut all = vec!["explain"];
        all.extend(args);
        all.extend(["--config", config.to_str().unwrap(), "--database", &app.db.url]);
        all.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>()
    };
    let args = explain(vec!["carol", "Employees", "update"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_tessera(app.db.dir.path(), &refs, "").await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("allowed: carol may update Employees"), "{ran:?}");
    assert!(ran.stdout.contains("granted by: own_rows"), "{ran:?}");
    assert!(ran.stdout.contains("orgUid is $org (acme)"), "{ran:?}");
    assert!(ran.stdout.contains(r#"{"createdBy":{"is":"$user"}}"#), "{ran:?}");
    assert!(ran.stdout.contains("attributes: empId, name, active, createdBy, lastUpdateDate"));

    let args = explain(vec!["carol", "Employees", "delete"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_tessera(app.db.dir.path(), &refs, "").await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("Access Denied - no delete access to datasource Employees"));
    assert!(ran.stderr.contains("carol may not delete Employees"), "{ran:?}");
}

both_backends!(a_count_never_sees_a_row_the_caller_could_not_read, config = tenants);
async fn a_count_never_sees_a_row_the_caller_could_not_read(app: TestApp) {
    let alice = caller_in(&app, "alice", "acme", &["editor"]).await;
    let bob = caller_in(&app, "bob", "globex", &["editor"]).await;
    let carol = caller_in(&app, "carol", "acme", &["own_rows", "inserter"]).await;
    alice.ok(&insert(&["A1", "A2", "A3"])).await;
    bob.ok(&insert(&["B1"])).await;
    carol.ok(&insert(&["C1"])).await;
    let count = json!({"n": {"ds": "Employees", "query": {
        "aggregateList": [{"func": "Count"}], "limit": 10}}});
    let counted = |v: Value| v["data"]["n"]["data"][0]["count"].clone();
    assert_eq!(counted(alice.ok(&count).await), 4, "acme's four rows");
    assert_eq!(counted(bob.ok(&count).await), 1, "globex's one row");
    assert_eq!(counted(carol.ok(&count).await), 1, "carol's own row only");
    let hidden = json!({"n": {"ds": "Employees", "query": {
        "aggregateList": [{"func": "Sum", "code": "salary"}], "limit": 10}}});
    let e = assert_error(carol.call(&hidden).await, 403, "Access Denied").await;
    assert_eq!(e.message, "Access Denied - no access to attribute salary");
}
