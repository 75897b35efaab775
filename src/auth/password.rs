//! Password hashing with argon2id (design §4.1). Hashing never runs on the
//! async workers: it runs on one thread per core, and a bounded queue
//! answers "busy" instead of piling up work for clients that may already
//! have given up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::config::PasswordConfig;

/// What checking a password found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password is wrong, or there was no such user.
    Wrong,
    /// The password is right; `rehash` holds a new hash when the stored one
    /// was made with other parameters.
    Right { rehash: Option<String> },
}

/// Why a password could not be checked now.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many sign-ins are waiting for a password check")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A password check waiting for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords with the configured argon2id parameters.
///
/// Checks run on a fixed set of threads, one per core, fed by a bounded
/// queue: never on the async workers, never more at once than there are
/// cores, and never on a growing crowd of blocking threads (each would keep
/// its own allocator arena holding an argon2 block of `memory_kib`). A full
/// queue answers [`HashError::Busy`]; a check whose caller has gone away is
/// skipped when its turn comes.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    queue: std::sync::mpsc::SyncSender<Job>,
    /// Verified against when the user does not exist, so that an unknown
    /// user costs as much as a wrong password.
    dummy: Arc<str>,
    /// Checks queued and not yet picked up by a hashing thread.
    waiting: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher for these parameters, with one hashing thread per core and
    /// room for 64 waiting checks per core.
    pub fn new(config: &PasswordConfig) -> Result<Self> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|e| anyhow!("invalid [password] parameters: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let dummy = dummy_hash(&params)?;
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(cores * 64);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..cores {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("tessera-hash-{n}"))
                .spawn(move || {
                    // Ends when every Hasher (every sender) is gone.
                    loop {
                        let next = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .context("starting a password hashing thread")?;
        }
        Ok(Self { params, queue, dummy: dummy.into(), waiting: Arc::default() })
    }

    /// How many password checks wait for a hashing thread now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Hashes a password (blocking; for the CLI and for tests).
    pub fn hash_blocking(&self, password: &str) -> Result<String> {
        hash_with(&self.params, password)
    }

    /// Checks `password` against `stored`, or against a dummy hash when
    /// there is no stored hash, on a hashing thread.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verdict, HashError> {
        let (reply, verdict) = tokio::sync::oneshot::channel();
        let params = self.params.clone();
        let dummy = self.dummy.clone();
        let waiting = Arc::clone(&self.waiting);
        let job: Job = Box::new(move || {
            waiting.fetch_sub(1, Ordering::Relaxed);
            if reply.is_closed() {
                return; // The caller gave up while waiting: save the hash.
            }
            let _ = reply.send(check(&params, &password, stored.as_deref(), &dummy));
        });
        // Counted before it is queued, so a thread never takes it below zero.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(job).map_err(|e| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => {
                    HashError::Failed(anyhow!("the password hashing threads stopped"))
                }
            }
        })?;
        let verdict = verdict.await.context("a password check was dropped")??;
        Ok(verdict)
    }
}

/// One password check, on a hashing thread.
fn check(params: &Params, password: &str, stored: Option<&str>, dummy: &str) -> Result<Verdict> {
    let hash = stored.unwrap_or(dummy);
    let right = verify_with(hash, password)? && stored.is_some();
    if !right {
        return Ok(Verdict::Wrong);
    }
    let rehash = if uses_params(hash, params) { None } else { Some(hash_with(params, password)?) };
    Ok(Verdict::Right { rehash })
}

/// A PHC string with the configured parameters and a random salt and
/// output: checking any password against it costs one full argon2id run and
/// never matches. Made without hashing, so start-up stays fast and small.
fn dummy_hash(params: &Params) -> Result<String> {
    let mut salt = [0u8; 16];
    let mut output = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness for the dummy hash: {e}"))?;
    getrandom::fill(&mut output).map_err(|e| anyhow!("no randomness for the dummy hash: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        base64::Engine::encode(&b64, salt),
        base64::Engine::encode(&b64, output)
    ))
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    let hash = argon2(params)
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow!("hashing a password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`; a malformed stored hash
/// is an error, not a mismatch. The parameters come from `hash` itself, so
/// the default instance checks hashes made with any parameters.
fn verify_with(hash: &str, password: &str) -> Result<bool> {
    let parsed =
        PasswordHash::new(hash).map_err(|e| anyhow!("stored password hash is malformed: {e}"))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Whether a stored hash is argon2id made with exactly these parameters.
fn uses_params(hash: &str, params: &Params) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    if parsed.algorithm.as_str() != "argon2id" {
        return false;
    }
    Params::try_from(&parsed).is_ok_and(|p| {
        p.m_cost() == params.m_cost()
            && p.t_cost() == params.t_cost()
            && p.p_cost() == params.p_cost()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordConfig {
        PasswordConfig { memory_kib: 64, iterations: 1, parallelism: 1 }
    }

    #[tokio::test]
    async fn right_and_wrong_passwords() {
        let hasher = Hasher::new(&cheap()).unwrap();
        let hash = hasher.hash_blocking("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("s3cret"));
        let ok = hasher.verify("s3cret".into(), Some(hash.clone())).await.unwrap();
        assert_eq!(ok, Verdict::Right { rehash: None });
        assert_eq!(hasher.verify("nope".into(), Some(hash)).await.unwrap(), Verdict::Wrong);
    }

    #[tokio::test]
    async fn unknown_users_never_match() {
        let hasher = Hasher::new(&cheap()).unwrap();
        for password in ["", "pw", "tessera dummy password for unknown users"] {
            let verdict = hasher.verify(password.into(), None).await;
            assert_eq!(verdict.unwrap(), Verdict::Wrong);
        }
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let dummy = dummy_hash(&params).unwrap();
        assert!(uses_params(&dummy, &params), "{dummy}");
        let real = hash_with(&params, "pw").unwrap();
        assert_eq!(dummy.len(), real.len(), "{dummy} vs {real}");
        assert!(!verify_with(&dummy, "pw").unwrap());
    }

    #[tokio::test]
    async fn a_hash_with_old_parameters_is_rehashed() {
        let old = Hasher::new(&cheap()).unwrap();
        let hash = old.hash_blocking("pw").unwrap();
        let new = Hasher::new(&PasswordConfig { memory_kib: 128, ..cheap() }).unwrap();
        let Verdict::Right { rehash: Some(rehash) } =
            new.verify("pw".into(), Some(hash)).await.unwrap()
        else {
            panic!("expected a re-hash")
        };
        assert!(rehash.contains("m=128"), "{rehash}");
    }
}
