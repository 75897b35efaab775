//! Attribute types (design §3) and what each means on the wire and in each
//! database.

use crate::store::dialect::Storage;

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

    /// How the database keeps values of this type.
    pub fn storage(self) -> Storage {
        match (self.family(), self) {
            (Family::Text, _) => Storage::Text,
            (_, Self::Integer) => Storage::Integer,
            (_, Self::Double) => Storage::Double,
            (Family::Number, _) => Storage::Numeric,
            (_, Self::Date) => Storage::Date,
            (Family::Date, _) => Storage::DateTime,
            (Family::Boolean, _) => Storage::Boolean,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for name in AttrType::NAMES {
            assert_eq!(AttrType::parse(name).unwrap().name(), name);
        }
        assert_eq!(AttrType::parse("string"), None);
    }
}
