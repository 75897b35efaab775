//! The JWT signing keys as stored: the ring's rows, private parts sealed.

use anyhow::{Context, Result};

use super::{Store, on_pool};
use crate::clock::Micros;

/// A signing key as stored. `private_der` is sealed (see `auth::secrets`),
/// except in rows from before sealing, which start seals at once.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_der: Vec<u8>,
    pub public_raw: Vec<u8>,
    pub created_at: Micros,
}

impl Store {
    /// Adds a key to the ring.
    pub async fn add_key(&self, key: &KeyRow) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_der, public_raw, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.kid).bind(&key.algorithm).bind(&key.private_der).bind(&key.public_raw)
            .bind(key.created_at).execute(pool).await.map(|r| r.rows_affected()))
        .context("storing a signing key")?;
        Ok(())
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT kid, algorithm, private_der, public_raw, created_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(pool).await)
        .context("loading signing keys")
    }

    /// Replaces a key's unsealed private key by its sealed form, if the row
    /// still holds `plain` (a concurrent sealer wins; sealing is idempotent).
    pub async fn seal_key(&self, kid: &str, plain: &[u8], sealed: &[u8]) -> Result<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE signing_keys SET private_der = $1 WHERE kid = $2 AND private_der = $3")
            .bind(sealed).bind(kid).bind(plain).execute(pool).await.map(|r| r.rows_affected()))
        .context("sealing a signing key")?;
        Ok(())
    }
}
