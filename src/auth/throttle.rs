//! Guessing (design §4.2): which counters a sign-in attempt is held to, how
//! it waits for attempts still being checked, and how a refusal is counted.
//!
//! Every attempt is held to three counters: its (user name, address) pair,
//! its user name from anywhere, and its address with any user name. IPv6
//! addresses count per /64, since one host commonly holds a whole /64.
//! The counting itself is in [`crate::store::throttle`]; this module holds
//! the policy and the guard that gives a reservation back if a request is
//! dropped half-way (a client that hangs up must not hold the budget).

use std::net::IpAddr;
use std::time::Duration;

use tracing::{info, warn};

use super::Auth;
use crate::clock::{Clock, Micros, micros};
use crate::error::ApiError;
use crate::store::throttle::{Counter, Outcome, Reservation, Timing};
use crate::store::{AuditEvent, Store};

/// Longest user name looked up; longer ones cannot exist.
pub const MAX_USER_NAME: usize = 256;

/// How long an attempt waits for attempts of the same counters that are
/// still being checked, before answering 503. Checks are bounded by the
/// hashing queue, so in practice waits are far shorter.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// A reservation older than this was lost by a crashed instance.
const LEASE: Duration = Duration::from_secs(30);

/// The first wait past a threshold: 1 s, doubling with each further failure.
const BASE_WAIT: Micros = 1_000_000;

/// Why a user name cannot exist, if it cannot (design §1.1).
pub fn invalid_user_name(user: &str) -> Option<&'static str> {
    if user.len() > MAX_USER_NAME {
        Some("user name longer than 256 bytes")
    } else if user.chars().any(char::is_control) {
        Some("user name holds a control character")
    } else {
        None
    }
}

/// A user name as logs show it: escaped (a newline cannot forge a log line)
/// and cut to 64 characters.
pub fn shown(user: &str) -> String {
    let mut text: String = user.chars().take(64).flat_map(char::escape_debug).collect();
    if user.chars().nth(64).is_some() {
        text.push('…');
    }
    text
}

/// The address a counter is kept for: IPv4 as is, IPv6 as its /64.
pub fn address_key(client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map_or_else(|_| v6.to_string(), |net| net.trunc().to_string()),
    }
}

/// The three counters of one attempt, tightest first.
pub fn counters(user: &str, address: &str, config: &crate::config::ThrottleConfig) -> [Counter; 3] {
    let limit = |n: u32| i64::from(n.max(1));
    [
        Counter {
            key: format!("ua:{address}|{user}"),
            threshold: limit(config.user_address_failures),
        },
        Counter { key: format!("user:{user}"), threshold: limit(config.user_failures) },
        Counter { key: format!("ip:{address}"), threshold: limit(config.ip_failures) },
    ]
}

/// What a refusal by the counter `key` tells the audit.
fn refusal_reason(key: &str) -> &'static str {
    if key.starts_with("ua:") {
        "too many failures of this user from this address"
    } else if key.starts_with("user:") {
        "too many failures for this user"
    } else {
        "too many failures from this address"
    }
}

/// A reserved attempt. End it with [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropped without either, it gives its
/// reservations back in the background.
#[must_use]
pub struct Attempt {
    store: Store,
    clock: Clock,
    window: Micros,
    keys: Option<[String; 3]>,
}

impl Attempt {
    fn timing(&self) -> Timing {
        timing(&self.clock, self.window)
    }

    /// The password check failed: every counter counts a failure.
    pub async fn failed(mut self) -> anyhow::Result<()> {
        let Some(keys) = self.keys.take() else { return Ok(()) };
        let keys = keys.each_ref().map(String::as_str);
        self.store.finish_attempt(&keys, Outcome::Failed, self.timing()).await
    }

    /// The sign-in succeeded: the reservations go back, and the attempt's own
    /// (user, address) count starts again. The user's and the address's
    /// counts stay, so a success never hands an attacker a fresh budget.
    pub async fn succeeded(mut self) -> anyhow::Result<()> {
        let Some(keys) = self.keys.take() else { return Ok(()) };
        let keys = keys.each_ref().map(String::as_str);
        let outcome = Outcome::Succeeded { reset: keys[0] };
        self.store.finish_attempt(&keys, outcome, self.timing()).await
    }

    /// No check happened: give the reservations back.
    pub async fn released(mut self) -> anyhow::Result<()> {
        let Some(keys) = self.keys.take() else { return Ok(()) };
        let keys = keys.each_ref().map(String::as_str);
        self.store.finish_attempt(&keys, Outcome::Released, self.timing()).await
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let Some(keys) = self.keys.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, timing) = (self.store.clone(), self.timing());
        runtime.spawn(async move {
            let keys = keys.each_ref().map(String::as_str);
            if let Err(e) = store.finish_attempt(&keys, Outcome::Released, timing).await {
                warn!(error = %format!("{e:#}"), "could not give back a sign-in reservation");
            }
        });
    }
}

fn timing(clock: &Clock, window: Micros) -> Timing {
    Timing { now: clock.now(), window, lease: micros(LEASE), base_wait: BASE_WAIT }
}

impl Auth<'_> {
    /// Reserves a password check for `user` from `client`, waiting (for a
    /// bounded time) while the budget is held by attempts being checked.
    /// A locked counter is a 429 that costs no hash; the refusal is counted
    /// in the audit, one row per counter and minute.
    pub(crate) async fn admit(&self, user: &str, client: IpAddr) -> Result<Attempt, ApiError> {
        let address = address_key(client);
        let counters = counters(user, &address, &self.config.throttle);
        let window = micros(self.config.throttle.window.0);
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let timing = timing(self.clock, window);
            match self.store.reserve_attempt(&counters, timing).await? {
                Reservation::Reserved => {
                    let keys = counters.map(|c| c.key);
                    return Ok(Attempt {
                        store: self.store.clone(),
                        clock: self.clock.clone(),
                        window,
                        keys: Some(keys),
                    });
                }
                Reservation::Locked { key, wait } => {
                    let reason = refusal_reason(&key);
                    info!(outcome = "refused", reason, "sign-in refused");
                    let client = client.to_string();
                    let event = AuditEvent {
                        at: timing.now,
                        event: "sign-in refused",
                        user_name: Some(user),
                        client: Some(&client),
                        detail: reason,
                    };
                    self.count_refusal(&event, &key).await;
                    return Err(too_many(wait));
                }
                Reservation::Held => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(ApiError::Unavailable(anyhow::anyhow!(
                            "sign-ins of one account waited {MAX_WAIT:?} for each other's checks"
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }

    /// Counts a refused sign-in in the audit under `key`'s bucket for the
    /// current minute; a failure to audit is logged, not fatal.
    pub(crate) async fn count_refusal(&self, event: &AuditEvent<'_>, key: &str) {
        let minute = event.at.div_euclid(60_000_000);
        let bucket = format!("{minute}|{}|{key}", event.event);
        if let Err(e) = self.store.audit_refusal(event, &bucket).await {
            warn!(error = %format!("{e:#}"), "could not count a refused sign-in");
        }
    }
}

/// The 429 for a lock that ends in `wait` microseconds.
fn too_many(wait: Micros) -> ApiError {
    let secs = (wait + 999_999) / 1_000_000;
    ApiError::TooManyRequests { retry_after: secs.max(1) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_and_control_characters_cannot_exist() {
        assert_eq!(invalid_user_name("steve"), None);
        assert_eq!(invalid_user_name(&"x".repeat(256)), None);
        assert_eq!(invalid_user_name("jürgen"), None);
        assert!(invalid_user_name(&"x".repeat(257)).is_some());
        for bad in ["a\0b", "steve\nINFO forged", "tab\there", "del\u{7f}", "c1\u{85}"] {
            assert!(invalid_user_name(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn logged_names_are_escaped_and_cut() {
        assert_eq!(shown("steve"), "steve");
        assert_eq!(shown("steve\nINFO signed in"), "steve\\nINFO signed in");
        let long = shown(&"x".repeat(300_000));
        assert_eq!(long, format!("{}…", "x".repeat(64)));
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2::9"), key("2001:db8:1:2:ffff::1"));
        assert_ne!(key("2001:db8:1:2::9"), key("2001:db8:1:3::9"));
    }

    #[test]
    fn counters_are_tightest_first_and_never_zero() {
        let config = crate::config::ThrottleConfig { user_failures: 0, ..Default::default() };
        let [pair, user, address] = counters("steve", "192.0.2.7", &config);
        assert_eq!((pair.key.as_str(), pair.threshold), ("ua:192.0.2.7|steve", 5));
        assert_eq!((user.key.as_str(), user.threshold), ("user:steve", 1));
        assert_eq!((address.key.as_str(), address.threshold), ("ip:192.0.2.7", 50));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let secs = |wait| match too_many(wait) {
            ApiError::TooManyRequests { retry_after } => retry_after,
            _ => unreachable!(),
        };
        assert_eq!(secs(1), 1);
        assert_eq!(secs(1_000_000), 1);
        assert_eq!(secs(1_000_001), 2);
    }
}
