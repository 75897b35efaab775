//! Support shared by the unit and integration tests: a test that cannot run
//! here (no PostgreSQL URL, no Node) says so, and fails instead under CI,
//! so that a missing install step cannot turn into a green run that tested
//! nothing.

/// Whether this run is CI's: the `CI` environment variable is set to
/// anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Reports a test that cannot run here: prints `skipped: {reason}`, or
/// panics with it when [`in_ci`].
pub fn skip(reason: &str) {
    assert!(!in_ci(), "CI is set, so this test may not be skipped: {reason}");
    println!("skipped: {reason}");
}
