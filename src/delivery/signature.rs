//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::Secret;

/// The `webhook-signature` header value: one `v1,<base64>` per secret, space-separated (during a
/// rotation's grace period the old secret signs too, so receivers verify with either).
pub fn sign(message_id: &str, timestamp: i64, body: &[u8], secrets: &[Secret]) -> String {
    secrets
        .iter()
        .map(|secret| {
            format!(
                "v1,{}",
                STANDARD.encode(hmac(secret.as_bytes(), message_id, timestamp, body))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn hmac(key: &[u8], message_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only make the
    // signature fail verification, never leak anything.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference libraries' test suites.
    #[test]
    fn matches_the_reference_vector() {
        let secret = Secret::parse_or_generate("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &[secret]);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_secrets_give_two_signatures() {
        let a = Secret::generate();
        let b = Secret::generate();
        let both = sign("msg_1", 1, b"{}", &[a.clone(), b.clone()]);
        assert_eq!(
            both,
            format!(
                "{} {}",
                sign("msg_1", 1, b"{}", &[a]),
                sign("msg_1", 1, b"{}", &[b])
            )
        );
    }
}
