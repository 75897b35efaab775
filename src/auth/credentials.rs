//! The sign-in credential header (design §1.1):
//! `Token <base64(username:password)>`, scheme case-insensitive, password
//! everything after the first `:`, UTF-8 allowed.

use std::fmt;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64, padded or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A user name and password from the header. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"***").finish()
    }
}

/// Why a credential header was refused; each says what the header must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "Missing credentials: send the header Authorization: Token <base64 of username:password>."
    )]
    Missing,
    #[error(
        "The Authorization header must use the Token scheme: Authorization: Token <base64 of username:password>."
    )]
    NotToken,
    #[error(
        "The Token credentials are not valid base64: send Authorization: Token <base64 of username:password>."
    )]
    NotBase64,
    #[error(
        "The Token credentials are not UTF-8 text: encode username:password as UTF-8, then base64."
    )]
    NotUtf8,
    #[error(
        "The Token credentials lack a ':' between username and password: send base64 of username:password."
    )]
    NoColon,
    #[error("The Token credentials have an empty username: send base64 of username:password.")]
    EmptyUser,
}

/// Parses the value of the credential header.
pub fn parse_token(value: &[u8]) -> Result<Credentials, CredentialError> {
    let value = std::str::from_utf8(value).map_err(|_| CredentialError::NotToken)?.trim();
    if value.is_empty() {
        return Err(CredentialError::Missing);
    }
    let (scheme, rest) = value.split_once([' ', '\t']).ok_or(CredentialError::NotToken)?;
    if !scheme.eq_ignore_ascii_case("token") {
        return Err(CredentialError::NotToken);
    }
    let decoded = BASE64.decode(rest.trim()).map_err(|_| CredentialError::NotBase64)?;
    let text = String::from_utf8(decoded).map_err(|_| CredentialError::NotUtf8)?;
    let (user, password) = text.split_once(':').ok_or(CredentialError::NoColon)?;
    if user.is_empty() {
        return Err(CredentialError::EmptyUser);
    }
    Ok(Credentials { user: user.to_owned(), password: password.to_owned() })
}

/// The header value a client sends for these credentials.
pub fn token_header(user: &str, password: &str) -> String {
    format!(
        "Token {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    #[test]
    fn the_seed_form_parses() {
        assert_eq!(parse_token(token_header("steve", "pw").as_bytes()), Ok(creds("steve", "pw")));
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let b64 = "c3RldmU6cHc="; // steve:pw
        for scheme in ["token", "TOKEN", "ToKeN"] {
            assert_eq!(parse_token(format!("{scheme} {b64}").as_bytes()), Ok(creds("steve", "pw")));
        }
    }

    #[test]
    fn the_password_is_everything_after_the_first_colon() {
        let header = token_header("steve", "a:b:c");
        assert_eq!(parse_token(header.as_bytes()), Ok(creds("steve", "a:b:c")));
    }

    #[test]
    fn utf8_is_allowed_and_padding_is_optional() {
        let header = token_header("jürgen", "pässwörd€");
        assert_eq!(parse_token(header.as_bytes()), Ok(creds("jürgen", "pässwörd€")));
        assert_eq!(parse_token(b"Token c3RldmU6cHc"), Ok(creds("steve", "pw")));
    }

    #[test]
    fn malformed_headers_say_why() {
        assert_eq!(parse_token(b""), Err(CredentialError::Missing));
        assert_eq!(parse_token(b"Bearer abc"), Err(CredentialError::NotToken));
        assert_eq!(parse_token(b"Token"), Err(CredentialError::NotToken));
        assert_eq!(parse_token(b"Token !!!"), Err(CredentialError::NotBase64));
        assert_eq!(parse_token(b"Token c3RldmU="), Err(CredentialError::NoColon));
        assert_eq!(parse_token(b"Token OnB3"), Err(CredentialError::EmptyUser));
        assert_eq!(parse_token(b"Token /w=="), Err(CredentialError::NotUtf8));
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", creds("steve", "hunter2")).contains("hunter2"));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_token(&bytes);
        }

        #[test]
        fn any_user_and_password_round_trip(user in "[^:]{1,40}", password in ".{0,60}") {
            let header = token_header(&user, &password);
            prop_assert_eq!(parse_token(header.as_bytes()), Ok(creds(&user, &password)));
        }
    }
}
