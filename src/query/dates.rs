//! The relative date operators of design §1.4 (`today`, `last7Days`,
//! `thisWeek`, `inThePast`, ...): each becomes fixed bounds, computed in
//! UTC from the request's `now` (the server's injected clock, so tests move
//! time rather than wait for it).

use chrono::{Datelike, Days, NaiveDate};

use super::bind::{Cmp, Test};
use super::filter::Op;
use crate::catalog::AttrType;
use crate::catalog::values::Scalar;
use crate::clock::{Micros, iso8601};

/// What a relative operator covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// Whole UTC days, both included.
    Days(NaiveDate, NaiveDate),
    /// Strictly before now (before today, for a Date attribute).
    Past,
    /// Strictly after now (after today, for a Date attribute).
    Future,
}

/// The span of relative operator `op` at `now`; `None` if `op` is not
/// relative or the span leaves the years 0001–9999.
pub fn span(op: Op, now: Micros) -> Option<Span> {
    let today = chrono::DateTime::from_timestamp_micros(now)?.date_naive();
    let back = |n| today.checked_sub_days(Days::new(n));
    let ahead = |n| today.checked_add_days(Days::new(n));
    let (first, last) = match op {
        Op::Today => (today, today),
        Op::Yesterday => (back(1)?, back(1)?),
        Op::Tomorrow => (ahead(1)?, ahead(1)?),
        Op::Last7Days => (back(6)?, today),
        Op::Next7Days => (today, ahead(6)?),
        Op::ThisWeek => {
            let monday = back(u64::from(today.weekday().num_days_from_monday()))?;
            (monday, monday.checked_add_days(Days::new(6))?)
        }
        Op::ThisMonth => {
            let first = today.with_day(1)?;
            let next = first.checked_add_months(chrono::Months::new(1))?;
            (first, next.pred_opt()?)
        }
        Op::ThisYear => (
            NaiveDate::from_ymd_opt(today.year(), 1, 1)?,
            NaiveDate::from_ymd_opt(today.year(), 12, 31)?,
        ),
        Op::InThePast => return Some(Span::Past),
        Op::InTheFuture => return Some(Span::Future),
        _ => return None,
    };
    Some(Span::Days(first, last))
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The test of relative operator `op` on an attribute of type `kind` (Date
/// or DateTime) at `now`.
pub fn relative_test(kind: AttrType, op: Op, now: Micros) -> Result<Test, String> {
    let span = span(op, now).ok_or("the date is out of range")?;
    let today = day(chrono::DateTime::from_timestamp_micros(now).ok_or("bad clock")?.date_naive());
    Ok(match (kind, span) {
        (AttrType::Date, Span::Days(a, b)) if a == b => Test::Cmp(Cmp::Eq, Scalar::Date(day(a))),
        (AttrType::Date, Span::Days(a, b)) => {
            Test::Between(Scalar::Date(day(a)), Scalar::Date(day(b)))
        }
        (AttrType::Date, Span::Past) => Test::Cmp(Cmp::Lt, Scalar::Date(today)),
        (AttrType::Date, Span::Future) => Test::Cmp(Cmp::Gt, Scalar::Date(today)),
        (_, Span::Days(a, b)) => Test::Between(
            Scalar::DateTime(format!("{}T00:00:00.000000Z", day(a))),
            Scalar::DateTime(format!("{}T23:59:59.999999Z", day(b))),
        ),
        (_, Span::Past) => Test::Cmp(Cmp::Lt, Scalar::DateTime(iso8601(now))),
        (_, Span::Future) => Test::Cmp(Cmp::Gt, Scalar::DateTime(iso8601(now))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Micros {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    fn days(op: Op, now: &str) -> (String, String) {
        match span(op, at(now)).unwrap() {
            Span::Days(a, b) => (day(a), day(b)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spans_are_utc_days_around_now() {
        // A Wednesday, late in the UTC day (still Wednesday in UTC).
        let now = "2024-02-28T23:30:00Z";
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(days(Op::Today, now), pair("2024-02-28", "2024-02-28"));
        assert_eq!(days(Op::Yesterday, now), pair("2024-02-27", "2024-02-27"));
        assert_eq!(days(Op::Tomorrow, now), pair("2024-02-29", "2024-02-29"));
        assert_eq!(days(Op::Last7Days, now), pair("2024-02-22", "2024-02-28"));
        assert_eq!(days(Op::Next7Days, now), pair("2024-02-28", "2024-03-05"));
        assert_eq!(days(Op::ThisWeek, now), pair("2024-02-26", "2024-03-03"));
        assert_eq!(days(Op::ThisMonth, now), pair("2024-02-01", "2024-02-29"));
        assert_eq!(days(Op::ThisYear, now), pair("2024-01-01", "2024-12-31"));
        // An offset that is already tomorrow elsewhere changes nothing: UTC.
        assert_eq!(days(Op::Today, "2024-02-29T01:30:00+02:00"), pair("2024-02-28", "2024-02-28"));
        // ISO weeks start on Monday; a Sunday belongs to the week before.
        assert_eq!(days(Op::ThisWeek, "2024-03-03T12:00:00Z"), pair("2024-02-26", "2024-03-03"));
        assert_eq!(days(Op::ThisWeek, "2024-03-04T00:00:00Z"), pair("2024-03-04", "2024-03-10"));
        assert_eq!(days(Op::ThisMonth, "2023-12-31T00:00:00Z"), pair("2023-12-01", "2023-12-31"));
        assert_eq!(span(Op::InThePast, 0), Some(Span::Past));
        assert_eq!(span(Op::Is, 0), None);
    }

    #[test]
    fn tests_fit_the_attribute_type() {
        let now = at("2024-02-28T10:00:00Z");
        let d = |s: &str| Scalar::Date(s.into());
        let t = |s: &str| Scalar::DateTime(s.into());
        assert_eq!(
            relative_test(AttrType::Date, Op::Today, now),
            Ok(Test::Cmp(Cmp::Eq, d("2024-02-28")))
        );
        assert_eq!(
            relative_test(AttrType::Date, Op::Last7Days, now),
            Ok(Test::Between(d("2024-02-22"), d("2024-02-28")))
        );
        assert_eq!(
            relative_test(AttrType::Date, Op::InThePast, now),
            Ok(Test::Cmp(Cmp::Lt, d("2024-02-28")))
        );
        assert_eq!(
            relative_test(AttrType::DateTime, Op::Yesterday, now),
            Ok(Test::Between(t("2024-02-27T00:00:00.000000Z"), t("2024-02-27T23:59:59.999999Z")))
        );
        assert_eq!(
            relative_test(AttrType::DateTime, Op::InTheFuture, now),
            Ok(Test::Cmp(Cmp::Gt, t("2024-02-28T10:00:00.000000Z")))
        );
    }
}
