//! `[network]` (design §3): how tessera meets the network: browser origins
//! (`cors_origins`), the metrics listener (`metrics_listen`) and the proxies
//! whose forwarding headers are believed (`trusted_proxies`). The table
//! denies unknown keys like the rest of the file.

use serde::{Deserialize, Deserializer};

/// `[network]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
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
