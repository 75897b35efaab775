//! Who the caller is: sign-in (credentials, passwords, throttling), JWTs and
//! the key ring, and the gate every signed-in call passes (design §1.2).
//! Nothing here knows HTTP; the `http` layer hands in header values.

pub mod credentials;
pub mod gate;
pub mod password;
pub mod signin;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;

use anyhow::Result;

use crate::clock::{Clock, micros};
use crate::config::Config;
use crate::store::Store;

pub use gate::Principal;

/// Everything authentication needs, shared by all requests.
#[derive(Clone)]
pub struct Auth {
    pub store: Store,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub hasher: password::Hasher,
    pub keys: tokens::KeyRing,
    gate: Arc<gate::Cache>,
}

impl Auth {
    /// Builds the auth service and loads the key ring.
    pub async fn new(store: Store, clock: Clock, config: Arc<Config>) -> Result<Self> {
        let hasher = password::Hasher::new(&config.password)?;
        let keys = tokens::KeyRing::new(&config.issuer, micros(config.session.max_lifetime.0));
        keys.refresh(&store, clock.now()).await?;
        Ok(Self { store, clock, config, hasher, keys, gate: Arc::default() })
    }
}
