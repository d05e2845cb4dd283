//! Webhook secrets at rest (signing secrets, custom header values, client keys): sealed with
//! XChaCha20-Poly1305 under `WEBHOOKS_ENCRYPTION_KEY`, so a database dump alone reveals none.
//!
//! Envelope: one version byte, then the payload.
//! - `0x00` + key bytes: plaintext (no encryption key configured; development only).
//! - `0x01` + 4-byte key fingerprint + 24-byte nonce + ciphertext: sealed. The fingerprint picks
//!   the key among the current and previous ones, which is what makes key rotation possible:
//!   configure the new key as current and the old one in `WEBHOOKS_ENCRYPTION_KEY_PREVIOUS`, run
//!   `webhooks reencrypt`, then drop the old key.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::domain::Secret;

const PLAINTEXT: u8 = 0;
const SEALED: u8 = 1;
/// Binds ciphertexts to their purpose: an envelope sealed as one thing (a webhook's custom
/// headers) fails authentication when opened as another (its signing secret).
const AAD: &[u8] = b"backoffice-webhooks/secret/v1";

/// What a sealed value is, bound into its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// A signing secret.
    Secret,
    /// A webhook's custom request headers (JSON).
    Headers,
    /// A webhook's client private key (PEM).
    ClientKey,
    /// The stored answer of an admin mutation called with a request id (it may carry a secret).
    Answer,
}

impl Sealed {
    fn aad(self) -> &'static [u8] {
        match self {
            Self::Secret => AAD,
            Self::Headers => b"backoffice-webhooks/custom-headers/v1",
            Self::ClientKey => b"backoffice-webhooks/client-key/v1",
            Self::Answer => b"backoffice-webhooks/request-answer/v1",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Secret => "a webhook secret",
            Self::Headers => "a webhook's custom headers",
            Self::ClientKey => "a webhook's client key",
            Self::Answer => "a request id's answer",
        }
    }
}

/// One encryption key, its fingerprint, and the key's HMAC to derive other keys from it.
struct SealingKey {
    fingerprint: [u8; 4],
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed with the encryption key: a derived key is its tag over a label, so it
    /// reveals nothing of the encryption key and differs per purpose.
    derivation: Hmac<Sha256>,
}

impl SealingKey {
    fn parse(encoded: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "must be standard base64 of 32 random bytes".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        let mut fingerprint = [0u8; 4];
        fingerprint.copy_from_slice(&Sha256::digest(&bytes)[..4]);
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| "invalid key length".to_owned())?;
        let derivation = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&bytes)
            .map_err(|_| "invalid key length".to_owned())?;
        Ok(Self {
            fingerprint,
            cipher,
            derivation,
        })
    }

    /// The key for `label`'s purpose: HMAC-SHA256(encryption key, label), the extract-free
    /// form of HKDF-Expand for one block, fine since the encryption key is already uniform.
    fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.derivation.clone();
        mac.update(label);
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        key
    }
}

/// Seals and opens webhook secrets.
#[derive(Default)]
pub struct Vault {
    current: Option<SealingKey>,
    previous: Vec<SealingKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("encrypting", &self.current.is_some())
            .field("previous_keys", &self.previous.len())
            .finish()
    }
}

impl Vault {
    /// A vault that stores secrets in plaintext (no key configured).
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// A vault sealing with `current` (base64 of 32 bytes) and also opening with `previous`.
    /// Errors name the setting and the rule, never the key.
    pub fn from_keys(current: Option<&str>, previous: &[String]) -> Result<Self, String> {
        let current = current
            .filter(|k| !k.trim().is_empty())
            .map(SealingKey::parse)
            .transpose()
            .map_err(|e| format!("WEBHOOKS_ENCRYPTION_KEY {e}"))?;
        let previous = previous
            .iter()
            .filter(|k| !k.trim().is_empty())
            .map(|k| {
                SealingKey::parse(k).map_err(|e| format!("WEBHOOKS_ENCRYPTION_KEY_PREVIOUS {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    /// Whether new secrets are encrypted.
    pub fn encrypts(&self) -> bool {
        self.current.is_some()
    }

    /// Keys for another purpose, named by `label`, derived from the current encryption key and
    /// then each previous one (so what the current key signs, and what former keys signed, can
    /// be told apart and both checked during a rotation); `None` without an encryption key.
    pub fn derived_keys(&self, label: &[u8]) -> Option<([u8; 32], Vec<[u8; 32]>)> {
        let current = self.current.as_ref()?.derive(label);
        let previous = self.previous.iter().map(|k| k.derive(label)).collect();
        Some((current, previous))
    }

    /// The envelope to store for `secret`.
    pub fn seal(&self, secret: &Secret) -> Result<Vec<u8>, StoreError> {
        self.seal_bytes(Sealed::Secret, secret.as_bytes())
    }

    /// The secret inside a stored envelope.
    pub fn open(&self, envelope: &[u8]) -> Result<Secret, StoreError> {
        self.open_bytes(Sealed::Secret, envelope)
            .map(Secret::from_bytes)
    }

    /// The envelope to store for `plaintext`, a `what`.
    pub fn seal_bytes(&self, what: Sealed, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(key) = &self.current else {
            let mut envelope = vec![PLAINTEXT];
            envelope.extend_from_slice(plaintext);
            return Ok(envelope);
        };
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: what.aad(),
                },
            )
            .map_err(|_| StoreError::Corrupt(format!("sealing {} failed", what.noun())))?;
        let mut envelope = Vec::with_capacity(1 + 4 + 24 + ciphertext.len());
        envelope.push(SEALED);
        envelope.extend_from_slice(&key.fingerprint);
        envelope.extend_from_slice(&nonce);
        envelope.extend_from_slice(&ciphertext);
        Ok(envelope)
    }

    /// The plaintext inside a stored envelope of a `what`.
    pub fn open_bytes(&self, what: Sealed, envelope: &[u8]) -> Result<Vec<u8>, StoreError> {
        match envelope.split_first() {
            Some((&PLAINTEXT, plaintext)) => Ok(plaintext.to_vec()),
            Some((&SEALED, rest)) if rest.len() > 28 => {
                let (fingerprint, rest) = rest.split_at(4);
                let (nonce, ciphertext) = rest.split_at(24);
                let key = self
                    .current
                    .iter()
                    .chain(self.previous.iter())
                    .find(|k| k.fingerprint == fingerprint)
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "{} is sealed with a key that is not configured \
                             (set WEBHOOKS_ENCRYPTION_KEY or WEBHOOKS_ENCRYPTION_KEY_PREVIOUS)",
                            what.noun()
                        ))
                    })?;
                let plaintext = key
                    .cipher
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: what.aad(),
                        },
                    )
                    .map_err(|_| {
                        StoreError::Corrupt(format!("{} failed authentication", what.noun()))
                    })?;
                Ok(plaintext)
            }
            _ => Err(StoreError::Corrupt(format!(
                "unknown envelope of {}",
                what.noun()
            ))),
        }
    }

    /// Whether an envelope is sealed with the current key (re-encryption skips those).
    pub fn is_current(&self, envelope: &[u8]) -> bool {
        match (&self.current, envelope.split_first()) {
            (Some(key), Some((&SEALED, rest))) => rest.get(..4) == Some(&key.fingerprint[..]),
            (None, Some((&PLAINTEXT, _))) => true,
            _ => false,
        }
    }
}

impl super::Store {
    /// Re-seals every stored webhook secret, custom header set and client key not sealed with
    /// the current key (key rotation), and the stored answers of request ids. Returns how many
    /// webhooks were rewritten.
    pub async fn reencrypt_secrets(
        &self,
        context: &crate::domain::RequestContext,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, secret, previous_secret, custom_headers, client_key FROM webhooks \
                 FOR UPDATE",
                &[],
            )
            .await?;
        let vault = self.vault();
        let stale = |envelope: Option<&[u8]>| envelope.is_some_and(|e| !vault.is_current(e));
        let reseal = |what: Sealed, envelope: Option<Vec<u8>>| {
            envelope
                .map(|e| {
                    vault
                        .open_bytes(what, &e)
                        .and_then(|plain| vault.seal_bytes(what, &plain))
                })
                .transpose()
        };
        let mut rewritten = 0;
        for row in &rows {
            let id: uuid::Uuid = row.try_get(0)?;
            let secret: Vec<u8> = row.try_get(1)?;
            let previous: Option<Vec<u8>> = row.try_get(2)?;
            let headers: Option<Vec<u8>> = row.try_get(3)?;
            let key: Option<Vec<u8>> = row.try_get(4)?;
            if !stale(Some(&secret))
                && !stale(previous.as_deref())
                && !stale(headers.as_deref())
                && !stale(key.as_deref())
            {
                continue;
            }
            let secret = self.vault().seal(&self.vault().open(&secret)?)?;
            let previous = reseal(Sealed::Secret, previous)?;
            let headers = reseal(Sealed::Headers, headers)?;
            let key = reseal(Sealed::ClientKey, key)?;
            tx.execute(
                "UPDATE webhooks SET secret = $2, previous_secret = $3, custom_headers = $4, \
                 client_key = $5 WHERE id = $1",
                &[&id, &secret, &previous, &headers, &key],
            )
            .await?;
            rewritten += 1;
        }
        // The stored answers of request ids (they may carry a secret shown once).
        let answers = tx
            .query(
                "SELECT rpc, caller, request_id, response FROM admin_requests FOR UPDATE",
                &[],
            )
            .await?;
        for row in &answers {
            let response: Vec<u8> = row.try_get(3)?;
            if !stale(Some(&response)) {
                continue;
            }
            let resealed = reseal(Sealed::Answer, Some(response))?;
            tx.execute(
                "UPDATE admin_requests SET response = $4 \
                 WHERE rpc = $1 AND caller = $2 AND request_id = $3",
                &[
                    &row.try_get::<_, String>(0)?,
                    &row.try_get::<_, Vec<u8>>(1)?,
                    &row.try_get::<_, uuid::Uuid>(2)?,
                    &resealed,
                ],
            )
            .await?;
        }
        let diff = serde_json::json!({ "webhooks_resealed": rewritten });
        super::audit::append(
            &tx,
            &context.audit(
                crate::domain::AuditAction::SecretsReencrypted,
                "vault",
                "",
                diff,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_secrets_open_and_do_not_contain_the_key() {
        let vault = Vault::from_keys(Some(&key(1)), &[]).unwrap();
        let secret = Secret::parse_or_generate("a-plain-secret-value").unwrap();
        let envelope = vault.seal(&secret).unwrap();
        assert!(
            !envelope
                .windows(10)
                .any(|w| w == &b"a-plain-secret-value"[..10])
        );
        assert_eq!(vault.open(&envelope).unwrap(), secret);
        assert!(vault.is_current(&envelope));
    }

    #[test]
    fn rotation_opens_old_envelopes_with_the_previous_key() {
        let old = Vault::from_keys(Some(&key(1)), &[]).unwrap();
        let secret = Secret::generate();
        let envelope = old.seal(&secret).unwrap();
        let rotated = Vault::from_keys(Some(&key(2)), &[key(1)]).unwrap();
        assert_eq!(rotated.open(&envelope).unwrap(), secret);
        assert!(!rotated.is_current(&envelope));
        let without_old = Vault::from_keys(Some(&key(2)), &[]).unwrap();
        assert!(without_old.open(&envelope).is_err());
    }

    #[test]
    fn derived_keys_differ_per_label_and_from_the_encryption_key() {
        let vault = Vault::from_keys(Some(&key(4)), &[key(5)]).unwrap();
        let (a, previous) = vault.derived_keys(b"a").unwrap();
        let (b, _) = vault.derived_keys(b"b").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [4u8; 32]);
        assert_eq!(previous.len(), 1);
        assert_ne!(previous[0], a);
        let again = Vault::from_keys(Some(&key(4)), &[]).unwrap();
        assert_eq!(
            again.derived_keys(b"a").unwrap().0,
            a,
            "the same key derives the same"
        );
        assert!(Vault::plaintext().derived_keys(b"a").is_none());
    }

    #[test]
    fn tampering_and_bad_keys_are_refused() {
        let vault = Vault::from_keys(Some(&key(3)), &[]).unwrap();
        let mut envelope = vault.seal(&Secret::generate()).unwrap();
        let last = envelope.len() - 1;
        envelope[last] ^= 1;
        assert!(vault.open(&envelope).is_err());
        assert!(
            Vault::from_keys(Some("short"), &[])
                .unwrap_err()
                .contains("WEBHOOKS_ENCRYPTION_KEY")
        );
    }
}
