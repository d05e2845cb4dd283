//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
//! [`sign`] is what the delivery workers send; [`verify`] is what a receiver checks (`webhooks
//! listen` uses it), kept beside it so the two cannot drift apart.

use std::time::Duration;

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

/// A received webhook's signed parts: the three Standard Webhooks headers, as sent, and the body.
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// `webhook-id`: signed so a signature cannot be replayed under another message id.
    pub message_id: &'a str,
    /// `webhook-timestamp` (Unix seconds, as text): signed and checked against the clock, so an
    /// old delivery cannot be replayed later.
    pub timestamp: &'a str,
    /// `webhook-signature`: space-separated `v1,<base64>` entries, one per secret the sender
    /// signed with (two during a secret rotation).
    pub signatures: &'a str,
    /// The request body exactly as received (re-serialized JSON would not verify).
    pub body: &'a [u8],
}

/// Why [`verify`] refused a message; the text tells an integrator what to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not a whole number of seconds.
    #[error("webhook-timestamp `{0}` is not a Unix time in seconds")]
    BadTimestamp(String),
    /// The timestamp is further in the past than the tolerance.
    #[error(
        "webhook-timestamp is {age}s old, more than the {tolerance}s tolerance (a replay, or a \
         clock out of sync)"
    )]
    TooOld {
        /// Seconds between the timestamp and now.
        age: i64,
        /// The tolerance, in seconds.
        tolerance: i64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error(
        "webhook-timestamp is {ahead}s in the future, more than the {tolerance}s tolerance (a \
         clock out of sync)"
    )]
    InFuture {
        /// Seconds between now and the timestamp.
        ahead: i64,
        /// The tolerance, in seconds.
        tolerance: i64,
    },
    /// `webhook-signature` has no `v1,` entry (other schemes are ignored).
    #[error("webhook-signature holds no v1 signature")]
    NoV1Signature,
    /// None of the `v1,` entries is the one `secret` gives.
    #[error(
        "no signature in webhook-signature matches this secret ({checked} checked): wrong \
         secret, or the id, timestamp or body changed on the way"
    )]
    NoMatch {
        /// How many `v1,` entries were compared.
        checked: usize,
    },
}

/// Checks a message the way Standard Webhooks receivers do: its timestamp within `tolerance` of
/// `now` (Unix seconds), either way, and one of its `v1,` signatures equal (compared in constant
/// time, every one of them) to the one [`sign`] makes with `secret`.
pub fn verify(
    message: &SignedMessage<'_>,
    secret: &Secret,
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = message
        .timestamp
        .parse()
        .map_err(|_| VerifyError::BadTimestamp(message.timestamp.to_owned()))?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.saturating_sub(timestamp);
    if age > tolerance {
        return Err(VerifyError::TooOld { age, tolerance });
    }
    if -age > tolerance {
        return Err(VerifyError::InFuture {
            ahead: -age,
            tolerance,
        });
    }
    let expected = sign(
        message.message_id,
        timestamp,
        message.body,
        std::slice::from_ref(secret),
    );
    let candidates: Vec<&str> = message
        .signatures
        .split_whitespace()
        .filter(|candidate| candidate.starts_with("v1,"))
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::NoV1Signature);
    }
    // Compare against every candidate (no early exit), each in constant time.
    let matched = candidates.iter().fold(false, |matched, candidate| {
        constant_time_eq(candidate.as_bytes(), expected.as_bytes()) | matched
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch {
            checked: candidates.len(),
        })
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
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

    /// A message signed by [`sign`] at `timestamp`, with `secret`.
    fn signed(secret: &Secret, timestamp: i64, body: &'static [u8]) -> (String, String) {
        (
            timestamp.to_string(),
            sign("msg_1", timestamp, body, std::slice::from_ref(secret)),
        )
    }

    fn message<'a>(timestamp: &'a str, signatures: &'a str, body: &'a [u8]) -> SignedMessage<'a> {
        SignedMessage {
            message_id: "msg_1",
            timestamp,
            signatures,
            body,
        }
    }

    const TOLERANCE: Duration = Duration::from_secs(300);

    #[test]
    fn what_sign_makes_verifies() {
        let secret = Secret::generate();
        let (timestamp, signatures) = signed(&secret, 1_000_000, b"{}");
        let message = message(&timestamp, &signatures, b"{}");
        assert_eq!(verify(&message, &secret, TOLERANCE, 1_000_000), Ok(()));
        // Among a rotation's two signatures and an unknown scheme, too.
        let several = format!(
            "v2,whatever {} {signatures}",
            sign("msg_1", 1_000_000, b"{}", &[Secret::generate()])
        );
        let message = SignedMessage {
            signatures: &several,
            ..message
        };
        assert_eq!(verify(&message, &secret, TOLERANCE, 1_000_000), Ok(()));
    }

    #[test]
    fn a_tampered_body_or_a_wrong_secret_is_refused() {
        let secret = Secret::generate();
        let (timestamp, signatures) = signed(&secret, 1_000_000, b"{}");
        let tampered = message(&timestamp, &signatures, b"{\"amount\":1}");
        assert_eq!(
            verify(&tampered, &secret, TOLERANCE, 1_000_000),
            Err(VerifyError::NoMatch { checked: 1 })
        );
        let genuine = message(&timestamp, &signatures, b"{}");
        let refusal = verify(&genuine, &Secret::generate(), TOLERANCE, 1_000_000);
        assert!(refusal.is_err_and(|e| e.to_string().contains("wrong secret")));
        let no_v1 = message(&timestamp, "v2,abc", b"{}");
        assert_eq!(
            verify(&no_v1, &secret, TOLERANCE, 1_000_000),
            Err(VerifyError::NoV1Signature)
        );
    }

    #[test]
    fn stale_future_and_garbled_timestamps_are_refused() {
        let secret = Secret::generate();
        let (timestamp, signatures) = signed(&secret, 1_000_000, b"{}");
        let message = message(&timestamp, &signatures, b"{}");
        let stale = verify(&message, &secret, TOLERANCE, 1_000_301);
        assert!(stale.is_err_and(|e| e.to_string().contains("301s old")));
        let future = verify(&message, &secret, TOLERANCE, 1_000_000 - 301);
        assert!(future.is_err_and(|e| e.to_string().contains("301s in the future")));
        // At the tolerance exactly, either way, it still verifies.
        assert_eq!(verify(&message, &secret, TOLERANCE, 1_000_300), Ok(()));
        assert_eq!(
            verify(&message, &secret, TOLERANCE, 1_000_000 - 300),
            Ok(())
        );
        let garbled = SignedMessage {
            timestamp: "soon",
            ..message
        };
        assert_eq!(
            verify(&garbled, &secret, TOLERANCE, 1_000_000),
            Err(VerifyError::BadTimestamp("soon".to_owned()))
        );
    }

    #[test]
    fn refusals_read_as_webhooks_listen_prints_them() {
        let texts = [
            (
                VerifyError::BadTimestamp("soon".to_owned()),
                "webhook-timestamp `soon` is not a Unix time in seconds",
            ),
            (
                VerifyError::TooOld {
                    age: 301,
                    tolerance: 300,
                },
                "webhook-timestamp is 301s old, more than the 300s tolerance (a replay, or a clock out of sync)",
            ),
            (
                VerifyError::InFuture {
                    ahead: 301,
                    tolerance: 300,
                },
                "webhook-timestamp is 301s in the future, more than the 300s tolerance (a clock out of sync)",
            ),
            (
                VerifyError::NoV1Signature,
                "webhook-signature holds no v1 signature",
            ),
            (
                VerifyError::NoMatch { checked: 2 },
                "no signature in webhook-signature matches this secret (2 checked): wrong secret, or the id, timestamp or body changed on the way",
            ),
        ];
        for (refusal, text) in texts {
            assert_eq!(refusal.to_string(), text);
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
