//! `Secret::parse_or_generate`: what an admin types as a webhook's signing secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhooks::domain::{Secret, SecretError};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match Secret::parse_or_generate(&input) {
        Ok(secret) => {
            let key = secret.as_bytes();
            if input.is_empty() {
                assert_eq!(key.len(), 32, "a generated secret has 32 bytes");
            } else if input.starts_with("whsec_") {
                assert!(
                    (24..=64).contains(&key.len()),
                    "whsec_ keys are 24 to 64 bytes"
                );
                // Standard base64 with padding and canonical trailing bits: the form round-trips.
                assert_eq!(secret.to_whsec(), input, "whsec_ form round-trips");
            } else {
                assert!((16..=256).contains(&input.chars().count()));
                assert_eq!(
                    key,
                    input.as_bytes(),
                    "plain secrets are used as UTF-8 bytes"
                );
            }
            // The whsec_ form the API hands back parses to the same key when its size is one a
            // whsec_ secret may have (plain secrets can be 16 to 1024 bytes: see README.md).
            let reparsed = Secret::parse_or_generate(&secret.to_whsec());
            if (24..=64).contains(&key.len()) {
                assert_eq!(
                    reparsed.as_ref().ok(),
                    Some(&secret),
                    "to_whsec parses back"
                );
            } else {
                assert_eq!(reparsed, Err(SecretError::WrongDecodedLength(key.len())));
            }
            let hint = secret.hint();
            assert!(hint.starts_with("whsec_…") && hint.chars().count() == 11);
            assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        }
        Err(SecretError::WrongDecodedLength(n)) => {
            assert!(input.starts_with("whsec_") && !(24..=64).contains(&n));
        }
        Err(SecretError::NotBase64) => assert!(input.starts_with("whsec_")),
        Err(SecretError::ContainsNul) => assert!(input.contains('\0')),
        Err(SecretError::WrongLength) => {
            assert!(!input.starts_with("whsec_"));
            assert!(!(16..=256).contains(&input.chars().count()));
        }
    }
});
