//! Benchmark helper (not a test): where the time of one signed-in query goes
//! below HTTP, as tessera spends it. Used by `bench/run` for S16 (issue 17).
//!
//!     cargo run --release --example query_cost -- CONFIG USER BODY_FILE [COUNT]
//!
//! Opens the database of CONFIG as the server does, plans BODY_FILE (one
//! query alias) as USER with USER's roles, and times COUNT rounds of each of:
//! - `statement`: the alias's SQL statement alone, on the server's pool, its
//!   rows fetched as the server fetches them;
//! - `render`: those rows written to JSON, as the server writes them;
//! - `pipeline`: the whole `query::run` (parse, authorize, plan, statement,
//!   render), everything a `POST /v1/api` does except HTTP and the gate.
//!
//! Prints one JSON line with the median microseconds of each.

use std::path::Path;
use std::time::Instant;

use tessera::auth::Principal;
use tessera::clock::Clock;
use tessera::config::Config;
use tessera::query::plan::Planned;
use tessera::query::{self, render, sql};
use tessera::store::exec::Work;

fn median_micros(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

type Failure = Box<dyn std::error::Error>;

/// Runs `round` `count` times after one warm-up and returns the median µs.
async fn time<F: AsyncFnMut() -> Result<(), Failure>>(
    count: usize,
    mut round: F,
) -> Result<f64, Failure> {
    round().await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        round().await?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median_micros(times))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, user, body_file, rest @ ..] = args.as_slice() else {
        return Err("usage: query_cost CONFIG USER BODY_FILE [COUNT]".into());
    };
    let count = rest.first().and_then(|c| c.parse().ok()).unwrap_or(2000usize).max(1);
    let config = Config::load(Path::new(config))?;
    let body = std::fs::read(body_file)?;
    let state = tessera::start(config, Clock::system()).await?;
    let row = state.store.user_by_name(user).await?.ok_or("no such user")?;
    let principal = Principal {
        session_id: "query-cost".into(),
        user_id: row.id,
        user_name: row.name,
        org_uid: row.org_uid,
        roles: state.store.user_roles(row.id).await?,
    };
    let env = state.query_env();
    let now = state.clock.now();
    let plan = query::prepare(env.catalog, &principal, &body, env.max_limit, now)
        .map_err(|e| e.message())?;
    let alias = plan.aliases.first().ok_or("the body has no alias")?;
    let Planned::Query(plan_query) = &alias.action else {
        return Err("the first alias is not a query".into());
    };
    let (ds, columns) = (&alias.ds, &plan_query.columns);
    let backend = state.store.backend();

    let mut fetched = 0;
    let statement = time(count, async || {
        let mut db = state.store.begin(Work::OneRead).await?;
        fetched = db.fetch(sql::select(ds, plan_query, backend)).await?.len();
        Ok(())
    })
    .await?;

    let mut db = state.store.begin(Work::OneRead).await?;
    let rows = db.fetch(sql::select(ds, plan_query, backend)).await?;
    let mut out = Vec::with_capacity(16 * 1024);
    let render = time(count, async || {
        out.clear();
        for r in 0..rows.len() {
            render::write_row(&mut out, ds, columns, &rows.cells(r, columns.len())?, "Q");
        }
        Ok(())
    })
    .await?;

    let pipeline = time(count, async || {
        query::run(env, &principal, &body, now).await.map_err(|e| e.message())?;
        Ok(())
    })
    .await?;

    println!(
        r#"{{"rows":{fetched},"bytes":{},"statement_us":{statement:.1},"render_us":{render:.1},"pipeline_us":{pipeline:.1},"count":{count}}}"#,
        out.len()
    );
    Ok(())
}
