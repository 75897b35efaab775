//! Values of attribute types: JSON from the client (or a default in the
//! config file) becomes a typed, normalised [`Scalar`], or an error that says
//! what was expected. The one checker of values, and the one parser of dates
//! and date-times.

use serde_json::Value as Json;

use super::{AttrType, Family};
use crate::store::dialect::Storage;

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

/// What a number too large for `kind` is told: the range it must fit.
fn out_of_range(kind: AttrType) -> String {
    match kind {
        AttrType::Integer => {
            format!("expected a whole number from {} to {} (a 64-bit integer)", i64::MIN, i64::MAX)
        }
        _ => "expected a number of magnitude below 1.7e308 (the range of a double)".into(),
    }
}

/// Converts a (non-null) JSON value to the attribute type's scalar; the
/// error says what was expected. `lenient_int` lets an Integer attribute
/// take a fractional number (for filter comparisons).
pub fn from_json(kind: AttrType, value: &Json, lenient_int: bool) -> Result<Scalar, String> {
    let expected = || format!("expected {}", kind.expected());
    // A number that does not fit is told the range; anything else the type.
    let unfit = || if value.is_number() { out_of_range(kind) } else { expected() };
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
            None if lenient_int && value.is_number() => {
                decimal(value).map(Scalar::Num).ok_or_else(unfit)
            }
            None => Err(unfit()),
        },
        (_, AttrType::Double) => {
            value.as_f64().filter(|f| f.is_finite()).map(Scalar::Double).ok_or_else(unfit)
        }
        (Family::Number, _) => decimal(value).map(Scalar::Num).ok_or_else(unfit),
        (_, AttrType::Date) => value.as_str().and_then(date).map(Scalar::Date).ok_or_else(expected),
        (Family::Date, _) => {
            value.as_str().and_then(datetime).map(Scalar::DateTime).ok_or_else(expected)
        }
        (Family::Boolean, _) => value.as_bool().map(Scalar::Bool).ok_or_else(expected),
    }
}

/// A value read back from the database as text (in the form the store's
/// `read_text` gives), typed again; `None` if the text does not fit.
pub fn from_text(kind: AttrType, text: &str) -> Option<Scalar> {
    match (kind.family(), kind) {
        (Family::Text, _) => Some(Scalar::Text(text.to_owned())),
        (_, AttrType::Integer) => text.parse().ok().map(Scalar::Int),
        (_, AttrType::Double) => text.parse().ok().map(Scalar::Double),
        (Family::Number, _) => Some(Scalar::Num(text.to_owned())),
        (_, AttrType::Date) => date(text).map(Scalar::Date),
        (Family::Date, _) => datetime(text).map(Scalar::DateTime),
        (Family::Boolean, _) => match text {
            "1" | "true" | "t" => Some(Scalar::Bool(true)),
            "0" | "false" | "f" => Some(Scalar::Bool(false)),
            _ => None,
        },
    }
}

impl Scalar {
    /// How the database keeps this value.
    pub fn storage(&self) -> Storage {
        match self {
            Self::Text(_) => Storage::Text,
            Self::Int(_) => Storage::Integer,
            Self::Num(_) => Storage::Numeric,
            Self::Double(_) => Storage::Double,
            Self::Date(_) => Storage::Date,
            Self::DateTime(_) => Storage::DateTime,
            Self::Bool(_) => Storage::Boolean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn config_defaults_and_request_values_are_checked_alike() {
        let ok = |kind, v: Json| from_json(kind, &v, false).is_ok();
        assert!(ok(AttrType::YN, json!("Y")));
        assert!(!ok(AttrType::YN, json!("yes")));
        assert!(ok(AttrType::Integer, json!(3)));
        assert!(!ok(AttrType::Integer, json!(3.5)));
        assert!(ok(AttrType::Decimal, json!(3.5)));
        assert!(!ok(AttrType::Decimal, json!("3.5")));
        assert!(ok(AttrType::Date, json!("2024-02-29")));
        assert!(!ok(AttrType::Date, json!("2023-02-29")));
        assert!(ok(AttrType::DateTime, json!("2023-02-01T10:00:00.000Z")));
        assert!(!ok(AttrType::DateTime, json!("yesterday")));
        assert!(ok(AttrType::Boolean, json!(true)));
    }
}
