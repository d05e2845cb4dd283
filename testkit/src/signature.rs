//! Webhook signatures computed independently of the service's code, so a test compares the
//! service with the specification rather than with itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use crate::Received;

/// Verifies a received request with the `standardwebhooks` crate (an implementation independent
/// of the service's).
pub fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<(), String> {
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| format!("secret refused: {e}"))?
        .verify(&received.body, &received.headers)
        .map_err(|e| e.to_string())
}

/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>` computed by hand for a
/// `whsec_` secret.
pub fn expected_signature(
    secret: &str,
    id: &str,
    timestamp: impl std::fmt::Display,
    body: impl AsRef<[u8]>,
) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 secret");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_ref());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A fresh `whsec_` secret.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(key))
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
