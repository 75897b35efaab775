//! Fuzzes the `POST /v1/api` body: parse, authorize and plan against a
//! catalog with every value family (the shared `THINGS` fixture), then build
//! every SQL statement for both backends. Any input must give a plan or an
//! `ApiError`, never a panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera::auth::Principal;
use tessera::catalog::Catalog;
use tessera::catalog::fixtures::THINGS;
use tessera::config::Config;
use tessera::query::{self, Stamp};
use tessera::store::Backend;

fn catalog() -> &'static Catalog {
    static CATALOG_CELL: OnceLock<Catalog> = OnceLock::new();
    CATALOG_CELL.get_or_init(|| {
        let config = Config::parse(THINGS).unwrap_or_default();
        Catalog::from_config(&config).unwrap_or_default()
    })
}

fuzz_target!(|body: &[u8]| {
    let owner = Principal {
        session_id: "fuzz".into(),
        user_id: 1,
        user_name: "fuzz".into(),
        org_uid: "fuzz".into(),
        roles: vec!["things_all".into()],
    };
    let Ok(plan) = query::prepare(catalog(), &owner, body, 1000, 1_709_114_400_000_000) else { return };
    let stamp = Stamp {
        user: "fuzz".into(),
        org: "fuzz".into(),
        session: "fuzz".into(),
        now: "2024-01-01T00:00:00.000000Z".into(),
    };
    for backend in [Backend::Sqlite, Backend::Postgres] {
        query::sql::statements(&plan, &stamp, backend);
    }
});
