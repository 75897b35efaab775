//! tessera's integration tests, as one binary: each test starts the real
//! server on `127.0.0.1:0` with a fresh database (a temp SQLite file, and a
//! fresh PostgreSQL database when `TESSERA_TEST_POSTGRES_URL` is set) and
//! talks to it over HTTP, as a client would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod api_keys;
mod audit;
mod auth;
mod cli;
mod clients;
mod data;
mod gate;
mod guessing;
mod idempotency;
mod instances;
mod limits;
mod listener;
mod network;
mod observe;
mod seed_client;
mod throttle;
