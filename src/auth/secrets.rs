//! The secret key (design §3 `[secrets]`, §4.7): 32 random bytes from
//! `TESSERA_SECRET_KEY` or the `key_file` (made, mode 0600, if missing).
//! Three keys are derived from it with HKDF-SHA256, one per use, so no two
//! uses share a key: one seals the private signing keys in the database
//! (XChaCha20-Poly1305), one peppers API key digests, one digests session
//! ids and CSRF tokens. The database alone therefore holds nothing that
//! signs a token or replays a session.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::SecretsConfig;

/// The environment variable that holds the secret key (64 hex characters,
/// or base64 of 32 bytes); it wins over the key file.
pub const ENV: &str = "TESSERA_SECRET_KEY";

/// What a sealed value starts with; a PKCS#8 DER never does (it starts 0x30).
const SEALED: &[u8] = b"tessera-sealed-v1:";

const NONCE: usize = 24;

/// The keys derived from the secret key. `Debug` shows nothing of them.
#[derive(Clone)]
pub struct Secrets {
    seal: [u8; 32],
    pepper: [u8; 32],
    digest: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// A sealed value could not be opened: another secret key sealed it, or it
/// was altered.
#[derive(Debug, thiserror::Error)]
#[error("it was sealed with another secret key, or altered")]
pub struct WrongKey;

impl Secrets {
    /// The secret key in use: `TESSERA_SECRET_KEY` if set, else the key
    /// file, made with 32 random bytes (mode 0600) if it does not exist.
    pub fn load(config: &SecretsConfig) -> Result<Self> {
        match std::env::var(ENV) {
            Ok(text) => Ok(Self::from_master(&parse_text(&text).with_context(|| {
                format!("{ENV} must be 64 hex characters or the base64 of 32 bytes")
            })?)),
            Err(_) => Ok(Self::from_master(&read_or_create(&config.key_file)?)),
        }
    }

    /// The keys derived from `master`.
    pub fn from_master(master: &[u8; 32]) -> Self {
        let hkdf = hkdf::Hkdf::<Sha256>::new(Some(b"tessera secrets"), master);
        let derive = |info: &[u8]| {
            let mut key = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
            let _ = hkdf.expand(info, &mut key);
            key
        };
        Self {
            seal: derive(b"seal signing keys"),
            pepper: derive(b"api-key pepper"),
            digest: derive(b"session digest"),
        }
    }

    /// Seals `plain`, bound to `label` (the row it belongs to).
    pub fn seal(&self, label: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| anyhow!("no randomness for a nonce: {e}"))?;
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad: label.as_bytes() })
            .map_err(|_| anyhow!("sealing a signing key failed"))?;
        Ok([SEALED, &nonce, &sealed].concat())
    }

    /// Opens what [`Secrets::seal`] sealed under the same `label`.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, WrongKey> {
        let rest = sealed.strip_prefix(SEALED).ok_or(WrongKey)?;
        if rest.len() < NONCE {
            return Err(WrongKey);
        }
        let (nonce, body) = rest.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| WrongKey)?;
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad: label.as_bytes() })
            .map_err(|_| WrongKey)
    }

    /// Whether a stored value is sealed (rows from before sealing are not).
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(SEALED)
    }

    /// The stored digest of an API key secret: HMAC-SHA-256 under the pepper.
    pub fn api_key_digest(&self, secret: &str) -> String {
        hmac_hex(&self.pepper, secret.as_bytes())
    }

    /// The stored digest of a session id.
    pub fn session_digest(&self, session_id: &str) -> String {
        hex(&self.session_mac(session_id))
    }

    /// [`Self::session_digest`] as bytes, as the gate keeps it.
    pub fn session_mac(&self, session_id: &str) -> Digest {
        hmac(&self.digest, &[b"session:", session_id.as_bytes()].concat())
    }

    /// The stored digest of a CSRF token.
    pub fn csrf_digest(&self, csrf: &str) -> String {
        hex(&self.csrf_mac(csrf))
    }

    /// [`Self::csrf_digest`] as bytes, as the gate compares it.
    pub fn csrf_mac(&self, csrf: &str) -> Digest {
        hmac(&self.digest, &[b"csrf:", csrf.as_bytes()].concat())
    }
}

/// A digest as bytes (a stored digest is its lower-case [`hex`]).
pub type Digest = [u8; 32];

/// The short form of a session digest that logs and `session list` show:
/// enough to name one session, nothing to replay it with.
pub fn handle(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

fn hmac_hex(key: &[u8; 32], message: &[u8]) -> String {
    hex(&hmac(key, message))
}

fn hmac(key: &[u8; 32], message: &[u8]) -> Digest {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{b:02x}"));
    }
    out
}

/// The 32 bytes that 64 hex characters spell, if they do.
pub fn unhex(text: &str) -> Option<Digest> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// 64 hex characters, or base64 (standard or URL-safe, padded or not) of 32 bytes.
fn parse_text(text: &str) -> Result<[u8; 32]> {
    let text = text.trim();
    if let Some(bytes) = unhex(text) {
        return Ok(bytes);
    }
    let trimmed = text.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| anyhow!("neither hex nor base64"))?;
    bytes.try_into().map_err(|b: Vec<u8>| anyhow!("{} bytes, not 32", b.len()))
}

/// Reads the key file (32 raw bytes, or the text forms of [`ENV`]), or
/// makes it if it does not exist.
fn read_or_create(path: &Path) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => {
            if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(raw);
            }
            let text = String::from_utf8(bytes).ok().and_then(|t| parse_text(&t).ok());
            text.with_context(|| {
                format!(
                    "secret key file {} must hold 32 bytes (or 64 hex characters); \
                     restore the right file, or remove it to make a new one (see README, Secrets at rest)",
                    path.display()
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => bail!("cannot read secret key file {}: {e}", path.display()),
    }
}

/// Makes the key file atomically: written whole to a private temporary
/// file, then linked into place only if no one else made it meanwhile.
fn create(path: &Path) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow!("no randomness for a secret key: {e}"))?;
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let made = write_private(&temporary, &key).and_then(|()| {
        std::fs::hard_link(&temporary, path).or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
    });
    let _ = std::fs::remove_file(&temporary);
    made.with_context(|| format!("cannot create secret key file {}", path.display()))?;
    tracing::info!(file = %path.display(), "made a new secret key file");
    // Whoever linked first made the key; read what is there now.
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read secret key file {}", path.display()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| anyhow!("secret key file {} is not 32 bytes", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_survives_hex_and_back_and_nothing_else_passes_for_one() {
        let digest: Digest = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(hex(&digest).len(), 64);
        assert_eq!(unhex(&hex(&digest)), Some(digest));
        assert_eq!(unhex(&hex(&digest).to_uppercase()), Some(digest));
        for bad in ["", "ab", &hex(&digest)[1..], &format!("{}0", hex(&digest)), &"zz".repeat(32)] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }

    #[test]
    fn sealed_values_open_with_the_same_key_and_label_only() {
        let secrets = Secrets::from_master(&[7; 32]);
        let sealed = secrets.seal("kid1", b"private").unwrap();
        assert!(Secrets::is_sealed(&sealed));
        assert!(!Secrets::is_sealed(b"\x30\x2e private"));
        assert_eq!(secrets.open("kid1", &sealed).unwrap(), b"private");
        assert!(secrets.open("kid2", &sealed).is_err());
        assert!(Secrets::from_master(&[8; 32]).open("kid1", &sealed).is_err());
        assert!(secrets.open("kid1", b"tessera-sealed-v1:short").is_err());
    }

    #[test]
    fn digests_differ_by_use_and_by_key() {
        let a = Secrets::from_master(&[1; 32]);
        let b = Secrets::from_master(&[2; 32]);
        assert_eq!(a.session_digest("x").len(), 64);
        assert_ne!(a.session_digest("x"), a.csrf_digest("x"));
        assert_ne!(a.session_digest("x"), b.session_digest("x"));
        assert_ne!(a.api_key_digest("x"), b.api_key_digest("x"));
    }

    #[test]
    fn the_key_text_is_hex_or_base64() {
        let hex_text = "00".repeat(31) + "ff";
        assert_eq!(parse_text(&hex_text).unwrap()[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(parse_text(&b64).unwrap(), [9; 32]);
        assert!(parse_text("abc").is_err());
        assert!(parse_text(&"00".repeat(16)).is_err());
    }

    #[test]
    fn a_missing_key_file_is_made_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.key");
        let made = read_or_create(&path).unwrap();
        assert_eq!(read_or_create(&path).unwrap(), made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
