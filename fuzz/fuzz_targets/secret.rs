//! `Secret::parse_or_generate`: what an admin types as a webhook's signing secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhooks::domain::{Secret, SecretError, WHSEC_KEY_BYTES};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match Secret::parse_or_generate(&input) {
        Ok(secret) => {
            let key = secret.as_bytes();
            if input.is_empty() {
                assert_eq!(key.len(), 32, "a generated secret has 32 bytes");
            } else if input.starts_with("whsec_") {
                assert!(
                    WHSEC_KEY_BYTES.contains(&key.len()),
                    "whsec_ keys are 16 to 1024 bytes"
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
            // The whsec_ form the API hands back always parses to the same key.
            let reparsed = Secret::parse_or_generate(&secret.to_whsec());
            assert_eq!(
                reparsed.as_ref().ok(),
                Some(&secret),
                "to_whsec parses back"
            );
            let hint = secret.hint();
            assert!(hint.starts_with("whsec_…") && hint.chars().count() == 11);
            assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        }
        Err(SecretError::WrongDecodedLength(n)) => {
            assert!(input.starts_with("whsec_") && !WHSEC_KEY_BYTES.contains(&n));
        }
        Err(SecretError::NotBase64) => assert!(input.starts_with("whsec_")),
        Err(SecretError::ContainsNul) => assert!(input.contains('\0')),
        Err(SecretError::WrongLength) => {
            assert!(!input.starts_with("whsec_"));
            assert!(!(16..=256).contains(&input.chars().count()));
        }
    }
});
