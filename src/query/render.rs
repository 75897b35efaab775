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

/// How a cell of a summary row (design §1.4) is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// As a value of this attribute type (group attributes, counts, `Min`,
    /// `Max`, a `Sum` of whole numbers).
    As(AttrType),
    /// A decimal rounded to [`SIGNIFICANT`] digits (`Avg`, and `Sum` of
    /// decimals and doubles), so that PostgreSQL's exact arithmetic and
    /// SQLite's doubles give the same JSON.
    Rounded,
}

/// The significant digits of a [`Form::Rounded`] cell: what a double holds
/// for certain, and what SQLite keeps of a decimal.
pub const SIGNIFICANT: usize = 15;

/// Appends one summary cell, read as text, in its form.
pub fn write_form_cell(out: &mut Vec<u8>, form: Form, text: Option<&str>) {
    match (form, text) {
        (Form::As(kind), _) => write_cell(out, kind, text),
        (Form::Rounded, None) => out.extend_from_slice(b"null"),
        (Form::Rounded, Some(text)) => match round_significant(text, SIGNIFICANT) {
            Some(plain) => out.extend_from_slice(plain.as_bytes()),
            None => write_str(out, text),
        },
    }
}

/// A number rounded to `digits` significant digits (half away from zero),
/// as plain digits without trailing fractional zeros. `None` if `text` is
/// not a number.
pub fn round_significant(text: &str, digits: usize) -> Option<String> {
    let plain = normalize_decimal(text)?;
    let (negative, body) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut point = int.len();
    let Some(first) = all.iter().position(|&d| d != b'0') else { return Some(plain) };
    let end = first + digits.max(1);
    if end >= all.len() {
        return Some(plain);
    }
    let up = all[end] >= b'5';
    all.truncate(end);
    if up {
        let mut i = end;
        loop {
            if i == 0 {
                all.insert(0, b'1');
                point += 1;
                break;
            }
            i -= 1;
            if all[i] == b'9' {
                all[i] = b'0';
            } else {
                all[i] += 1;
                break;
            }
        }
    }
    if all.len() < point {
        all.resize(point, b'0');
    }
    let (int, frac) = all.split_at(point);
    let text = format!(
        "{}{}.{}",
        if negative { "-" } else { "" },
        String::from_utf8_lossy(if int.is_empty() { b"0" } else { int }),
        String::from_utf8_lossy(frac)
    );
    normalize_decimal(text.trim_end_matches('.'))
}

/// Writes one row object of named cells in the given forms, then `"_rs"`.
pub fn write_fields(out: &mut Vec<u8>, fields: &[(&str, Form)], cells: &[Cell<'_>], rs: &str) {
    out.push(b'{');
    for ((name, form), cell) in fields.iter().zip(cells) {
        write_str(out, name);
        out.push(b':');
        write_form_cell(out, *form, cell.as_deref());
        out.push(b',');
    }
    out.extend_from_slice(br#""_rs":""#);
    out.extend_from_slice(rs.as_bytes());
    out.extend_from_slice(b"\"}");
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
    fn rounding_keeps_fifteen_significant_digits() {
        for (raw, rounded) in [
            ("1.6666666666666667", "1.66666666666667"),
            ("1.66666666666666666666", "1.66666666666667"),
            ("2.0000000000000000", "2"),
            ("0.30000000000000004", "0.3"),
            ("9999999999999999", "10000000000000000"),
            ("-9999999999999999.5", "-10000000000000000"),
            ("0.000012345678901234567", "0.0000123456789012346"),
            ("0.09999999999999999999", "0.1"),
            ("123456789.123456789", "123456789.123457"),
            ("1.0e+20", "100000000000000000000"),
            ("12000", "12000"),
            ("-0.0", "0"),
            ("0", "0"),
        ] {
            assert_eq!(round_significant(raw, 15).as_deref(), Some(rounded), "{raw}");
        }
        assert_eq!(round_significant("Inf", 15), None);
        let cell = |form, text| {
            let mut out = Vec::new();
            write_form_cell(&mut out, form, text);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(cell(Form::Rounded, Some("2.50")), "2.5");
        assert_eq!(cell(Form::Rounded, None), "null");
        assert_eq!(cell(Form::As(AttrType::Date), Some("2024-01-02")), "\"2024-01-02\"");
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
