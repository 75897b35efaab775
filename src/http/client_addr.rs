//! The client's address (design §4.2): the TCP peer, or, when the peer is in
//! `[network] trusted_proxies`, the right-most address of `X-Forwarded-For`
//! that is not a trusted proxy. A request without `X-Forwarded-For` is read
//! from RFC 7239 `Forwarded` the same way.
//!
//! Right-most, because each proxy appends the address it saw: everything
//! left of the first untrusted hop was written by that hop, who may be the
//! attacker. `X-Forwarded-For` wins over `Forwarded` because it is what
//! nearly every load balancer maintains; a client's own `Forwarded` is then
//! never believed.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use forwarded_header_value::{ForwardedStanza, Identifier};
use ipnet::IpNet;

/// The address a request comes from, given its TCP `peer`, its headers and
/// the trusted proxies. A hop that cannot be read (`unknown`, an obfuscated
/// name, garbage) ends the walk at the trusted hop that reported it.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    for hop in hops_right_to_left(headers) {
        let Some(ip) = hop.map(|ip| ip.to_canonical()) else { return client };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The addresses the proxies reported, nearest first: the entries of every
/// `X-Forwarded-For` line (or, without one, every `Forwarded` line's `for=`),
/// from the right. `None` for an entry that names no address.
fn hops_right_to_left(headers: &HeaderMap) -> Box<dyn Iterator<Item = Option<IpAddr>> + '_> {
    let xff = headers.get_all("x-forwarded-for");
    let (lines, parse): (_, fn(&str) -> Option<IpAddr>) = if xff.iter().next().is_some() {
        (xff, |entry| Identifier::from_str(entry).ok().and_then(|id| id.ip()))
    } else {
        (headers.get_all(FORWARDED), |entry| {
            ForwardedStanza::from_str(entry).ok().and_then(|stanza| stanza.forwarded_for_ip())
        })
    };
    Box::new(lines.into_iter().rev().flat_map(move |line| {
        let entries: Box<dyn Iterator<Item = Option<IpAddr>>> = match line.to_str() {
            Ok(text) => {
                Box::new(text.rsplit(',').map(str::trim).filter(|e| !e.is_empty()).map(parse))
            }
            Err(_) => Box::new(std::iter::once(None)),
        };
        entries
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn resolve(peer: &str, pairs: &[(&'static str, &str)], trusted: &[&str]) -> IpAddr {
        client_address(ip(peer), &headers(pairs), &nets(trusted))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let xff = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(resolve("127.0.0.1", &xff, &[]), ip("127.0.0.1"));
        assert_eq!(resolve("198.51.100.1", &xff, &["127.0.0.0/8"]), ip("198.51.100.1"));
    }

    #[test]
    fn a_trusted_peer_gives_the_right_most_untrusted_address() {
        let trusted = ["127.0.0.0/8", "10.0.0.0/8"];
        let spoofed = [("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")];
        assert_eq!(resolve("127.0.0.1", &spoofed, &trusted), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let lines = [("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9, 10.0.0.5")];
        assert_eq!(resolve("127.0.0.1", &lines, &trusted), ip("203.0.113.9"));
        // Without a header the trusted peer itself is the client.
        assert_eq!(resolve("127.0.0.1", &[], &trusted), ip("127.0.0.1"));
        // Only trusted hops: the farthest one.
        let inner = [("x-forwarded-for", "10.0.0.9, 10.0.0.5")];
        assert_eq!(resolve("127.0.0.1", &inner, &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn garbage_left_of_the_client_is_ignored_and_garbage_at_a_hop_stops_there() {
        let trusted = ["127.0.0.0/8", "10.0.0.0/8"];
        let left = [("x-forwarded-for", "not an address, , 203.0.113.9")];
        assert_eq!(resolve("127.0.0.1", &left, &trusted), ip("203.0.113.9"));
        let hop = [("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.5")];
        assert_eq!(resolve("127.0.0.1", &hop, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_read() {
        let trusted = ["127.0.0.0/8"];
        let port = [("x-forwarded-for", "203.0.113.9:4711")];
        assert_eq!(resolve("127.0.0.1", &port, &trusted), ip("203.0.113.9"));
        let v6 = [("x-forwarded-for", "[2001:db8::7]:4711")];
        assert_eq!(resolve("127.0.0.1", &v6, &trusted), ip("2001:db8::7"));
        let mapped = [("x-forwarded-for", "::ffff:203.0.113.9")];
        assert_eq!(resolve("::ffff:127.0.0.1", &mapped, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_is_read_only_without_x_forwarded_for() {
        let trusted = ["127.0.0.0/8"];
        let rfc =
            [("forwarded", r#"for=198.51.100.1, for="[2001:db8:cafe::17]:4711";proto=https"#)];
        assert_eq!(resolve("127.0.0.1", &rfc, &trusted), ip("2001:db8:cafe::17"));
        let spaced = [("forwarded", "proto=https; for=198.51.100.1")];
        assert_eq!(resolve("127.0.0.1", &spaced, &trusted), ip("198.51.100.1"));
        let both = [("forwarded", "for=198.51.100.1"), ("x-forwarded-for", "203.0.113.9")];
        assert_eq!(resolve("127.0.0.1", &both, &trusted), ip("203.0.113.9"));
    }
}
