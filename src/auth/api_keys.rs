//! API key secrets (design §4.7): `tsk_` + 32 base62 characters of
//! randomness (190 bits) + 6 base62 characters of the CRC32 of everything
//! before them, as GitHub's token format does. The prefix lets secret
//! scanners recognise a leaked key; the checksum refuses a mistyped or
//! made-up one before any database look-up.

use anyhow::{Result, anyhow};

/// What every key secret starts with.
pub const PREFIX: &str = "tsk_";

const RANDOM: usize = 32;
const CHECKSUM: usize = 6;

/// The length of a key secret.
pub const LENGTH: usize = PREFIX.len() + RANDOM + CHECKSUM;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a sign-in password is, as far as its shape tells.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// Not a key secret: check it as a password.
    Password,
    /// A well-formed key secret: look it up.
    Key,
    /// A key secret's prefix and length, but a wrong checksum: refuse it.
    Mistyped,
}

/// Makes a new key secret from the operating system's CSPRNG.
pub fn generate() -> Result<String> {
    let mut secret = String::with_capacity(LENGTH);
    secret.push_str(PREFIX);
    // Rejection sampling: bytes below 248 (= 4 x 62) map evenly onto base62.
    let mut buffer = [0u8; 64];
    while secret.len() < PREFIX.len() + RANDOM {
        getrandom::fill(&mut buffer).map_err(|e| anyhow!("no randomness for a key: {e}"))?;
        for byte in buffer.iter().filter(|b| **b < 248) {
            if secret.len() == PREFIX.len() + RANDOM {
                break;
            }
            secret.push(char::from(BASE62[usize::from(byte % 62)]));
        }
    }
    let checksum = checksum(&secret);
    secret.push_str(&checksum);
    Ok(secret)
}

/// The shape of `password`: a key secret is recognised by its prefix and
/// length, and accepted only with the right checksum.
pub fn shape(password: &str) -> Shape {
    if password.len() != LENGTH
        || !password.starts_with(PREFIX)
        || !password.bytes().skip(PREFIX.len()).all(|b| b.is_ascii_alphanumeric())
    {
        return Shape::Password;
    }
    let (body, sum) = password.split_at(LENGTH - CHECKSUM);
    if checksum(body) == sum { Shape::Key } else { Shape::Mistyped }
}

/// The roles a session has: the user's, narrowed to the key's (a JSON
/// array) if it was opened with a key. A role taken from the user after
/// `key add` is gone from the key's sessions too.
pub fn narrow(user_roles: Vec<String>, key_roles: Option<&str>) -> Vec<String> {
    let Some(key_roles) = key_roles else { return user_roles };
    // An unreadable list grants nothing rather than everything.
    let key_roles: Vec<String> = serde_json::from_str(key_roles).unwrap_or_default();
    user_roles.into_iter().filter(|role| key_roles.contains(role)).collect()
}

/// The CRC32 of `body` as 6 base62 characters, most significant first.
fn checksum(body: &str) -> String {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECKSUM];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_format_and_check() {
        let key = generate().unwrap();
        assert_eq!(key.len(), 42);
        assert!(key.starts_with("tsk_"));
        assert!(key[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(shape(&key), Shape::Key);
        assert_ne!(generate().unwrap(), key);
    }

    #[test]
    fn one_changed_character_is_a_mistyped_key() {
        let key = generate().unwrap();
        let mut typo = key.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(shape(&String::from_utf8(typo).unwrap()), Shape::Mistyped);
        let mut sum = key.into_bytes();
        sum[41] = if sum[41] == b'a' { b'b' } else { b'a' };
        assert_eq!(shape(&String::from_utf8(sum).unwrap()), Shape::Mistyped);
    }

    #[test]
    fn a_keys_roles_narrow_the_users() {
        let user = || vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(narrow(user(), None), user());
        assert_eq!(narrow(user(), Some(r#"["c","a","z"]"#)), ["a", "c"]);
        assert!(narrow(user(), Some("[]")).is_empty());
        assert!(narrow(user(), Some("not json")).is_empty());
    }

    #[test]
    fn other_passwords_are_passwords() {
        assert_eq!(shape("correct horse"), Shape::Password);
        assert_eq!(shape("tsk_short"), Shape::Password);
        assert_eq!(shape(&format!("tsk_{}", "-".repeat(38))), Shape::Password);
        assert_eq!(shape(&format!("xsk_{}", "a".repeat(38))), Shape::Password);
    }

    #[test]
    fn the_checksum_is_six_base62_digits_of_crc32() {
        assert_eq!(checksum(""), "000000");
        // Read back as a base62 number, it is the CRC32 itself.
        let sum = checksum("tsk_");
        let value = sum
            .bytes()
            .fold(0u64, |v, b| v * 62 + BASE62.iter().position(|c| *c == b).unwrap() as u64);
        assert_eq!(value, u64::from(crc32fast::hash(b"tsk_")));
    }
}
