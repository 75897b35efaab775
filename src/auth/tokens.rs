//! JWTs (design §1.3): Ed25519-signed, `kid` in the header, claims
//! `session`, `csrf`, `org_uid`, `sub`, `iat`, `exp`, `iss`. Keys live in
//! the database as a ring: the newest key signs, and every key that may
//! still have signed a live token verifies. Only EdDSA is accepted. The
//! private keys are sealed under the secret key (`auth::secrets`): a copy
//! of the database alone cannot sign.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::secrets::Secrets;
use crate::clock::Micros;
use crate::store::{KeyRow, Store};

/// The claims of a tessera JWT.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub session: String,
    pub csrf: String,
    pub org_uid: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Why a token was refused. Every variant is a 401 on the wire.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a valid JWT")]
    Malformed,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature, algorithm or claims are invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

struct Verifier {
    key: DecodingKey,
    public: [u8; 32],
}

#[derive(Default)]
struct Ring {
    /// The newest key: (kid, key).
    signing: Option<(String, EncodingKey)>,
    /// Every key that may still verify a live token, by kid.
    verifying: HashMap<String, Verifier>,
    /// Kids in the order they were made.
    order: Vec<String>,
    /// The time this ring was built for.
    built_at: Micros,
}

/// The key ring, refreshed from the database.
#[derive(Clone)]
pub struct KeyRing {
    ring: Arc<RwLock<Arc<Ring>>>,
    /// Serializes refreshes, so a slow one cannot undo a newer one.
    refreshing: Arc<tokio::sync::Mutex<()>>,
    issuer: Arc<str>,
    max_lifetime: Micros,
    secrets: Secrets,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Makes a new Ed25519 key for the ring, its private part sealed.
pub fn new_key(now: Micros, secrets: &Secrets) -> Result<KeyRow> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness for a signing key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let der = key.to_pkcs8_der().map_err(|e| anyhow!("encoding a signing key: {e}"))?;
    let kid = uuid::Uuid::new_v4().simple().to_string();
    Ok(KeyRow {
        private_der: secrets.seal(&kid, der.as_bytes())?,
        kid,
        algorithm: "EdDSA".into(),
        public_raw: key.verifying_key().to_bytes().to_vec(),
        created_at: now,
    })
}

impl KeyRing {
    /// A ring for tokens issued by `issuer` that live at most `max_lifetime`,
    /// its private keys sealed under `secrets`.
    pub fn new(issuer: &str, max_lifetime: Micros, secrets: Secrets) -> Self {
        Self {
            ring: Arc::default(),
            refreshing: Arc::default(),
            issuer: issuer.into(),
            max_lifetime,
            secrets,
        }
    }

    /// Reloads the ring from the database, creating the first key if there
    /// is none and sealing any key stored before sealing.
    pub async fn refresh(&self, store: &Store, now: Micros) -> Result<()> {
        let _one_at_a_time = self.refreshing.lock().await;
        // Time never runs backwards for the ring, whoever computed `now` first.
        let now = now.max(self.current().built_at);
        let mut rows = store.keys().await?;
        if rows.is_empty() {
            store.add_key(&new_key(now, &self.secrets)?).await?;
            rows = store.keys().await?;
        }
        for row in &mut rows {
            if !Secrets::is_sealed(&row.private_der) {
                let sealed = self.secrets.seal(&row.kid, &row.private_der)?;
                store.seal_key(&row.kid, &row.private_der, &sealed).await?;
                row.private_der = sealed;
            }
        }
        // Rebuilt every time: besides new keys, time alone retires old ones.
        let ring = build(&rows, now, self.max_lifetime, &self.secrets)?;
        *self.ring.write().map_err(|_| anyhow!("key ring lock poisoned"))? = Arc::new(ring);
        Ok(())
    }

    fn current(&self) -> Arc<Ring> {
        self.ring.read().map(|ring| ring.clone()).unwrap_or_default()
    }

    /// The kid that signs new tokens.
    pub fn signing_kid(&self) -> Option<String> {
        self.current().signing.as_ref().map(|(kid, _)| kid.clone())
    }

    /// Signs claims with the newest key.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let ring = self.current();
        let (kid, key) = ring.signing.as_ref().context("the key ring has no signing key")?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).context("signing a JWT")
    }

    /// Verifies a token: EdDSA only, a known `kid`, a good signature, our
    /// issuer, and an `exp` in the future (no leeway).
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let ring = self.current();
        let verifier = ring.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&*self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &verifier.key, &validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        Ok(data.claims)
    }

    /// The public keys as a JWK set (RFC 7517, OKP keys of RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        let ring = self.current();
        let keys: Vec<_> = ring
            .order
            .iter()
            .filter_map(|kid| ring.verifying.get(kid).map(|v| (kid, v)))
            .map(|(kid, v)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": URL_SAFE_NO_PAD.encode(v.public),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Builds the ring from stored keys: the newest signs; a key verifies while
/// a token it signed may still be live, i.e. until `max_lifetime` after its
/// successor appeared.
fn build(rows: &[KeyRow], now: Micros, max_lifetime: Micros, secrets: &Secrets) -> Result<Ring> {
    let mut ring = Ring { built_at: now, ..Ring::default() };
    for (i, row) in rows.iter().enumerate() {
        let superseded_at = rows.get(i + 1).map(|next| next.created_at);
        if superseded_at.is_some_and(|at| at + max_lifetime < now) {
            continue;
        }
        let public: [u8; 32] = row
            .public_raw
            .as_slice()
            .try_into()
            .map_err(|_| anyhow!("signing key {} has a malformed public key", row.kid))?;
        ring.verifying
            .insert(row.kid.clone(), Verifier { key: DecodingKey::from_ed_der(&public), public });
        ring.order.push(row.kid.clone());
    }
    let newest = rows.last().context("no signing keys")?;
    let private = open(newest, secrets)?;
    ring.signing = Some((newest.kid.clone(), EncodingKey::from_ed_der(&private)));
    Ok(ring)
}

/// A stored key's private part, opened with the secret key in use.
fn open(row: &KeyRow, secrets: &Secrets) -> Result<Vec<u8>> {
    secrets.open(&row.kid, &row.private_der).map_err(|e| {
        anyhow!(
            "the database's signing key {} cannot be opened with the secret key in use ({e}): \
             start with the secret key this database was made with (key_file or TESSERA_SECRET_KEY)",
            row.kid
        )
    })
}

/// Checks that every signing key in the database opens with `secrets`
/// (`tessera check`); keys stored before sealing count as opening.
pub async fn check_sealed(store: &Store, secrets: &Secrets) -> Result<()> {
    for row in store.keys().await? {
        if Secrets::is_sealed(&row.private_der) {
            open(&row, secrets)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            session: "s".into(),
            csrf: "c".into(),
            org_uid: "o".into(),
            sub: "u".into(),
            iat: 0,
            exp,
            iss: "tessera".into(),
        }
    }

    fn secrets() -> Secrets {
        Secrets::from_master(&[3; 32])
    }

    fn new_key(now: Micros) -> Result<KeyRow> {
        super::new_key(now, &secrets())
    }

    fn ring_with(rows: &[KeyRow]) -> KeyRing {
        let ring = KeyRing::new("tessera", 3_600_000_000, secrets());
        let built = build(rows, 0, ring.max_lifetime, &secrets()).unwrap();
        *ring.ring.write().unwrap() = Arc::new(built);
        ring
    }

    #[test]
    fn a_ring_sealed_under_another_secret_key_cannot_sign() {
        let key = new_key(0).unwrap();
        assert!(Secrets::is_sealed(&key.private_der));
        let other = Secrets::from_master(&[4; 32]);
        let error = build(&[key], 0, 1, &other).err().unwrap().to_string();
        assert!(error.contains("cannot be opened with the secret key in use"), "{error}");
    }

    #[test]
    fn signed_tokens_verify_and_carry_the_kid() {
        let key = new_key(0).unwrap();
        let ring = ring_with(std::slice::from_ref(&key));
        let token = ring.sign(&claims(100)).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, Some(key.kid));
        assert_eq!(ring.verify(&token, 50).unwrap(), claims(100));
        assert!(matches!(ring.verify(&token, 100), Err(TokenError::Expired)));
    }

    #[test]
    fn old_keys_verify_after_rotation_and_unknown_keys_do_not() {
        let old = new_key(0).unwrap();
        let token = ring_with(std::slice::from_ref(&old)).sign(&claims(100)).unwrap();
        let rotated = ring_with(&[old, new_key(1).unwrap()]);
        assert!(rotated.verify(&token, 50).is_ok());
        let stranger = ring_with(&[new_key(0).unwrap()]);
        assert!(matches!(stranger.verify(&token, 50), Err(TokenError::UnknownKey)));
    }

    #[test]
    fn a_changed_payload_fails() {
        let ring = ring_with(&[new_key(0).unwrap()]);
        let token = ring.sign(&claims(100)).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(999)).unwrap());
        parts[1] = &forged;
        assert!(matches!(ring.verify(&parts.join("."), 50), Err(TokenError::Invalid)));
    }
}
