//! Signing in with an API key (design §1.1, §4.7): the secret's HMAC under
//! the secret key is looked up by its unique index and compared in constant
//! time; no argon2, no queue. The session gets the key's roles.
//!
//! Throttling: a correct key is never held or refused by the guessing
//! counters (a 190-bit secret cannot be guessed, and a lock must not let an
//! attacker who guesses passwords lock machines out). A wrong, revoked or
//! expired key, or another user's, counts as a failure exactly as a wrong
//! password does, and is refused with 429 while its counters are locked.

use std::net::IpAddr;

use subtle::ConstantTimeEq;

use super::Auth;
use super::signin::{Opening, SignedIn};
use crate::clock::Micros;
use crate::error::ApiError;
use crate::store::AuditEvent;
use crate::store::api_keys::KeyForSignIn;

impl Auth<'_> {
    /// Signs `user` in with the well-formed key secret `secret`.
    /// `audit` makes this sign-in's audit entries, as for a password.
    pub(crate) async fn sign_in_with_key<'a>(
        &self,
        user: &str,
        secret: &str,
        client: IpAddr,
        now: Micros,
        audit: impl Fn(&'static str, &'static str) -> AuditEvent<'a>,
    ) -> Result<SignedIn, ApiError> {
        let digest = self.secrets.api_key_digest(secret);
        let found = self.sign_ins.key(digest.clone()).await?;
        let key = match refusal(found, &digest, user, now) {
            Ok(key) => key,
            Err(why) => {
                let attempt = self.admit(user, client).await?;
                return Err(self.failed(attempt, &audit("sign-in failed", why)).await?);
            }
        };
        let opening = Opening {
            user_id: key.user_id,
            name: key.user_name,
            org_uid: key.org_uid,
            display_name: key.display_name,
            email: key.email,
            api_key_id: Some(key.id),
            expires_at: key.expires_at,
        };
        self.open_session(opening, &audit("sign-in", "API key"), now).await
    }
}

/// The key, if it lets `user` in at `now`; else why not (for the log and
/// the audit only: the client sees the seed's 403 either way).
fn refusal(
    found: Option<KeyForSignIn>,
    digest: &str,
    user: &str,
    now: Micros,
) -> Result<KeyForSignIn, &'static str> {
    let key = found.ok_or("unknown API key")?;
    if !bool::from(key.digest.as_bytes().ct_eq(digest.as_bytes())) {
        return Err("unknown API key");
    }
    if key.user_name != user {
        Err("API key of another user")
    } else if key.revoked_at.is_some() {
        Err("API key revoked")
    } else if key.expires_at.is_some_and(|at| now >= at) {
        Err("API key expired")
    } else if key.disabled {
        Err("user disabled")
    } else {
        Ok(key)
    }
}
