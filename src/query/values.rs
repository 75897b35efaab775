//! Values by attribute type, both ways: JSON from the client becomes a typed
//! [`Scalar`] (and then a bound SQL value, cast where PostgreSQL needs it),
//! and text read from the database becomes JSON again.
//!
//! Every column is read as text (see [`read_expr`]) so one reader serves
//! both backends; [`write_cell`] turns that text into the same JSON on both.

use sea_query::{Expr, ExprTrait, Value};
use serde_json::Value as Json;

use crate::catalog::{AttrType, Attribute, Family};
use crate::store::Backend;

/// A value of an attribute's type, normalised, ready to bind.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i64),
    /// A finite decimal number as the client wrote it (`10.10`, `1e3`).
    Num(String),
    Double(f64),
    /// `YYYY-MM-DD`.
    Date(String),
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC.
    DateTime(String),
    Bool(bool),
}

/// The earliest and latest instants accepted (years 0001 to 9999), so that
/// date-time text keeps its fixed width and text order stays time order.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// A date-time string (RFC 3339 with an offset, or a plain date meaning its
/// midnight UTC) as fixed-width UTC text with microseconds.
pub fn datetime(text: &str) -> Option<String> {
    let micros = match parse_day(text) {
        Some(day) => day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros(),
        None => chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros(),
    };
    (MIN_MICROS..=MAX_MICROS).contains(&micros).then(|| crate::clock::iso8601(micros))
}

/// A `YYYY-MM-DD` date, normalised.
pub fn date(text: &str) -> Option<String> {
    let day = parse_day(text)?;
    let text = day.format("%Y-%m-%d").to_string();
    (text.len() == 10 && !text.starts_with("0000")).then_some(text)
}

/// A `YYYY-MM-DD` day (exactly ten characters).
pub fn parse_day(text: &str) -> Option<chrono::NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A JSON number as a finite decimal: its text, if `f64` can hold its size.
fn decimal(value: &Json) -> Option<String> {
    let Json::Number(n) = value else { return None };
    let text = n.to_string();
    text.parse::<f64>().ok().filter(|f| f.is_finite()).map(|_| text)
}

/// Converts a (non-null) JSON value to the attribute type's scalar; the
/// error says what was expected. `lenient_int` lets an Integer attribute
/// take a fractional number (for filter comparisons).
pub fn from_json(kind: AttrType, value: &Json, lenient_int: bool) -> Result<Scalar, String> {
    let expected = || format!("expected {}", kind.expected());
    match (kind.family(), kind) {
        (Family::Text, AttrType::YN) => match value.as_str() {
            Some(s @ ("Y" | "N")) => Ok(Scalar::Text(s.to_owned())),
            _ => Err(expected()),
        },
        (Family::Text, _) => {
            value.as_str().map(|s| Scalar::Text(s.to_owned())).ok_or_else(expected)
        }
        (_, AttrType::Integer) => match value.as_i64() {
            Some(i) => Ok(Scalar::Int(i)),
            None if lenient_int => decimal(value).map(Scalar::Num).ok_or_else(expected),
            None if value.is_number() => Err(format!("{} in range", expected())),
            None => Err(expected()),
        },
        (_, AttrType::Double) => value
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Scalar::Double)
            .ok_or_else(|| format!("{} within the range of a double", expected())),
        (Family::Number, _) => decimal(value).map(Scalar::Num).ok_or_else(expected),
        (_, AttrType::Date) => value.as_str().and_then(date).map(Scalar::Date).ok_or_else(expected),
        (Family::Date, _) => {
            value.as_str().and_then(datetime).map(Scalar::DateTime).ok_or_else(expected)
        }
        (Family::Boolean, _) => value.as_bool().map(Scalar::Bool).ok_or_else(expected),
    }
}

impl Scalar {
    /// The bound SQL value, with the cast PostgreSQL needs for text-bound
    /// decimals, dates and date-times (SQLite keeps those as text, and
    /// decimals go through `CAST(? AS NUMERIC)` there too).
    pub fn to_expr(&self, backend: Backend) -> Expr {
        match (self, backend) {
            (Self::Text(s), _) => Expr::val(s.as_str()),
            (Self::Int(i), _) => Expr::val(*i),
            (Self::Num(s), _) => Expr::val(s.as_str()).cast_as("NUMERIC"),
            (Self::Double(f), _) => Expr::val(*f),
            (Self::Date(s), Backend::Postgres) => Expr::val(s.as_str()).cast_as("DATE"),
            (Self::DateTime(s), Backend::Postgres) => Expr::val(s.as_str()).cast_as("TIMESTAMPTZ"),
            (Self::Date(s) | Self::DateTime(s), Backend::Sqlite) => Expr::val(s.as_str()),
            (Self::Bool(b), _) => Expr::val(*b),
        }
    }
}

/// A typed SQL NULL for an attribute (PostgreSQL wants to know the type).
pub fn null_expr(kind: AttrType, backend: Backend) -> Expr {
    let text = || Expr::val(Value::String(None));
    match (kind.family(), kind, backend) {
        (Family::Text, ..) => text(),
        (_, AttrType::Integer, _) => Expr::val(Value::BigInt(None)),
        (_, AttrType::Double, _) => Expr::val(Value::Double(None)),
        (Family::Number, ..) => text().cast_as("NUMERIC"),
        (Family::Date, _, Backend::Sqlite) => text(),
        (_, AttrType::Date, Backend::Postgres) => text().cast_as("DATE"),
        (Family::Date, _, Backend::Postgres) => text().cast_as("TIMESTAMPTZ"),
        _ => Expr::val(Value::Bool(None)),
    }
}

/// The expression that reads an attribute's column as text.
pub fn read_expr(attr: &Attribute, backend: Backend) -> Expr {
    let col = Expr::col(attr.column.clone());
    match (attr.kind, backend) {
        (AttrType::DateTime, Backend::Postgres) => Expr::cust_with_expr(
            r#"to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#,
            col,
        ),
        (AttrType::Date, Backend::Postgres) => {
            Expr::cust_with_expr("to_char($1, 'YYYY-MM-DD')", col)
        }
        // All 17 significant digits, so the double survives the trip exactly.
        (AttrType::Double, Backend::Sqlite) => Expr::cust_with_exprs(
            "CASE WHEN ? IS NULL THEN NULL ELSE printf('%!.17g', ?) END",
            [col.clone(), col],
        ),
        (kind, Backend::Sqlite)
            if kind.family() == Family::Text || kind.family() == Family::Date =>
        {
            col.cast_as("TEXT")
        }
        (kind, Backend::Postgres) if kind.family() == Family::Text => col,
        _ => col.cast_as("TEXT"),
    }
}

/// Appends `text` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// Appends one cell, read as text, as the JSON its attribute type calls for.
/// Text that does not fit the type (a foreign value in a SQLite column) is
/// written as a JSON string rather than as broken JSON.
pub fn write_cell(out: &mut Vec<u8>, kind: AttrType, text: Option<&str>) {
    let Some(text) = text else {
        out.extend_from_slice(b"null");
        return;
    };
    match (kind.family(), kind) {
        (_, AttrType::Integer) if is_json_number(text) => out.extend_from_slice(text.as_bytes()),
        (_, AttrType::Double) => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => out.extend_from_slice(format!("{f}").as_bytes()),
            _ => write_str(out, text),
        },
        // Already plain and without trailing fractional zeros: as it is.
        (Family::Number, _)
            if !(text.contains(['e', 'E']) || text.contains('.') && text.ends_with('0'))
                && text != "-0"
                && is_json_number(text) =>
        {
            out.extend_from_slice(text.as_bytes());
        }
        (Family::Number, _) => match normalize_decimal(text) {
            Some(plain) => out.extend_from_slice(plain.as_bytes()),
            None => write_str(out, text),
        },
        (Family::Boolean, _) => match text {
            "1" | "true" | "t" => out.extend_from_slice(b"true"),
            "0" | "false" | "f" => out.extend_from_slice(b"false"),
            _ => write_str(out, text),
        },
        _ => write_str(out, text),
    }
}

/// Whether `text` is a JSON number.
pub fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A decimal as plain digits without trailing fractional zeros, so that
/// PostgreSQL's `10.10` and SQLite's `10.1` or `1.0e+20` read alike.
/// `None` if `text` is not a number.
pub fn normalize_decimal(text: &str) -> Option<String> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], body[at + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        || exponent.unsigned_abs() > 400
    {
        return None;
    }
    // digits × 10^(exponent - frac.len()), as a plain decimal.
    let digits: String = int.chars().chain(frac.chars()).collect();
    let point = i64::try_from(int.len()).ok()? + i64::from(exponent);
    let (int_part, frac_part) = if point <= 0 {
        (String::from("0"), "0".repeat(usize::try_from(-point).ok()?) + &digits)
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= digits.len() {
            (digits.clone() + &"0".repeat(point - digits.len()), String::new())
        } else {
            (digits[..point].to_owned(), digits[point..].to_owned())
        }
    };
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let mut out = String::with_capacity(int_part.len() + frac_part.len() + 3);
    if negative && !(int_part.is_empty() && frac_part.is_empty()) {
        out.push('-');
    }
    out.push_str(if int_part.is_empty() { "0" } else { int_part });
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_read_alike_on_both_backends() {
        for (raw, plain) in [
            ("10.10", "10.1"),
            ("10.1", "10.1"),
            ("5000", "5000"),
            ("5000.00", "5000"),
            ("0.00", "0"),
            ("-0.0", "0"),
            ("1.0e+20", "100000000000000000000"),
            ("-1.5e-07", "-0.00000015"),
            ("123.456e1", "1234.56"),
            ("007", "7"),
        ] {
            assert_eq!(normalize_decimal(raw).as_deref(), Some(plain), "{raw}");
        }
        for bad in ["NaN", "Infinity", "", "1.2.3", "e5", "1e99999"] {
            assert_eq!(normalize_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_numbers_are_recognised() {
        for good in ["0", "-1", "1.5", "1e5", "1.5E-3", "10"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "NaN", "1 ", "+1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn json_values_become_typed_scalars() {
        assert_eq!(from_json(AttrType::Integer, &json!(5), false), Ok(Scalar::Int(5)));
        assert!(from_json(AttrType::Integer, &json!(5.5), false).is_err());
        assert_eq!(from_json(AttrType::Integer, &json!(5.5), true), Ok(Scalar::Num("5.5".into())));
        assert!(from_json(AttrType::Integer, &json!("5"), false).unwrap_err().contains("whole"));
        assert_eq!(
            from_json(AttrType::Decimal, &json!(10.10), false),
            Ok(Scalar::Num("10.1".into()))
        );
        assert!(from_json(AttrType::YN, &json!("y"), false).is_err());
        assert_eq!(
            from_json(AttrType::DateTime, &json!("2023-02-01T12:00:00+02:00"), false),
            Ok(Scalar::DateTime("2023-02-01T10:00:00.000000Z".into()))
        );
        assert_eq!(
            from_json(AttrType::DateTime, &json!("2023-02-01"), false),
            Ok(Scalar::DateTime("2023-02-01T00:00:00.000000Z".into()))
        );
        assert!(from_json(AttrType::DateTime, &json!("99999-01-01T00:00:00Z"), false).is_err());
        assert_eq!(
            from_json(AttrType::Date, &json!("2024-02-29"), false),
            Ok(Scalar::Date("2024-02-29".into()))
        );
        assert!(from_json(AttrType::Boolean, &json!(1), false).is_err());
    }

    #[test]
    fn cells_are_written_by_type() {
        let cell = |kind, text: Option<&str>| {
            let mut out = Vec::new();
            write_cell(&mut out, kind, text);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(cell(AttrType::Integer, Some("42")), "42");
        assert_eq!(cell(AttrType::Integer, Some("x")), "\"x\"");
        assert_eq!(cell(AttrType::Decimal, Some("10.50")), "10.5");
        assert_eq!(cell(AttrType::Double, Some("0.10000000000000001")), "0.1");
        assert_eq!(cell(AttrType::Boolean, Some("1")), "true");
        assert_eq!(cell(AttrType::Boolean, Some("false")), "false");
        assert_eq!(cell(AttrType::String, None), "null");
        assert_eq!(cell(AttrType::YN, Some("Y")), "\"Y\"");
    }
}
