//! Signing in (design §1.1, §4.1, §4.2): throttle, check the password,
//! open a session, sign its JWT, and audit the attempt either way. A
//! password shaped like an API key goes to `key_signin` instead (§4.7).

use std::net::IpAddr;

use anyhow::Context;
use tracing::{info, instrument, warn};

use super::api_keys::Shape;
use super::password::{HashError, Verdict};
use super::throttle::{Attempt, address_key, invalid_user_name, shown};
use super::tokens::Claims;
use super::{Auth, Principal};
use crate::clock::Micros;
use crate::error::ApiError;
use crate::store::sign_ins::{NewAudit, NewSession};
use crate::store::{AuditEvent, UserRow};

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

/// Who a new session is for, and what it was opened with.
pub(crate) struct Opening {
    pub user_id: i64,
    pub name: String,
    pub org_uid: String,
    pub display_name: String,
    pub email: String,
    /// The API key used, if one was.
    pub api_key_id: Option<i64>,
    /// When the key expires, if it does: the session's JWT ends no later.
    pub expires_at: Option<Micros>,
}

impl From<UserRow> for Opening {
    fn from(user: UserRow) -> Self {
        Self {
            user_id: user.id,
            name: user.name,
            org_uid: user.org_uid,
            display_name: user.display_name,
            email: user.email,
            api_key_id: None,
            expires_at: None,
        }
    }
}

impl Auth<'_> {
    /// Signs `user` in with `password` from `client` (the client's address
    /// as resolved from the peer and any trusted proxy's headers).
    #[instrument(skip_all, fields(user = %shown(user), client = %client))]
    pub async fn sign_in(
        &self,
        user: &str,
        password: String,
        client: IpAddr,
    ) -> Result<SignedIn, ApiError> {
        let now = self.clock.now();
        let client_text = client.to_string();
        let audit = |event: &'static str, detail: &'static str| AuditEvent {
            at: now,
            event,
            user_name: Some(user),
            client: Some(&client_text),
            detail,
        };

        if let Some(why) = invalid_user_name(user) {
            // No such user can exist: refuse at once, with no hash and no
            // counter; the audit counts these per address and minute.
            info!(outcome = "refused", reason = why, "sign-in refused");
            let event = AuditEvent { user_name: None, ..audit("sign-in refused", why) };
            self.count_refusal(&event, &format!("name:{}", address_key(client))).await;
            return Err(ApiError::invalid_credentials());
        }
        match super::api_keys::shape(&password) {
            Shape::Password => {}
            Shape::Key => return self.sign_in_with_key(user, &password, client, now, audit).await,
            Shape::Mistyped => {
                // Refused on its face: no database look-up, no counter.
                warn!(outcome = "failure", reason = "mistyped API key", "sign-in failed");
                return Err(ApiError::invalid_credentials());
            }
        }

        let attempt = self.admit(user, client).await?;
        let found = self.store.user_by_name(user).await?;
        let stored = found.as_ref().map(|u| u.password_hash.clone());
        let verdict = match self.hasher.verify(password, stored).await {
            Ok(verdict) => verdict,
            Err(HashError::Busy) => {
                // Not the client's fault: give the reservations back.
                attempt.released().await?;
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
                return Err(self.failed(attempt, &audit("sign-in failed", why)).await?);
            }
        };

        attempt.succeeded().await?;
        if let Some(new_hash) = rehash {
            self.store.rehash_password(user_row.id, &user_row.password_hash, &new_hash).await?;
        }

        self.open_session(user_row.into(), &audit("sign-in", ""), now).await
    }

    /// Opens a session (stored by the digests of its id and CSRF token
    /// only, with the `audit` entry of its sign-in) and signs its JWT.
    pub(crate) async fn open_session(
        &self,
        who: Opening,
        audit: &AuditEvent<'_>,
        now: Micros,
    ) -> Result<SignedIn, ApiError> {
        let session_id = uuid::Uuid::new_v4().to_string();
        let csrf = uuid::Uuid::new_v4().to_string();
        let digest = self.secrets.session_digest(&session_id);
        let session = NewSession {
            id_digest: digest.clone(),
            user_id: who.user_id,
            csrf_digest: self.secrets.csrf_digest(&csrf),
            api_key_id: who.api_key_id,
            created_at: now,
        };
        let audit = NewAudit {
            at: audit.at,
            event: "sign-in",
            user_name: audit.user_name.map(str::to_owned),
            client: audit.client.map(str::to_owned),
            detail: audit.detail.to_owned(),
        };
        self.sign_ins.record(session, audit).await?;
        let iat = now.div_euclid(1_000_000);
        let mut exp = iat + self.config.session.max_lifetime.0.as_secs() as i64;
        if let Some(expires_at) = who.expires_at {
            exp = exp.min(expires_at.div_euclid(1_000_000));
        }
        let claims = Claims {
            session: session_id.clone(),
            csrf: csrf.clone(),
            org_uid: who.org_uid.clone(),
            sub: who.name.clone(),
            iat,
            exp,
            iss: self.config.issuer.clone(),
        };
        let jwt = self.keys.sign(&claims).context("signing a session token")?;
        info!(outcome = "success", session = super::secrets::handle(&digest), "signed in");
        Ok(SignedIn {
            org_uid: who.org_uid,
            session_id,
            user_name: who.name,
            display_name: who.display_name,
            email_address: who.email,
            csrf,
            jwt,
            status: "OK".into(),
        })
    }

    /// Ends the caller's own session.
    #[instrument(skip_all, fields(user = %principal.user_name))]
    pub async fn sign_out(&self, principal: &Principal) -> Result<(), ApiError> {
        let now = self.clock.now();
        let digest = self.secrets.session_digest(&principal.session_id);
        self.store.end_session(&digest, "signed out", now).await?;
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

    /// A failed sign-in: counted against `attempt`, logged and audited
    /// (`event.detail` says why); the seed's 403 for the client.
    pub(crate) async fn failed(
        &self,
        attempt: Attempt,
        event: &AuditEvent<'_>,
    ) -> Result<ApiError, ApiError> {
        attempt.failed().await?;
        warn!(outcome = "failure", reason = event.detail, "sign-in failed");
        self.record(event).await;
        Ok(ApiError::invalid_credentials())
    }

    /// Writes an audit entry; a failure to audit is logged, not fatal to
    /// the request that caused it.
    pub(crate) async fn record(&self, event: &AuditEvent<'_>) {
        if let Err(e) = self.store.audit(event).await {
            warn!(error = %format!("{e:#}"), event = event.event, "could not write the audit log");
        }
    }
}
