//! Webhook signing secrets, in the Standard Webhooks `whsec_<base64>` form.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;

/// A signing key. Its `Debug` never shows the key, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

/// Why a given secret was refused; the API names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `whsec_` followed by something that is not standard base64.
    #[error("a secret starting with whsec_ must continue with standard base64")]
    NotBase64,
    /// `whsec_` secret of the wrong size.
    #[error("a whsec_ secret must decode to 16 to 1024 bytes, this one has {0}")]
    WrongDecodedLength(usize),
    /// Plain secret too short or too long.
    #[error("must be empty (to generate one), whsec_<base64>, or 16 to 256 characters")]
    WrongLength,
    /// A NUL character anywhere in what was supplied. Refused like NUL in every other text field:
    /// C-string tooling (a receiver's config, a shell, `getenv`) would cut the secret at the NUL
    /// and sign with a different key than the one stored.
    #[error("must not contain NUL (U+0000) characters")]
    ContainsNul,
}

const PREFIX: &str = "whsec_";

/// The key sizes a `whsec_` secret may decode to: every size a plain secret can have (16 ASCII
/// characters up to 256 characters of four UTF-8 bytes), so that the `whsec_` form the service
/// hands back for any secret it accepted is accepted again (rotating to it, pasting it into
/// another webhook). Generated secrets have 32 bytes.
pub const WHSEC_KEY_BYTES: std::ops::RangeInclusive<usize> = 16..=1024;
const GENERATED_BYTES: usize = 32;

impl Secret {
    /// A fresh random secret of 32 bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Parses what an admin typed: empty generates one; `whsec_<base64>` is decoded (16 to 1024
    /// bytes, [`WHSEC_KEY_BYTES`]); any other string of 16 to 256 characters is used as UTF-8 bytes. A NUL character
    /// is refused in either form (a decoded `whsec_` key may hold zero bytes: it is binary).
    pub fn parse_or_generate(input: &str) -> Result<Self, SecretError> {
        if input.is_empty() {
            return Ok(Self::generate());
        }
        if input.contains('\0') {
            return Err(SecretError::ContainsNul);
        }
        if let Some(encoded) = input.strip_prefix(PREFIX) {
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64)?;
            if !WHSEC_KEY_BYTES.contains(&key.len()) {
                return Err(SecretError::WrongDecodedLength(key.len()));
            }
            return Ok(Self(key));
        }
        if !(16..=256).contains(&input.chars().count()) {
            return Err(SecretError::WrongLength);
        }
        Ok(Self(input.as_bytes().to_vec()))
    }

    /// Wraps key bytes read back from the database.
    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// The raw key bytes, for HMAC and storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `whsec_<base64>` form that Standard Webhooks libraries accept.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// A few characters to recognise the secret by, never enough to guess it: `whsec_…` and the
    /// last four characters of the whsec form.
    pub fn hint(&self) -> String {
        let full = self.to_whsec();
        let tail: String = full
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{PREFIX}…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_generates_32_random_bytes() {
        let a = Secret::parse_or_generate("").unwrap();
        let b = Secret::parse_or_generate("").unwrap();
        assert_eq!(a.as_bytes().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn whsec_form_is_decoded_and_round_trips() {
        let key = [7u8; 24];
        let text = format!("whsec_{}", STANDARD.encode(key));
        let secret = Secret::parse_or_generate(&text).unwrap();
        assert_eq!(secret.as_bytes(), key);
        assert_eq!(secret.to_whsec(), text);
    }

    #[test]
    fn whsec_with_wrong_size_or_bad_base64_is_refused() {
        let short = format!("whsec_{}", STANDARD.encode([1u8; 15]));
        assert_eq!(
            Secret::parse_or_generate(&short),
            Err(SecretError::WrongDecodedLength(15))
        );
        let long = format!("whsec_{}", STANDARD.encode([1u8; 1025]));
        assert_eq!(
            Secret::parse_or_generate(&long),
            Err(SecretError::WrongDecodedLength(1025))
        );
        assert_eq!(
            Secret::parse_or_generate("whsec_!!!"),
            Err(SecretError::NotBase64)
        );
    }

    #[test]
    fn the_whsec_form_of_every_accepted_plain_secret_is_accepted_again() {
        for plain in [
            "sixteen-chars-ok".to_owned(),
            "twenty-three-characters".to_owned(),
            "é".repeat(256),
            "😀".repeat(256),
        ] {
            let secret = Secret::parse_or_generate(&plain).expect("a valid plain secret");
            assert_eq!(
                Secret::parse_or_generate(&secret.to_whsec()),
                Ok(secret),
                "{} bytes",
                plain.len()
            );
        }
    }

    #[test]
    fn plain_strings_need_16_characters() {
        assert_eq!(
            Secret::parse_or_generate("short"),
            Err(SecretError::WrongLength)
        );
        let secret = Secret::parse_or_generate("sixteen-chars-ok").unwrap();
        assert_eq!(secret.as_bytes(), b"sixteen-chars-ok");
        assert!(secret.to_whsec().starts_with("whsec_"));
    }

    #[test]
    fn a_nul_character_is_refused_in_either_form() {
        for input in [
            "sixteen-chars-ok\0",
            "\0sixteen-chars-ok",
            "sixteen\0chars-ok",
            "whsec_\0",
        ] {
            assert_eq!(
                Secret::parse_or_generate(input),
                Err(SecretError::ContainsNul),
                "{input:?}"
            );
        }
        // Zero bytes inside a decoded binary key are fine: only the typed text is checked.
        let zeros = format!("whsec_{}", STANDARD.encode([0u8; 32]));
        assert!(Secret::parse_or_generate(&zeros).is_ok());
    }

    #[test]
    fn debug_and_hint_never_show_the_key() {
        let secret = Secret::parse_or_generate("a-very-secret-value-123").unwrap();
        assert!(!format!("{secret:?}").contains("secret-value"));
        let hint = secret.hint();
        assert!(hint.starts_with("whsec_…"));
        assert_eq!(hint.chars().count(), "whsec_…".chars().count() + 4);
    }
}
