//! The gate of every signed-in call (design §1.2): a Bearer JWT, a CSRF
//! token equal to the session's, and a session that is still live.
//!
//! Verifying Ed25519 and reading the session on every call would cost more
//! than the call itself, so a verified token and its session are remembered.
//!
//! While the change listener is proven alive ([`Health`]), what is
//! remembered is used until a change notice names it (design §4.3): the
//! database's work grows with changes, not with calls. Otherwise (SQLite,
//! or a listener silent for [`crate::store::changes::SILENCE`]), after
//! [`FRESH`] the next call re-reads the session; calls that arrive while it does so go on with what
//! is remembered, for at most [`STALE`]. That is the revocation contract: a
//! session ended anywhere (sign-out, CLI, another instance) is refused by
//! every process within `max(SILENCE, STALE)` plus one query, well inside
//! one second.
//!
//! Expiry needs no read: the max lifetime counts from the remembered
//! creation, the idle timeout from the latest use known. Only a session that
//! looks idle here is re-read before it is refused, since another instance
//! may have used it; uses reach the database in batches ([`Auth::flush_uses`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::secrets::{self, hex, unhex};
use super::tokens::TokenError;
use super::{Auth, Principal};
use crate::clock::{Micros, micros};
use crate::error::ApiError;
use crate::store::SessionRow;
use crate::store::changes::{Change, Health};

/// How long a remembered session is trusted before it is read again.
pub const FRESH: Micros = 200_000;

/// How long a remembered session may be used while one call re-reads it.
pub const STALE: Micros = 500_000;

/// A remembered session unused for this long is forgotten.
const UNUSED: Micros = 60_000_000;

/// A signed-in caller as the gate lets it through: who (through `Deref` to
/// [`Principal`]) and until when.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Arc<Principal>,
    /// When the session ends regardless of use.
    pub expires_at: Micros,
    /// When the session ends if it is not used again.
    pub idle_expires_at: Micros,
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// What the gate remembers of one verified token.
struct Entry {
    /// The token's `exp`, in seconds.
    exp: i64,
    /// The session's state as last read (who it is, is in `principal`).
    state: SessionState,
    principal: Arc<Principal>,
    /// The digest the session is stored (and named in change notices) by.
    digest: secrets::Digest,
    fetched_at: Micros,
    /// No change notice arrived while the session was read, so a healthy
    /// listener vouches for what was read.
    settled: bool,
    /// The latest use seen by this process.
    last_used: AtomicI64,
    /// The latest use the database holds, as read or as written from here.
    stored_use: AtomicI64,
    /// Set by the one call that re-reads this entry once it is not fresh.
    refreshing: AtomicBool,
}

impl Entry {
    /// Whether what is remembered may answer a call at `now` without a read.
    fn trusted(&self, now: Micros, listener_healthy: bool) -> bool {
        (self.settled && listener_healthy) || now - self.fetched_at < FRESH
    }
}

/// What the gate checks of a session besides who it is.
struct SessionState {
    /// The digest of the session's CSRF token.
    csrf: secrets::Digest,
    created_at: Micros,
    last_used_at: Micros,
    ended: bool,
    disabled: bool,
}

/// Verified tokens and their sessions, keyed by the token's SHA-256, and
/// the health of the change listener that keeps them current.
#[derive(Default)]
pub struct Cache {
    entries: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    /// Counts what was forgotten on notice; a read that overlaps one is not
    /// settled.
    forgotten: AtomicU64,
    /// Sessions read from the database (for `/metrics`).
    reads: AtomicU64,
    /// Whether the change listener is proven alive.
    pub listener: Health,
}

impl Cache {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<Entry>> {
        self.entries.read().ok()?.get(key).cloned()
    }

    fn put(&self, key: [u8; 32], entry: Arc<Entry>) {
        if let Ok(mut map) = self.entries.write() {
            map.insert(key, entry);
        }
    }

    /// How many verified tokens are remembered (for `/metrics`).
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |map| map.len())
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many sessions the gate has read from the database (for `/metrics`).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn remove_where(&self, gone: impl Fn(&Entry) -> bool) {
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.entries.write() {
            map.retain(|_, entry| !gone(entry));
        }
    }

    /// The remembered sessions used since their use was last stored, by at
    /// least `interval`: `(entry, use)`, one per session.
    fn unstored_uses(&self, interval: Micros) -> Vec<(Arc<Entry>, Micros)> {
        let Ok(map) = self.entries.read() else { return Vec::new() };
        let mut uses: HashMap<&str, (Arc<Entry>, Micros)> = HashMap::new();
        for entry in map.values() {
            let used = entry.last_used.load(Ordering::Relaxed);
            if used - entry.stored_use.load(Ordering::Relaxed) < interval {
                continue;
            }
            let id = entry.principal.session_id.as_str();
            match uses.get(id) {
                Some((_, seen)) if *seen >= used => {}
                _ => {
                    uses.insert(id, (entry.clone(), used));
                }
            }
        }
        uses.into_values().collect()
    }
}

/// Why a remembered session is refused.
enum Refusal {
    Idle,
    Other(&'static str),
}

impl Refusal {
    fn into_error(self) -> ApiError {
        unauthorized(match self {
            Self::Idle => "The session was idle for too long.",
            Self::Other(why) => why,
        })
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(format!("{message} Sign in again at POST /v1/auth."))
}

fn token_refused(e: &TokenError) -> ApiError {
    unauthorized(&format!("The bearer token was refused: {e}."))
}

/// The token from an `Authorization: Bearer <jwt>` value, or from the JWT
/// sent bare (`Authorization: <jwt>`), as some CloudIO clients do (design
/// §1.2). A bare value must have a JWT's shape: three base64url parts.
pub fn parse_bearer(value: &[u8]) -> Result<&str, ApiError> {
    let value = std::str::from_utf8(value).map_err(|_| token_refused(&TokenError::Malformed))?;
    let value = value.trim();
    if is_jwt_shaped(value) {
        return Ok(value);
    }
    let (scheme, token) = value.split_once(' ').unwrap_or(("", ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized(
            "The Authorization header must be 'Bearer <jwt>', with the jwt from sign-in.",
        ));
    }
    Ok(token.trim())
}

/// Whether `value` is three non-empty base64url parts joined by dots (RFC
/// 7519's compact form); whether it verifies is the key ring's business.
fn is_jwt_shaped(value: &str) -> bool {
    let mut parts = 0;
    for part in value.split('.') {
        parts += 1;
        let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if part.is_empty() || !part.bytes().all(base64url) {
            return false;
        }
    }
    parts == 3
}

impl Auth<'_> {
    /// Lets a signed-in call through, or says why not: 401 for anything
    /// wrong with the token or the session, 403 for a missing or wrong CSRF
    /// token.
    pub async fn authenticate(
        &self,
        bearer: Option<&[u8]>,
        csrf: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let bearer = bearer.ok_or_else(|| {
            unauthorized("Missing bearer token: send Authorization: Bearer <jwt>, with the jwt from sign-in.")
        })?;
        let token = parse_bearer(bearer)?;
        let now = self.clock.now();
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();

        let healthy = self.gate.listener.healthy(now);
        let entry = match self.gate.get(&key) {
            Some(entry) if entry.trusted(now, healthy) => entry,
            // Another call is re-reading this session: use what is known.
            Some(entry)
                if now - entry.fetched_at < STALE
                    && entry.refreshing.swap(true, Ordering::AcqRel) =>
            {
                entry
            }
            Some(stale) => self.reload(key, &stale, now).await?,
            None => {
                let claims = self
                    .keys
                    .verify(token, now.div_euclid(1_000_000))
                    .map_err(|e| token_refused(&e))?;
                let entry = self.load(&claims.session, claims.exp, now, None).await?;
                if entry.principal.user_name != claims.sub {
                    return Err(unauthorized("The token does not match its session."));
                }
                self.gate.put(key, entry.clone());
                entry
            }
        };

        let (entry, principal) = match self.check_live(&entry, now) {
            Ok(principal) => (entry, principal),
            // Idle here, but another instance may have used it: ask the
            // database, unless it was just asked.
            Err(Refusal::Idle) if now - entry.fetched_at >= FRESH => {
                let entry = self.reload(key, &entry, now).await?;
                let principal = self.check_live(&entry, now).map_err(Refusal::into_error)?;
                (entry, principal)
            }
            Err(refusal) => return Err(refusal.into_error()),
        };
        let csrf = csrf.ok_or_else(|| {
            ApiError::Forbidden(
                "Missing CSRF token: send ?csrf=<csrf> or the header X-CSRF-Token: <csrf>, with the csrf from sign-in.".into(),
            )
        })?;
        let csrf = self.secrets.csrf_mac(csrf);
        if !bool::from(csrf.ct_eq(&entry.state.csrf)) {
            return Err(ApiError::Forbidden(
                "The CSRF token does not belong to this session: send the csrf returned with this jwt.".into(),
            ));
        }
        entry.last_used.fetch_max(now, Ordering::Relaxed);
        Ok(principal)
    }

    /// Reads a remembered session again, keeping the uses seen here.
    async fn reload(
        &self,
        key: [u8; 32],
        stale: &Entry,
        now: Micros,
    ) -> Result<Arc<Entry>, ApiError> {
        let entry = self.load(&stale.principal.session_id, stale.exp, now, Some(stale)).await?;
        self.gate.put(key, entry.clone());
        Ok(entry)
    }

    /// Reads a session and its user's roles; `previous` is what was
    /// remembered of it, whose unstored uses carry over.
    async fn load(
        &self,
        session_id: &str,
        exp: i64,
        now: Micros,
        previous: Option<&Entry>,
    ) -> Result<Arc<Entry>, ApiError> {
        let digest = self.secrets.session_mac(session_id);
        let forgotten = self.gate.forgotten.load(Ordering::Acquire);
        self.gate.reads.fetch_add(1, Ordering::Relaxed);
        let SessionRow {
            id: _,
            user_id,
            csrf,
            created_at,
            last_used_at,
            ended_at,
            user_name,
            org_uid,
            disabled,
            key_roles,
        } = self
            .store
            .session(&hex(&digest))
            .await?
            .ok_or_else(|| unauthorized("The session of this token does not exist."))?;
        let user_roles = self.store.user_roles(user_id).await?;
        let principal = Arc::new(Principal {
            session_id: session_id.to_owned(),
            user_id,
            user_name,
            org_uid,
            roles: super::api_keys::narrow(user_roles, key_roles.as_deref()),
        });
        let csrf = unhex(&csrf).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the stored CSRF digest of a session is not hex"))
        })?;
        let state =
            SessionState { csrf, created_at, last_used_at, ended: ended_at.is_some(), disabled };
        let used_here = previous.map_or(0, |p| p.last_used.load(Ordering::Relaxed));
        Ok(Arc::new(Entry {
            exp,
            state,
            principal,
            digest,
            fetched_at: now,
            settled: self.gate.forgotten.load(Ordering::Acquire) == forgotten,
            last_used: AtomicI64::new(last_used_at.max(used_here)),
            stored_use: AtomicI64::new(last_used_at),
            refreshing: AtomicBool::new(false),
        }))
    }

    fn check_live(&self, entry: &Entry, now: Micros) -> Result<Caller, Refusal> {
        let row = &entry.state;
        let idle = micros(self.config.session.idle_timeout.0);
        let expires_at = (row.created_at + micros(self.config.session.max_lifetime.0))
            .min(entry.exp.saturating_mul(1_000_000));
        let last_used = entry.last_used.load(Ordering::Relaxed).max(row.last_used_at);
        if row.ended {
            return Err(Refusal::Other("The session has ended (signed out or revoked)."));
        } else if row.disabled {
            return Err(Refusal::Other("The session's user is disabled."));
        } else if now >= expires_at {
            return Err(Refusal::Other("The session has reached its maximum lifetime."));
        } else if now - last_used > idle {
            return Err(Refusal::Idle);
        }
        Ok(Caller {
            principal: entry.principal.clone(),
            expires_at,
            idle_expires_at: (now + idle).min(expires_at),
        })
    }

    /// How far a session's use may run ahead of the database before it is
    /// written: a tenth of the idle timeout, at most 5 s.
    pub fn touch_interval(&self) -> Micros {
        (micros(self.config.session.idle_timeout.0) / 10).clamp(1, 5_000_000)
    }

    /// Writes the uses seen here that ran [`Self::touch_interval`] ahead of
    /// the database, in one statement for all sessions; run every
    /// `touch_interval` (at most each second). A use reaches the database
    /// within `2 × touch_interval` of the call, so another instance that
    /// re-reads an idle-looking session sees it.
    pub async fn flush_uses(&self) -> anyhow::Result<()> {
        let uses = self.gate.unstored_uses(self.touch_interval());
        if uses.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, Micros)> =
            uses.iter().map(|(entry, at)| (hex(&entry.digest), *at)).collect();
        self.store.touch_sessions(&rows).await?;
        for (entry, at) in uses {
            entry.stored_use.fetch_max(at, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Drops a session from this process's memory at once.
    pub fn forget_session(&self, session_id: &str) {
        self.gate.remove_where(|entry| entry.principal.session_id == session_id);
    }

    /// Acts on a change notice from the database: forget what it touches.
    pub fn apply_change(&self, change: &Change) {
        match change {
            Change::Session(digest) => {
                if let Some(digest) = unhex(digest) {
                    self.gate.remove_where(|entry| entry.digest == digest);
                }
            }
            Change::User(id) => self.gate.remove_where(|entry| entry.principal.user_id == *id),
            Change::Keys => {}
            Change::Missed => self.gate.remove_where(|_| true),
        }
    }

    /// Drops remembered sessions that were not used lately and whose last
    /// use is stored; run periodically.
    pub fn sweep(&self) {
        let cutoff = self.clock.now() - UNUSED;
        let interval = self.touch_interval();
        if let Ok(mut map) = self.gate.entries.write() {
            map.retain(|_, entry| {
                let used = entry.last_used.load(Ordering::Relaxed);
                used >= cutoff || used - entry.stored_use.load(Ordering::Relaxed) >= interval
            });
        }
    }
}

#[cfg(test)]
mod tests;
