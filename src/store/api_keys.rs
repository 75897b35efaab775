//! API keys as stored (design §4.7): the HMAC digest of the secret, never
//! the secret, found by its unique index.

use anyhow::{Context, Result};

use super::{Store, on_pool};
use crate::clock::Micros;

/// A key as sign-in needs it, joined with its user.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyForSignIn {
    pub id: i64,
    pub digest: String,
    /// A JSON array of role names.
    pub roles: String,
    pub expires_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
    pub user_id: i64,
    pub user_name: String,
    pub org_uid: String,
    pub display_name: String,
    pub email: String,
    pub disabled: bool,
}

/// A key as `key list` shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: i64,
    pub user_name: String,
    pub name: String,
    pub roles: String,
    pub created_at: Micros,
    pub last_used_at: Option<Micros>,
    pub expires_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
}

/// What adding a key needs.
#[derive(Clone, Debug)]
pub struct NewApiKey<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub digest: &'a str,
    pub roles: &'a str,
    pub expires_at: Option<Micros>,
}

impl Store {
    /// Stores a new key; returns its id.
    pub async fn add_api_key(&self, key: &NewApiKey<'_>, now: Micros) -> Result<i64> {
        let (id,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO api_keys (user_id, name, digest, roles, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
            .bind(key.user_id).bind(key.name).bind(key.digest).bind(key.roles).bind(now)
            .bind(key.expires_at).fetch_one(pool).await)
        .context("storing an API key")?;
        Ok(id)
    }

    /// Every key (revoked ones too), optionally of one user, oldest first.
    pub async fn list_api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKeyRow>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT k.id, u.name AS user_name, k.name, k.roles, k.created_at, k.last_used_at, \
             k.expires_at, k.revoked_at FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE ($1 IS NULL OR u.name = $1) ORDER BY k.id")
            .bind(user).fetch_all(pool).await)
        .context("listing API keys")
    }

    /// Revokes a key and ends every session it opened, in one transaction.
    /// Returns the key's user and the number of sessions ended, or `None`
    /// for an unknown or already revoked key.
    pub async fn revoke_api_key(&self, id: i64, now: Micros) -> Result<Option<(String, u64)>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let user: Option<(String,)> = sqlx::query_as(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                 RETURNING (SELECT name FROM users WHERE users.id = api_keys.user_id)")
                .bind(now).bind(id).fetch_optional(&mut *tx).await?;
            let Some((user,)) = user else { return Ok(None) };
            let ended = sqlx::query(
                "UPDATE sessions SET ended_at = $1, end_reason = 'API key revoked' \
                 WHERE api_key_id = $2 AND ended_at IS NULL")
                .bind(now).bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(Some((user, ended)))
        })
    }
}
