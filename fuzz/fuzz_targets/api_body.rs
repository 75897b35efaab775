//! Fuzzes the `POST /v1/api` body: parse, bind to a catalog with every
//! attribute type, and build every SQL statement for both backends. Any
//! input must give a plan or an `ApiError`, never a panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera::catalog::Catalog;
use tessera::config::Config;

const CATALOG: &str = r#"
    [datasources.Things]
    table = "things"
    [datasources.Things.attributes]
    id     = { type = "Integer", primary_key = true, generated = true }
    name   = { type = "String", required = true }
    amount = { type = "Decimal" }
    score  = { type = "Double" }
    day    = { type = "Date" }
    at     = { type = "DateTime" }
    flag   = { type = "YN", default = "Y" }
    ok     = { type = "Boolean" }
    mail   = { type = "Email", updatable = false }
"#;

fn catalog() -> &'static Catalog {
    static CATALOG_CELL: OnceLock<Catalog> = OnceLock::new();
    CATALOG_CELL.get_or_init(|| {
        let config = Config::parse(CATALOG).unwrap_or_default();
        Catalog::from_config(&config).unwrap_or_default()
    })
}

fuzz_target!(|body: &[u8]| {
    let _ = tessera::query::parse_and_plan(body, catalog(), 1000);
});
