//! `POST /v1/api` below HTTP (spec §4–§8, design §1.4), as one pipeline that
//! the server and the CLI share. Each stage has its own file and imports
//! only the stages after it:
//!
//! parse (`request.rs`, `filter.rs`) → authorize (`catalog/grants.rs`) →
//! plan (`plan.rs`, `bind.rs`) → SQL (`sql.rs`) → execute (`execute.rs`,
//! through `store/exec.rs`) → render (`render.rs`).

pub mod aggregate;
pub mod audit;
pub mod bind;
pub mod dates;
pub mod execute;
pub mod filter;
pub mod grant;
pub mod limits;
pub mod plan;
pub mod render;
pub mod request;
pub mod sql;
pub mod sql_summary;
pub mod summary;

use crate::auth::Principal;
use crate::catalog::Catalog;
use crate::clock::{Micros, iso8601};
use crate::error::ApiError;
use crate::store::Store;
use crate::store::share::Share;

pub use plan::{Plan, Stamp};

/// What the pipeline reads of the application: the database, the catalog,
/// and the config's cap on `limit`.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    pub store: &'a Store,
    /// The part of the store's pool this pipeline may hold.
    pub share: &'a Share,
    pub catalog: &'a Catalog,
    pub max_limit: u32,
}

/// Parse → authorize → plan: everything that happens before the database.
/// A body that is malformed, or asks for anything `principal` may not do,
/// is refused here whole. Relative dates (`today`, ...) are fixed at `now`.
pub fn prepare(
    catalog: &Catalog,
    principal: &Principal,
    body: &[u8],
    max_limit: u32,
    now: Micros,
) -> Result<Plan, ApiError> {
    let request = request::parse(body, max_limit)?;
    let grants = request
        .aliases
        .iter()
        .map(|alias| catalog.authorize(principal, &alias.ds, &alias.operations()))
        .collect::<Result<Vec<_>, _>>()?;
    plan::plan(request, grants, now)
}

/// The whole pipeline for one body from `principal` at `now`: the response
/// body, or the error that rolled everything back.
pub async fn run(
    env: Env<'_>,
    principal: &Principal,
    body: &[u8],
    now: Micros,
) -> Result<Vec<u8>, ApiError> {
    let plan = prepare(env.catalog, principal, body, env.max_limit, now)?;
    let stamp = Stamp {
        user: principal.user_name.clone(),
        org: principal.org_uid.clone(),
        session: principal.session_id.clone(),
        now: iso8601(now),
    };
    let _permit = env.share.enter().await.ok_or_else(|| {
        ApiError::Busy(
            "The server is busy with other data requests; retry in a moment. Nothing was run."
                .into(),
        )
    })?;
    execute::execute(env.store, &plan, &stamp).await
}

#[cfg(test)]
mod summary_tests;
#[cfg(test)]
mod tests;
