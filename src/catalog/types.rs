//! Attribute types (design §3) and what each means on the wire and in each
//! database.

use serde_json::Value;

use crate::store::Backend;

/// The type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    String,
    Email,
    Phone,
    Url,
    UserId,
    YN,
    Integer,
    Decimal,
    Double,
    Percent,
    Date,
    DateTime,
    Boolean,
}

/// Which family of filter operators a type takes (spec §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Text,
    Number,
    Date,
    Boolean,
}

impl AttrType {
    /// Every type name, as written in the config file.
    pub const NAMES: [&'static str; 13] = [
        "String", "Email", "Phone", "URL", "UserID", "YN", "Integer", "Decimal", "Double",
        "Percent", "Date", "DateTime", "Boolean",
    ];
    const ALL: [Self; 13] = [
        Self::String,
        Self::Email,
        Self::Phone,
        Self::Url,
        Self::UserId,
        Self::YN,
        Self::Integer,
        Self::Decimal,
        Self::Double,
        Self::Percent,
        Self::Date,
        Self::DateTime,
        Self::Boolean,
    ];

    /// The type named `name` in the config file.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| Self::ALL[i])
    }

    /// The name as written in the config file.
    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|t| *t == self).unwrap_or(0)]
    }

    /// The filter family.
    pub fn family(self) -> Family {
        match self {
            Self::String | Self::Email | Self::Phone | Self::Url | Self::UserId | Self::YN => {
                Family::Text
            }
            Self::Integer | Self::Decimal | Self::Double | Self::Percent => Family::Number,
            Self::Date | Self::DateTime => Family::Date,
            Self::Boolean => Family::Boolean,
        }
    }

    /// The column type a created table uses. SQLite keeps Date and DateTime
    /// as fixed-width ISO 8601 text (so text order is time order) and
    /// Decimal with NUMERIC affinity (15 significant digits); PostgreSQL
    /// uses DATE, TIMESTAMPTZ and exact NUMERIC.
    pub fn column_type(self, backend: Backend) -> &'static str {
        match (self.family(), self, backend) {
            (Family::Text, ..) => "TEXT",
            (_, Self::Integer, Backend::Sqlite) => "INTEGER",
            (_, Self::Integer, Backend::Postgres) => "BIGINT",
            (_, Self::Decimal | Self::Percent, _) => "NUMERIC",
            (_, Self::Double, Backend::Sqlite) => "REAL",
            (_, Self::Double, Backend::Postgres) => "DOUBLE PRECISION",
            (_, Self::Date, Backend::Sqlite) | (_, Self::DateTime, Backend::Sqlite) => "TEXT",
            (_, Self::Date, Backend::Postgres) => "DATE",
            (_, Self::DateTime, Backend::Postgres) => "TIMESTAMPTZ",
            _ => "BOOLEAN",
        }
    }

    /// Checks that a JSON value (not null) fits this type; the error says
    /// what was expected.
    pub fn check_json(self, value: &Value) -> Result<(), String> {
        let ok = match self.family() {
            Family::Text if self == Self::YN => matches!(value.as_str(), Some("Y" | "N")),
            Family::Text => value.is_string(),
            Family::Number if self == Self::Integer => value.as_i64().is_some(),
            Family::Number => value.is_number(),
            Family::Date if self == Self::Date => {
                value.as_str().is_some_and(|s| parse_date(s).is_some())
            }
            Family::Date => value.as_str().is_some_and(|s| parse_datetime(s).is_some()),
            Family::Boolean => value.is_boolean(),
        };
        if ok { Ok(()) } else { Err(format!("expected {}", self.expected())) }
    }

    /// What a value of this type looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Self::YN => "\"Y\" or \"N\"",
            Self::Integer => "a whole number",
            Self::Decimal | Self::Double | Self::Percent => "a number",
            Self::Date => "a date string YYYY-MM-DD",
            Self::DateTime => "an ISO 8601 date-time string such as 2023-02-01T10:00:00.000Z",
            Self::Boolean => "true or false",
            _ => "a string",
        }
    }
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// An ISO 8601 / RFC 3339 date-time with an offset (`Z` or `±hh:mm`), as
/// microseconds since the epoch. A plain date means its midnight UTC.
pub fn parse_datetime(text: &str) -> Option<i64> {
    if let Some(date) = parse_date(text) {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_round_trips() {
        for name in AttrType::NAMES {
            assert_eq!(AttrType::parse(name).unwrap().name(), name);
        }
        assert_eq!(AttrType::parse("string"), None);
    }

    #[test]
    fn values_are_checked_by_type() {
        assert!(AttrType::YN.check_json(&json!("Y")).is_ok());
        assert!(AttrType::YN.check_json(&json!("yes")).is_err());
        assert!(AttrType::Integer.check_json(&json!(3)).is_ok());
        assert!(AttrType::Integer.check_json(&json!(3.5)).is_err());
        assert!(AttrType::Decimal.check_json(&json!(3.5)).is_ok());
        assert!(AttrType::Decimal.check_json(&json!("3.5")).is_err());
        assert!(AttrType::Date.check_json(&json!("2024-02-29")).is_ok());
        assert!(AttrType::Date.check_json(&json!("2023-02-29")).is_err());
        assert!(AttrType::DateTime.check_json(&json!("2023-02-01T10:00:00.000Z")).is_ok());
        assert!(AttrType::DateTime.check_json(&json!("yesterday")).is_err());
        assert!(AttrType::Boolean.check_json(&json!(true)).is_ok());
    }
}
