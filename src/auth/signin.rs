//! Signing in (design §1.1, §4.1, §4.2): throttle, check the password,
//! open a session, sign its JWT, and audit the attempt either way.

use std::net::IpAddr;

use anyhow::Context;
use tracing::{info, instrument, warn};

use super::password::{HashError, Verdict};
use super::tokens::Claims;
use super::{Auth, Principal};
use crate::clock::micros;
use crate::error::ApiError;
use crate::store::{AuditEvent, Reservation, throttle::Limits};

/// A new session, as the seed's 200 body shows it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    pub org_uid: String,
    pub session_id: String,
    pub user_name: String,
    pub display_name: String,
    pub email_address: String,
    pub csrf: String,
    pub jwt: String,
    pub status: String,
}

/// Longest user name looked up; longer ones cannot exist.
const MAX_USER_NAME: usize = 256;

impl Auth<'_> {
    fn user_limits(&self) -> Limits {
        Limits {
            threshold: i64::from(self.config.throttle.user_failures),
            window: micros(self.config.throttle.window.0),
            base_wait: 1_000_000,
        }
    }

    fn ip_limits(&self) -> Limits {
        Limits { threshold: i64::from(self.config.throttle.ip_failures), ..self.user_limits() }
    }

    /// Signs `user` in with `password` from `client`.
    #[instrument(skip_all, fields(user = %user, client = %client))]
    pub async fn sign_in(
        &self,
        user: &str,
        password: String,
        client: IpAddr,
    ) -> Result<SignedIn, ApiError> {
        let now = self.clock.now();
        let client_text = client.to_string();
        let user_key = format!("user:{user}");
        let ip_key = format!("ip:{client_text}");
        let audit = |event: &'static str, detail: &'static str| AuditEvent {
            at: now,
            event,
            user_name: Some(user),
            client: Some(&client_text),
            detail,
        };

        if let Reservation::Locked { wait } =
            self.store.reserve_attempt(&ip_key, self.ip_limits(), now).await?
        {
            self.record(&audit("sign-in refused", "too many failures from this address")).await;
            return Err(too_many(wait));
        }
        if let Reservation::Locked { wait } =
            self.store.reserve_attempt(&user_key, self.user_limits(), now).await?
        {
            self.store.release_attempt(&ip_key).await?;
            self.record(&audit("sign-in refused", "too many failures for this user")).await;
            return Err(too_many(wait));
        }

        let found =
            if user.len() <= MAX_USER_NAME { self.store.user_by_name(user).await? } else { None };
        let stored = found.as_ref().map(|u| u.password_hash.clone());
        let verdict = match self.hasher.verify(password, stored).await {
            Ok(verdict) => verdict,
            Err(HashError::Busy) => {
                // Not the client's fault: give both reservations back.
                self.store.release_attempt(&ip_key).await?;
                self.store.release_attempt(&user_key).await?;
                return Err(ApiError::Unavailable(anyhow::anyhow!(
                    "password checks are saturated"
                )));
            }
            Err(HashError::Failed(e)) => return Err(ApiError::Internal(e)),
        };
        let (user_row, rehash) = match (found, verdict) {
            (Some(row), Verdict::Right { rehash }) if !row.disabled => (row, rehash),
            (found, _) => {
                let why = match found {
                    None => "unknown user",
                    Some(row) if row.disabled => "user disabled",
                    Some(_) => "wrong password",
                };
                warn!(outcome = "failure", reason = why, "sign-in failed");
                self.record(&audit("sign-in failed", why)).await;
                return Err(ApiError::invalid_credentials());
            }
        };

        self.store.reset_attempts(&user_key).await?;
        self.store.release_attempt(&ip_key).await?;
        if let Some(new_hash) = rehash {
            self.store.rehash_password(user_row.id, &user_row.password_hash, &new_hash).await?;
        }

        let session_id = uuid::Uuid::new_v4().to_string();
        let csrf = uuid::Uuid::new_v4().to_string();
        self.store.create_session(&session_id, user_row.id, &csrf, now).await?;
        let iat = now.div_euclid(1_000_000);
        let claims = Claims {
            session: session_id.clone(),
            csrf: csrf.clone(),
            org_uid: user_row.org_uid.clone(),
            sub: user_row.name.clone(),
            iat,
            exp: iat + self.config.session.max_lifetime.0.as_secs() as i64,
            iss: self.config.issuer.clone(),
        };
        let jwt = self.keys.sign(&claims).context("signing a session token")?;
        info!(outcome = "success", session = %session_id, "signed in");
        self.record(&audit("sign-in", "")).await;
        Ok(SignedIn {
            org_uid: user_row.org_uid,
            session_id,
            user_name: user_row.name,
            display_name: user_row.display_name,
            email_address: user_row.email,
            csrf,
            jwt,
            status: "OK".into(),
        })
    }

    /// Ends the caller's own session.
    #[instrument(skip_all, fields(user = %principal.user_name, session = %principal.session_id))]
    pub async fn sign_out(&self, principal: &Principal) -> Result<(), ApiError> {
        let now = self.clock.now();
        self.store.end_session(&principal.session_id, "signed out", now).await?;
        self.forget_session(&principal.session_id);
        info!("signed out");
        self.record(&AuditEvent {
            at: now,
            event: "sign-out",
            user_name: Some(&principal.user_name),
            client: None,
            detail: "",
        })
        .await;
        Ok(())
    }

    /// Writes an audit entry; a failure to audit is logged, not fatal to
    /// the request that caused it.
    pub(crate) async fn record(&self, event: &AuditEvent<'_>) {
        if let Err(e) = self.store.audit(event).await {
            warn!(error = %format!("{e:#}"), event = event.event, "could not write the audit log");
        }
    }
}

fn too_many(wait: i64) -> ApiError {
    let secs = (wait + 999_999) / 1_000_000;
    ApiError::TooManyRequests { retry_after: secs.max(1) as u64 }
}
