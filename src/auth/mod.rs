//! Who the caller is: sign-in (credentials, passwords, throttling), JWTs and
//! the key ring, and the gate every signed-in call passes (design §1.2).
//! Nothing here knows HTTP; the `http` layer hands in header values.

pub mod api_keys;
pub mod credentials;
pub mod gate;
mod key_signin;
pub mod password;
pub mod principal;
pub mod secrets;
pub mod signin;
pub mod throttle;
pub mod tokens;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

pub use gate::Caller;
pub use principal::Principal;

/// What sign-in and the gate work with, borrowed from the application state
/// for one call: the parts are the application's, this is only a view.
#[derive(Clone, Copy)]
pub struct Auth<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub config: &'a Config,
    pub hasher: &'a password::Hasher,
    pub keys: &'a tokens::KeyRing,
    pub secrets: &'a secrets::Secrets,
    pub sign_ins: &'a crate::store::sign_ins::SignIns,
    pub gate: &'a gate::Cache,
}
