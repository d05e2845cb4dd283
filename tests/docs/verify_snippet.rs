// Cargo.toml: base64 = "0.22", hmac = "0.13", sha2 = "0.11"
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from this machine's clock.
const TOLERANCE_SECONDS: u64 = 5 * 60;

/// Checks one delivery: `secret` is the webhook's `whsec_...` secret, the next three are the
/// values of the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, and `body`
/// is the raw request body, exactly as received. `Ok(())` means authentic and fresh.
pub fn verify_webhook(
    secret: &str,
    webhook_id: &str,
    webhook_timestamp: &str,
    webhook_signature: &str,
    body: &[u8],
) -> Result<(), &'static str> {
    let sent_at: u64 = webhook_timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970")?
        .as_secs();
    if now.abs_diff(sent_at) > TOLERANCE_SECONDS {
        return Err("webhook-timestamp is more than 5 minutes away");
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the secret is not whsec_<base64>")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "unusable key")?;
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(webhook_timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // One `v1,<base64>` per signing secret, space-separated: any valid one is enough.
    // `verify_slice` compares in constant time.
    let valid = webhook_signature
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|given| mac.clone().verify_slice(&given).is_ok());
    if valid {
        Ok(())
    } else {
        Err("no valid signature")
    }
}
