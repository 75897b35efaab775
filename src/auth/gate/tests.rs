//! The gate's own rules, without a server: what a healthy listener vouches
//! for, which uses a flush writes, and how bearer values parse.

use super::*;

fn entry(fetched_at: Micros, settled: bool) -> Entry {
    let principal = Principal {
        session_id: "s".into(),
        user_id: 1,
        user_name: "steve".into(),
        org_uid: "cloudio".into(),
        roles: Vec::new(),
    };
    let state = SessionState {
        csrf: [1; 32],
        created_at: 0,
        last_used_at: 0,
        ended: false,
        disabled: false,
    };
    Entry {
        exp: 0,
        state,
        principal: Arc::new(principal),
        digest: [2; 32],
        fetched_at,
        settled,
        last_used: AtomicI64::new(0),
        stored_use: AtomicI64::new(0),
        refreshing: AtomicBool::new(false),
    }
}

#[test]
fn a_healthy_listener_vouches_only_for_a_read_no_notice_overlapped() {
    let hour = 3_600_000_000;
    assert!(entry(0, true).trusted(hour, true), "a settled read, healthy listener");
    assert!(!entry(0, true).trusted(hour, false), "a silent listener vouches for nothing");
    assert!(!entry(0, false).trusted(hour, true), "a read that overlapped a notice");
    assert!(entry(hour - FRESH + 1, false).trusted(hour, false), "fresh reads are trusted");
    assert!(!entry(hour - FRESH, false).trusted(hour, false));
}

#[test]
fn a_flush_takes_each_session_once_with_its_latest_use_ahead_of_the_database() {
    let cache = Cache::default();
    let (older, newer, behind) = (entry(0, true), entry(0, true), entry(0, true));
    older.last_used.store(7_000_000, Ordering::Relaxed);
    newer.last_used.store(9_000_000, Ordering::Relaxed);
    behind.last_used.store(4_000_000, Ordering::Relaxed);
    let mut other = entry(0, true);
    Arc::get_mut(&mut other.principal).unwrap().session_id = "t".into();
    other.last_used.store(3_000_000, Ordering::Relaxed);
    for (key, e) in [older, newer, behind, other].into_iter().enumerate() {
        cache.put([u8::try_from(key).unwrap(); 32], Arc::new(e));
    }
    let uses = cache.unstored_uses(5_000_000);
    let found: Vec<_> = uses.iter().map(|(e, at)| (e.principal.session_id.as_str(), *at)).collect();
    assert_eq!(found, [("s", 9_000_000)]);
}

#[test]
fn bearer_values_parse() {
    assert_eq!(parse_bearer(b"Bearer abc").unwrap(), "abc");
    assert_eq!(parse_bearer(b"bearer  abc ").unwrap(), "abc");
    assert!(parse_bearer(b"Token abc").is_err());
    assert!(parse_bearer(b"Bearer").is_err());
    assert!(parse_bearer(b"abc").is_err());
}

#[test]
fn a_bare_jwt_is_taken_as_it_is() {
    assert_eq!(parse_bearer(b"eyJh.eyJz.c2ln").unwrap(), "eyJh.eyJz.c2ln");
    assert_eq!(parse_bearer(b"  a-b_c.d.e \t").unwrap(), "a-b_c.d.e");
    for not_a_jwt in
        [&b"a.b"[..], b"a.b.c.d", b"a..c", b"a.b.", b".b.c", b"a.b+.c", b"a.b.c=", b"Token a.b.c"]
    {
        assert!(parse_bearer(not_a_jwt).is_err(), "{}", String::from_utf8_lossy(not_a_jwt));
    }
}
