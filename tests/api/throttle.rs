//! Guessing (design §4.2), one address at a time: failures counted in the
//! database, atomically; 429 with a growing `Retry-After` past a threshold;
//! a success resets its own (user, address) count. `guessing.rs` has the
//! scenarios with many addresses behind a trusted proxy.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::{Response, StatusCode};
use tessera::config::Config;

use crate::helpers::*;

fn five_pair_failures(config: &mut Config) {
    config.throttle.user_address_failures = 5;
    config.throttle.user_failures = 1000;
    config.throttle.ip_failures = 1000;
}

fn three_address_failures(config: &mut Config) {
    config.throttle.user_address_failures = 1000;
    config.throttle.user_failures = 1000;
    config.throttle.ip_failures = 3;
}

/// Asserts a 429 in the error shape and returns its `Retry-After` seconds.
async fn assert_too_many(response: Response) -> u64 {
    let retry_after = header(&response, "retry-after")
        .expect("a 429 carries Retry-After")
        .parse::<u64>()
        .expect("Retry-After is whole seconds");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_error(response, 429, "Too Many Requests").await;
    retry_after
}

fn count(entries: &[(String, Option<String>, Option<String>, String)], event: &str) -> usize {
    entries.iter().filter(|(e, ..)| e == event).count()
}

both_backends!(
    thirty_parallel_wrong_guesses_get_at_most_five_password_checks,
    config = five_pair_failures
);
async fn thirty_parallel_wrong_guesses_get_at_most_five_password_checks(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.add_user("olga", "cloudio", "0lga", &[]).await;

    let guesses = (0..30).map(|i| {
        let client = app.client.clone();
        let url = app.url("/v1/auth");
        let auth = token("steve", &format!("guess-{i}"));
        tokio::spawn(async move {
            client.post(url).header("Authorization", auth).body("{}").send().await.unwrap()
        })
    });
    let mut forbidden = 0;
    let mut too_many = 0;
    for guess in guesses.collect::<Vec<_>>() {
        let response = guess.await.unwrap();
        match response.status() {
            StatusCode::FORBIDDEN => {
                assert_seed_403(response).await;
                forbidden += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_too_many(response).await;
                too_many += 1;
            }
            other => panic!("a wrong guess got {other}"),
        }
    }

    assert!(forbidden <= 5, "{forbidden} wrong guesses were checked, at most 5 may be");
    assert_eq!(forbidden + too_many, 30);
    let entries = app.store().audit_entries().await.unwrap();
    assert_eq!(count(&entries, "sign-in failed"), forbidden, "password checks audited");
    let refused = app.store().audit_count("sign-in refused").await.unwrap();
    assert_eq!(refused, too_many as i64, "every refusal is counted");
    let rows = count(&entries, "sign-in refused");
    assert!((1..=2).contains(&rows), "refusals take one row per counter and minute, not {rows}");

    // While locked, even the right password is refused without a check.
    assert_too_many(app.sign_in("steve", "s3cret").await).await;
    // Another user is not affected.
    app.sign_in_ok("olga", "0lga").await;
}

both_backends!(
    after_the_wait_the_right_password_signs_in_and_resets_the_count,
    config = five_pair_failures
);
async fn after_the_wait_the_right_password_signs_in_and_resets_the_count(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for _ in 0..5 {
        assert_seed_403(app.sign_in("steve", "wrong").await).await;
    }
    let wait = assert_too_many(app.sign_in("steve", "s3cret").await).await;

    app.clock.advance(Duration::from_secs(wait + 1));
    app.sign_in_ok("steve", "s3cret").await;

    // The count starts again from zero: five more checked failures, then 429.
    for attempt in 1..=5 {
        let response = app.sign_in("steve", "wrong").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "failure {attempt} after the reset");
    }
    assert_too_many(app.sign_in("steve", "wrong").await).await;
}

both_backends!(retry_after_grows_with_each_further_failure, config = five_pair_failures);
async fn retry_after_grows_with_each_further_failure(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for _ in 0..5 {
        assert_seed_403(app.sign_in("steve", "wrong").await).await;
    }
    let mut waits = vec![assert_too_many(app.sign_in("steve", "wrong").await).await];

    for _ in 0..3 {
        app.clock.advance(Duration::from_secs(waits.last().unwrap() + 1));
        assert_seed_403(app.sign_in("steve", "wrong").await).await;
        waits.push(assert_too_many(app.sign_in("steve", "wrong").await).await);
    }

    assert!(waits.windows(2).all(|w| w[0] < w[1]), "Retry-After must grow: {waits:?}");
}

both_backends!(
    failures_of_many_users_from_one_address_lock_that_address,
    config = three_address_failures
);
async fn failures_of_many_users_from_one_address_lock_that_address(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    for user in ["u1", "u2", "u3"] {
        assert_seed_403(app.sign_in(user, "wrong").await).await;
    }

    let wait = assert_too_many(app.sign_in("u4", "wrong").await).await;
    assert_too_many(app.sign_in("steve", "s3cret").await).await;

    // Another address is not locked.
    let elsewhere = client_from(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
    let response = elsewhere
        .post(app.url("/v1/auth"))
        .header("Authorization", token("steve", "s3cret"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "another address must not be locked");

    app.clock.advance(Duration::from_secs(wait + 1));
    app.sign_in_ok("steve", "s3cret").await;
}

both_backends!(
    a_success_after_an_address_lock_does_not_lock_the_address_again,
    config = three_address_failures
);
async fn a_success_after_an_address_lock_does_not_lock_the_address_again(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    app.add_user("olga", "cloudio", "0lga", &[]).await;
    for user in ["u1", "u2", "u3"] {
        assert_seed_403(app.sign_in(user, "wrong").await).await;
    }
    let wait = assert_too_many(app.sign_in("steve", "s3cret").await).await;

    app.clock.advance(Duration::from_secs(wait + 1));
    app.sign_in_ok("steve", "s3cret").await;

    // No failure happened since the lock ended: the next sign-in goes through.
    app.sign_in_ok("olga", "0lga").await;
}

both_backends!(failures_older_than_the_window_no_longer_count, config = five_pair_failures);
async fn failures_older_than_the_window_no_longer_count(app: TestApp) {
    app.add_user("steve", "cloudio", "s3cret", &[]).await;
    let window = app.state.config.throttle.window.0;
    for _ in 0..4 {
        assert_seed_403(app.sign_in("steve", "wrong").await).await;
    }

    app.clock.advance(window + Duration::from_secs(1));

    // Four old failures plus four new ones would be past five; only the new count.
    for attempt in 1..=4 {
        let response = app.sign_in("steve", "wrong").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "new failure {attempt}");
    }
    app.sign_in_ok("steve", "s3cret").await;
}
