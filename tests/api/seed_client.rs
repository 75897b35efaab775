//! The seed's own JavaScript sample request, run unchanged by Node against
//! the server (issue 2's first acceptance line). Only the URL and the
//! credentials in it are replaced.

use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

/// The seed's "Sample Request", verbatim.
const SEED_SAMPLE: &str = r#"const resp = await fetch("https://next.cloudio.io/v1/auth", {
  method: "POST",
  headers: {
    Authorization: "Token c3RoYWXXXXXXXXW5pdnQ=",
    "Content-Type": "application/json",
  },
  body: "{}",
});
const json = await resp.json();
"#;

/// Prints what the sample got: the status, then the body with its keys in
/// the order the server sent them.
const REPORT: &str = "console.log(resp.status);\nconsole.log(JSON.stringify(json));\n";

/// Whether `node` runs here; prints the skip line when it does not.
fn node_available() -> bool {
    let found = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        tessera::testing::skip("node is not on PATH, so the seed's JavaScript sample cannot run");
    }
    found
}

/// Runs the seed's sample with `replace` applied; returns the status and
/// the body as JSON text.
async fn run_sample(app: &TestApp, replace: &[(&str, &str)]) -> (u16, String) {
    let url = app.url("/v1/auth");
    let mut script = SEED_SAMPLE.replace("https://next.cloudio.io/v1/auth", &url);
    for (from, to) in replace {
        assert!(script.contains(from), "the sample has {from}");
        script = script.replace(from, to);
    }
    let path = app.db.dir.path().join("seed-sample.mjs");
    std::fs::write(&path, script + REPORT).unwrap();

    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(&path).env_remove("NODE_OPTIONS").output().unwrap()
    })
    .await
    .unwrap();

    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    let (status, body) = stdout.trim().split_once('\n').expect("two lines from the sample");
    (status.parse().unwrap(), body.to_owned())
}

both_backends!(the_seeds_javascript_sample_signs_in_with_exactly_the_seeds_fields);
async fn the_seeds_javascript_sample_signs_in_with_exactly_the_seeds_fields(app: TestApp) {
    if !node_available() {
        return;
    }
    app.add_user("steve", "cloudio", "pässwörd: 1", &[]).await;
    let token = token("steve", "pässwörd: 1");

    let (status, text) = run_sample(&app, &[("Token c3RoYWXXXXXXXXW5pdnQ=", &token)]).await;

    assert_eq!(status, 200, "{text}");
    assert_eq!(keys_in_order(&text), SEED_FIELDS, "exactly the seed's fields, in order");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["orgUid"], "cloudio");
    assert_eq!(json["userName"], "steve");
    assert_eq!(json["status"], "OK");
    uuid::Uuid::parse_str(json["sessionId"].as_str().unwrap()).unwrap();
    uuid::Uuid::parse_str(json["csrf"].as_str().unwrap()).unwrap();
    let claims = jwt_parts(json["jwt"].as_str().unwrap()).1;
    assert_eq!(claims["session"], json["sessionId"]);
    assert_eq!(claims["csrf"], json["csrf"]);
    assert_eq!(claims["org_uid"], json["orgUid"]);
}

both_backends!(the_seeds_javascript_sample_gets_the_seeds_403_for_a_wrong_password);
async fn the_seeds_javascript_sample_gets_the_seeds_403_for_a_wrong_password(app: TestApp) {
    if !node_available() {
        return;
    }
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let token = token("steve", "wrong");

    let (status, text) = run_sample(&app, &[("Token c3RoYWXXXXXXXXW5pdnQ=", &token)]).await;

    assert_eq!(status, 403, "{text}");
    assert_eq!(text, SEED_403, "JSON.stringify of the parsed body gives back the seed's bytes");
}

both_backends!(the_sample_with_the_docs_authentication_header_name_signs_in);
async fn the_sample_with_the_docs_authentication_header_name_signs_in(app: TestApp) {
    if !node_available() {
        return;
    }
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let token = token("steve", "s3cret");

    let (status, text) = run_sample(
        &app,
        &[("Authorization: ", "Authentication: "), ("Token c3RoYWXXXXXXXXW5pdnQ=", &token)],
    )
    .await;

    assert_eq!(status, 200, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["userName"], "steve");
}
