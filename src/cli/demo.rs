//! `tessera serve [--demo]`: the server, and the demo's account, catalog
//! and rows (design §2). The demo's rows go in through the same pipeline
//! as `POST /v1/api`.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use tokio::net::TcpListener;

use crate::app::AppState;
use crate::auth::Principal;
use crate::auth::credentials::token_header;
use crate::auth::password::Hasher;
use crate::catalog::fixtures::EMPLOYEES;
use crate::clock::Clock;
use crate::config::{Config, DatabaseUrl};
use crate::query;
use crate::store::{NewUser, Store};

/// The demo's role, granted to `steve`.
const DEMO_ROLE: &str = "employees_editor";

/// Adds the demo's datasource and roles to whatever the config file holds.
fn add_demo_catalog(config: &mut Config) -> Result<()> {
    let demo = Config::parse(EMPLOYEES).map_err(|e| anyhow!(e))?;
    for (name, ds) in demo.datasources {
        config.datasources.entry(name).or_insert(ds);
    }
    for (name, role) in demo.roles {
        config.roles.entry(name).or_insert(role);
    }
    Ok(())
}

pub async fn serve(mut config: Config, demo: bool, database_given: bool) -> Result<()> {
    if demo {
        if !database_given {
            config.database = DatabaseUrl("sqlite://tessera-demo.db".into());
        }
        add_demo_catalog(&mut config)?;
    }
    let clock = Clock::system();
    let state = AppState::start(config.clone(), clock.clone()).await?;
    let listener = match TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        // The demo must start anywhere: fall back to a free port.
        Err(_) if demo => TcpListener::bind("127.0.0.1:0").await?,
        Err(e) => bail!("cannot listen on {}: {e}", config.listen),
    };
    let addr = listener.local_addr()?;
    println!("tessera listening on http://{addr}");
    if demo {
        let password = random_password()?;
        demo_account(&state.store, &state.hasher, &password, clock.now()).await?;
        demo_rows(&state).await?;
        let key = super::keys::add_key(
            &state.store,
            &state.secrets,
            "steve",
            "demo",
            &[],
            None,
            clock.now(),
        )
        .await?;
        println!("demo service account: org cloudio, user steve, password {password} (shown once)");
        println!("sign in with:");
        println!("{}", curl_line(addr, &password));
        println!(
            "or with the demo API key {} (shown once; `tessera key revoke {}` ends it):",
            key.id, key.id
        );
        println!("{}", curl_line(addr, &key.secret));
    }
    let _ = std::io::stdout().flush();
    crate::serve(state, listener, super::shutdown_signal()).await
}

/// A ready `curl` line that signs in as `steve` with `password` (or key secret).
fn curl_line(addr: std::net::SocketAddr, password: &str) -> String {
    format!(
        "curl -s -X POST http://{addr}/v1/auth -H 'Authorization: {}' -H 'Content-Type: application/json' -d '{{}}'",
        token_header("steve", password)
    )
}

/// Creates the seed's own account, or gives it a new password if it exists.
async fn demo_account(store: &Store, hasher: &Hasher, password: &str, now: i64) -> Result<()> {
    let hash = hasher.hash_blocking(password)?;
    if store.user_by_name("steve").await?.is_some() {
        store.change_password("steve", &hash, now).await?;
        store.change_roles("steve", &[DEMO_ROLE.into()], &[]).await?;
        return Ok(());
    }
    let user = NewUser {
        name: "steve",
        org_uid: "cloudio",
        display_name: "Steve",
        email: "name@cloudio.io",
        password_hash: &hash,
        roles: &[DEMO_ROLE.into()],
    };
    store.add_user(&user, now).await
}

/// The demo's employees, inserted when the table is empty.
const DEMO_ROWS: &str = r#"{"e":{"ds":"Employees","data":[
  {"_rs":"I","name":"Ada Lovelace","email":"ada@cloudio.io","salary":9200.50,"active":"Y","hireDate":"2021-03-01"},
  {"_rs":"I","name":"Grace Hopper","email":"grace@cloudio.io","salary":8700,"active":"Y","hireDate":"2019-11-15"},
  {"_rs":"I","name":"Alan Turing","email":"alan@cloudio.io","salary":8100.25,"active":"N","hireDate":"2020-06-23"},
  {"_rs":"I","name":"Edsger Dijkstra","email":"edsger@cloudio.io","salary":7800,"active":"Y","hireDate":"2022-05-11"},
  {"_rs":"I","name":"Barbara Liskov","email":"barbara@cloudio.io","salary":9900,"active":"Y","hireDate":"2018-11-07"}
]}}"#;

/// Seeds the demo's `Employees` through the same pipeline as `POST /v1/api`,
/// as `steve` with the demo's role, when the table is empty.
async fn demo_rows(state: &AppState) -> Result<()> {
    let steve = state.store.user_by_name("steve").await?.context("demo data: no user steve")?;
    let principal = Principal {
        session_id: String::new(),
        user_id: steve.id,
        user_name: steve.name,
        org_uid: steve.org_uid,
        roles: vec![DEMO_ROLE.into()],
    };
    let api = async |body: &str| -> Result<serde_json::Value> {
        let out = query::run(state.query_env(), &principal, body.as_bytes(), state.clock.now())
            .await
            .map_err(|e| anyhow!("demo data: {}", e.message()))?;
        serde_json::from_slice(&out).context("demo data: unreadable answer")
    };
    let probe = api(r#"{"e":{"ds":"Employees","query":{"limit":1}}}"#).await?;
    if probe["data"]["e"]["rowsFetched"] == 0 {
        api(DEMO_ROWS).await?;
    }
    Ok(())
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes))
}
