//! The data-change audit trail (design §4.6, issue 15) on both backends: an
//! entry per insert, update and delete with old and new values, the
//! `AuditTrail` datasource (granted, read-only, org-scoped), and `tessera
//! audit verify` catching an altered, a removed and an inserted entry in
//! the database itself.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tessera::config::Config;

use crate::helpers::*;

const CATALOG: &str = r#"
    [datasources.Employees]
    table = "employees"
    [datasources.Employees.attributes]
    empId  = { type = "Integer", primary_key = true, generated = true }
    name   = { type = "String", required = true }
    salary = { type = "Decimal" }

    [datasources.Notes]
    table = "notes"
    audit = false
    [datasources.Notes.attributes]
    id   = { type = "Integer", primary_key = true, generated = true }
    text = { type = "String" }

    [roles.hr_admin]
    Employees = ["query", "insert", "update", "delete"]
    Notes = ["query", "insert"]
    [roles.auditor]
    AuditTrail = ["query"]
"#;

fn catalog(config: &mut Config) {
    let parsed = Config::parse(CATALOG).unwrap();
    config.datasources = parsed.datasources;
    config.roles = parsed.roles;
}

struct Caller<'a> {
    app: &'a TestApp,
    jwt: String,
    csrf: String,
}

impl Caller<'_> {
    async fn call(&self, body: &Value) -> Response {
        let bearer = format!("Bearer {}", self.jwt);
        let headers = [
            ("Authorization", bearer.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Content-Type", "application/json"),
        ];
        self.app.post("/v1/api", &headers, Some(&body.to_string())).await
    }

    async fn ok(&self, body: &Value) -> Value {
        let response = self.call(body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "request {body} failed: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The caller's view of the trail, oldest first.
    async fn trail(&self, filter: Value) -> Vec<Value> {
        let body = json!({"a": {"ds": "AuditTrail", "query": {
            "filter": filter, "sort": {"auditId": 1}, "limit": 100}}});
        self.ok(&body).await["data"]["a"]["data"].as_array().unwrap().clone()
    }
}

async fn caller<'a>(app: &'a TestApp, name: &str, org: &str, roles: &[&str]) -> Caller<'a> {
    app.add_user(name, org, "pw", roles).await;
    let s = app.sign_in_ok(name, "pw").await;
    Caller { app, jwt: s.jwt, csrf: s.csrf }
}

/// Inserts Ada, raises her salary, deletes her: three entries.
async fn three_changes(c: &Caller<'_>) {
    let v = c
        .ok(&json!({"p": {"ds": "Employees", "data": [
        {"_rs": "I", "name": "Ada", "salary": 100}]}}))
        .await;
    let row = &v["data"]["p"]["data"][0];
    let (id, stamp) = (row["empId"].clone(), row["lastUpdateDate"].clone());
    let v = c
        .ok(&json!({"p": {"ds": "Employees", "data": [
            {"_rs": "U", "empId": id, "lastUpdateDate": stamp, "salary": 150}]}}))
        .await;
    let stamp = v["data"]["p"]["data"][0]["lastUpdateDate"].clone();
    c.ok(&json!({"p": {"ds": "Employees", "data": [
        {"_rs": "D", "empId": id, "lastUpdateDate": stamp}]}}))
        .await;
}

fn parsed(text: &Value) -> Value {
    text.as_str().map_or(Value::Null, |t| serde_json::from_str(t).unwrap())
}

both_backends!(every_write_leaves_one_entry_with_old_and_new_values, config = catalog);
async fn every_write_leaves_one_entry_with_old_and_new_values(app: TestApp) {
    let admin = caller(&app, "ada", "acme", &["hr_admin"]).await;
    let auditor = caller(&app, "audrey", "acme", &["auditor"]).await;
    three_changes(&admin).await;
    admin.ok(&json!({"n": {"ds": "Notes", "data": [{"_rs": "I", "text": "not audited"}]}})).await;

    let entries = auditor.trail(json!([])).await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    let ops: Vec<&str> = entries.iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["insert", "update", "delete"]);
    for e in &entries {
        assert_eq!(e["userName"], "ada");
        assert_eq!(e["orgUid"], "acme");
        assert_eq!(e["datasource"], "Employees");
        assert!(e["auditTime"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let key = parsed(&entries[0]["rowKey"]);
    assert!(key["empId"].is_i64(), "{key}");
    assert_eq!(parsed(&entries[1]["rowKey"]), key);
    assert_eq!(entries[0]["oldValues"], Value::Null);
    assert_eq!(parsed(&entries[0]["newValues"])["name"], "Ada");
    assert_eq!(parsed(&entries[0]["newValues"])["salary"], json!(100));
    assert_eq!(parsed(&entries[1]["oldValues"]), json!({"salary": 100}));
    assert_eq!(parsed(&entries[1]["newValues"]), json!({"salary": 150}));
    assert_eq!(parsed(&entries[2]["oldValues"])["salary"], json!(150));
    assert_eq!(entries[2]["newValues"], Value::Null);

    let updates = auditor.trail(json!([{"operation": {"is": "update"}}])).await;
    assert_eq!(updates.len(), 1);
}

both_backends!(the_trail_is_granted_read_only_and_scoped_to_the_org, config = catalog);
async fn the_trail_is_granted_read_only_and_scoped_to_the_org(app: TestApp) {
    let admin = caller(&app, "ada", "acme", &["hr_admin"]).await;
    let other_admin = caller(&app, "olga", "other", &["hr_admin"]).await;
    let auditor = caller(&app, "audrey", "acme", &["auditor"]).await;
    let other_auditor = caller(&app, "otto", "other", &["auditor"]).await;
    three_changes(&admin).await;
    other_admin.ok(&json!({"p": {"ds": "Employees", "data": [{"_rs": "I", "name": "Oz"}]}})).await;

    assert_eq!(auditor.trail(json!([])).await.len(), 3);
    let theirs = other_auditor.trail(json!([])).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["userName"], "olga");
    let smuggled = other_auditor.trail(json!([{"orgUid": {"is": "acme"}}])).await;
    assert!(smuggled.is_empty(), "{smuggled:?}");

    let query = json!({"a": {"ds": "AuditTrail", "query": {"limit": 10}}});
    let e = assert_error(admin.call(&query).await, 403, "Access Denied").await;
    assert!(e.message.contains("AuditTrail"), "{}", e.message);
    let post = json!({"a": {"ds": "AuditTrail", "data": [{"_rs": "D", "auditId": 1}]}});
    let e = assert_error(auditor.call(&post).await, 403, "Access Denied").await;
    assert!(e.message.contains("read-only"), "{}", e.message);
    assert_eq!(auditor.trail(json!([])).await.len(), 3, "nothing was removed");
}

/// Runs `tessera audit ARGS --database URL` against the app's database.
async fn audit(app: &TestApp, args: &[&str]) -> Ran {
    let mut all = vec!["audit"];
    all.extend(args);
    all.extend(["--database", &app.db.url]);
    run_tessera(app.db.dir.path(), &all, "").await
}

fn refused(ran: &Ran, needle: &str) {
    assert_eq!(ran.code, 1, "expected exit 1: {ran:?}");
    assert!(ran.stderr.contains(needle), "expected {needle:?} in {:?}", ran.stderr);
}

both_backends!(verify_names_the_first_altered_removed_or_inserted_entry, config = catalog);
async fn verify_names_the_first_altered_removed_or_inserted_entry(app: TestApp) {
    let admin = caller(&app, "ada", "acme", &["hr_admin"]).await;
    three_changes(&admin).await;
    // Past nine entries, so ids order as numbers, not as text ("10" < "9").
    let dozen: Vec<Value> = (0..12).map(|k| json!({"_rs": "I", "name": format!("N{k}")})).collect();
    admin.ok(&json!({"p": {"ds": "Employees", "data": dozen}})).await;
    admin.ok(&json!({"p": {"ds": "Employees", "data": [{"_rs": "I", "name": "Last"}]}})).await;
    let ran = audit(&app, &["verify"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("16 audit entries checked"), "{ran:?}");
    let listed = audit(&app, &["list", "--user", "ada", "--datasource", "Employees"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert_eq!(listed.stdout.lines().count(), 17, "a header and 16 entries: {listed:?}");
    let ids: Vec<u64> = listed
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=16).collect::<Vec<u64>>());
    let none = audit(&app, &["list", "--user", "nobody"]).await;
    assert_eq!(none.stdout.lines().count(), 1, "{none:?}");
    let future = audit(&app, &["list", "--since", "2999-01-01"]).await;
    assert_eq!(future.stdout.lines().count(), 1, "{future:?}");

    let store = app.store();
    tamper(store, "UPDATE audit_trail SET new_values = '{\"salary\":1}' WHERE audit_id = 2").await;
    refused(&audit(&app, &["verify"]).await, "audit entry 2 was altered");
    tamper(store, "UPDATE audit_trail SET new_values = '{\"salary\":150}' WHERE audit_id = 2")
        .await;
    assert_eq!(audit(&app, &["verify"]).await.code, 0, "restored, the chain holds again");

    tamper(
        store,
        "INSERT INTO audit_trail SELECT 17, audit_time, 'mallory', org_uid, session_id, datasource, \
         operation, row_key, old_values, new_values, prev_hash, entry_hash FROM audit_trail \
         WHERE audit_id = 16",
    )
    .await;
    refused(&audit(&app, &["verify"]).await, "audit entry 17 was inserted");
    tamper(store, "DELETE FROM audit_trail WHERE audit_id = 17").await;

    tamper(store, "DELETE FROM audit_trail WHERE audit_id = 2").await;
    refused(&audit(&app, &["verify"]).await, "audit entry 2 was removed");
}
