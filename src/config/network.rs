//! `[network]` (design §3): how tessera meets the network: browser origins
//! (`cors_origins`), the metrics listener (`metrics_listen`), the proxies
//! whose forwarding headers are believed (`trusted_proxies`), and the
//! deadlines and caps that keep slow or idle clients from holding the server
//! (design §4.8). The table denies unknown keys like the rest of the file.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::HumanDuration;

/// `[network]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// A request head must arrive within this (default 10 s).
    pub header_timeout: HumanDuration,
    /// A whole request, body included, must be answered within this
    /// (default 30 s); past it the answer is 408 and the connection closes.
    pub request_timeout: HumanDuration,
    /// A keep-alive connection with no request in flight is closed after
    /// this long (default 75 s).
    pub keep_alive_timeout: HumanDuration,
    /// At most this many connections are served at once (default 10,000);
    /// more wait in the listener's accept queue.
    pub max_connections: NonZeroUsize,
    /// One database statement may run this long (default 5 s).
    pub statement_timeout: HumanDuration,
    /// Browser origins allowed to call the API across origins (design §1.2),
    /// each `scheme://host[:port]` in lower case, or `"*"` for any. Empty
    /// (the default): no CORS headers at all.
    #[serde(deserialize_with = "origins")]
    pub cors_origins: Vec<String>,
    /// Serve `GET /metrics` only on this address (not on `listen`).
    pub metrics_listen: Option<String>,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` is believed: CIDRs
    /// (`"10.0.0.0/8"`) or single addresses (`"10.0.0.7"`).
    #[serde(deserialize_with = "cidrs")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A list of CIDRs; a bare address is the network of that one address.
fn cidrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "invalid trusted proxy {text:?}: write a CIDR like \"10.0.0.0/8\" or an address like \"10.0.0.7\""
                    ))
                })
        })
        .collect()
}

impl Default for NetworkConfig {
    fn default() -> Self {
        let secs = |s| HumanDuration(Duration::from_secs(s));
        Self {
            header_timeout: secs(10),
            request_timeout: secs(30),
            keep_alive_timeout: secs(75),
            max_connections: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            statement_timeout: secs(5),
            cors_origins: Vec::new(),
            metrics_listen: None,
            trusted_proxies: Vec::new(),
        }
    }
}

fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|origin| parse_origin(origin))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

/// One entry of `cors_origins`: `"*"`, or an origin as a browser sends it
/// in the `Origin` header (`scheme://host[:port]`, no path, no trailing
/// slash), lower-cased as browsers serialize it.
pub fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let bad = || {
        format!(
            "cors_origins: {text:?} is not an origin: write scheme://host[:port] with no path or trailing slash, like \"https://app.example.com\", or \"*\" for any origin"
        )
    };
    let (scheme, host) = text.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host_ok =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_graphic() && !"/?#@\\".contains(c));
    if !scheme_ok || !host_ok {
        return Err(bad());
    }
    Ok(text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_as_browsers_send_them() {
        assert_eq!(parse_origin("*").unwrap(), "*");
        assert_eq!(parse_origin("https://app.example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://127.0.0.1:5173").unwrap(), "http://127.0.0.1:5173");
        assert_eq!(parse_origin("HTTPS://App.Example.com").unwrap(), "https://app.example.com");
        assert_eq!(parse_origin("http://[::1]:8080").unwrap(), "http://[::1]:8080");
    }

    #[test]
    fn paths_slashes_and_bare_hosts_are_refused_with_an_example() {
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/x",
            "app.example.com",
            "https://",
            "://x",
            "https://a b",
            "",
            "null",
        ] {
            let err = parse_origin(bad).unwrap_err();
            assert!(err.contains("scheme://host[:port]"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_default_is_no_origins_and_unknown_keys_are_named() {
        let config = crate::config::Config::parse("").unwrap();
        assert!(config.network.cors_origins.is_empty());
        assert_eq!(config.network.header_timeout.0, Duration::from_secs(10));
        assert_eq!(config.network.request_timeout.0, Duration::from_secs(30));
        assert_eq!(config.network.keep_alive_timeout.0, Duration::from_secs(75));
        assert_eq!(config.network.max_connections.get(), 10_000);
        assert_eq!(config.network.statement_timeout.0, Duration::from_secs(5));
        let config = crate::config::Config::parse(
            "[network]\nheader_timeout = \"2s\"\nmax_connections = 3\nstatement_timeout = \"250ms\"\n",
        )
        .unwrap();
        assert_eq!(config.network.header_timeout.0, Duration::from_secs(2));
        assert_eq!(config.network.max_connections.get(), 3);
        let err = crate::config::Config::parse("[network]\nmax_connections = 0\n").unwrap_err();
        assert!(err.contains("nonzero"), "{err}");
        assert_eq!(config.network.statement_timeout.0, Duration::from_millis(250));
        let config = crate::config::Config::parse(
            "[network]\ncors_origins = [\"*\", \"https://A.example\"]\n",
        )
        .unwrap();
        assert_eq!(config.network.cors_origins, ["*", "https://a.example"]);
        let err = crate::config::Config::parse("[network]\ncors = []\n").unwrap_err();
        assert!(err.contains("cors"), "{err}");
        let err = crate::config::Config::parse("[network]\ncors_origins = [\"https://a/\"]\n")
            .unwrap_err();
        assert!(err.contains("https://a/") && err.contains("line 2"), "{err}");
    }
}
