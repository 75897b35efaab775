//! Render: rows read as text become the response's JSON, written straight
//! into the body. A cell is written as the JSON its attribute type calls
//! for, the same on both backends.

use crate::catalog::{AttrType, Datasource, Family};
use crate::store::exec::Cell;

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

/// Writes one row object from its cells' texts, then `"_rs"`.
pub fn write_row(
    out: &mut Vec<u8>,
    ds: &Datasource,
    columns: &[usize],
    cells: &[Cell<'_>],
    rs: &str,
) {
    out.push(b'{');
    for (&i, cell) in columns.iter().zip(cells) {
        let attr = &ds.attributes[i];
        write_str(out, &attr.code);
        out.push(b':');
        write_cell(out, attr.kind, cell.as_deref());
        out.push(b',');
    }
    out.extend_from_slice(br#""_rs":""#);
    out.extend_from_slice(rs.as_bytes());
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

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
