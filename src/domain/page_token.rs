//! Opaque page tokens (AIP-158). A token wraps the sequence number of the last row returned, so
//! pages stay stable while rows are added. It is bound to the filters of the request that
//! issued it: a token from one listing (say webhook A, status FAILED) presented with other
//! filters (webhook B) is refused, so it can never be turned into a view the caller did not ask
//! for, nor silently skip or repeat rows. And it is authenticated: a token that was edited (its
//! position changed, its filter digest swapped for another listing's) is refused rather than
//! read as another position.
//!
//! Wire form: base64url (no padding) of 41 bytes — a version byte, the position as a
//! big-endian `i64`, the first 16 bytes of SHA-256 over a domain tag and the canonical
//! description of the filters ([`PageFilters`]), then the first 16 bytes of HMAC-SHA256 over
//! all of that under the service's page-token key ([`PageTokenKeys`]). Every instance of a
//! deployment holds the same key (derived from `WEBHOOKS_ENCRYPTION_KEY`, or kept in the
//! database), so a token minted by one instance pages on any other.

use std::fmt::{self, Display};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::ValidationError;

/// A position in a listing ordered by a table's `seq` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// The `seq` of the last row of the previous page.
    pub after_seq: i64,
}

/// The token format this version writes and reads (2 had no authentication tag).
const VERSION: u8 = 3;
/// Bytes of the filter digest kept in a token.
const DIGEST_LEN: usize = 16;
/// Bytes of the HMAC-SHA256 tag kept in a token: 128 bits, as many as a forger must guess.
const TAG_LEN: usize = 16;
/// Version, position, digest: what the tag covers.
const BODY_LEN: usize = 1 + 8 + DIGEST_LEN;
/// Version, position, digest, tag.
const TOKEN_LEN: usize = BODY_LEN + TAG_LEN;
/// Longer input cannot be a token; refused before decoding so hostile input costs nothing.
const MAX_ENCODED_LEN: usize = 64;
/// Separates this digest from every other SHA-256 the service computes.
const DOMAIN_TAG: &[u8] = b"backoffice.webhooks.v1 page token\n";
/// Separates this MAC from every other HMAC the service computes under a related key.
const MAC_TAG: &[u8] = b"backoffice.webhooks.v1 page token mac\n";

/// The field every page-token error names.
const FIELD: &str = "page_token";

/// The keys that authenticate page tokens: tokens are signed with the first and accepted under
/// any (the others are derived from former encryption keys, so a key rotation does not break
/// the pages being read). Its `Debug` never shows a key.
#[derive(Clone, PartialEq, Eq)]
pub struct PageTokenKeys {
    keys: Vec<[u8; 32]>,
}

impl PageTokenKeys {
    /// Signs with `current`, and also accepts tokens signed with any of `previous`.
    pub fn new(current: [u8; 32], previous: impl IntoIterator<Item = [u8; 32]>) -> Self {
        let mut keys = vec![current];
        keys.extend(previous);
        Self { keys }
    }

    /// The tag of a token body under `key`, ready to finalize or verify; `None` never happens
    /// (HMAC takes keys of any length) but is not worth a panic.
    fn mac(key: &[u8; 32], body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        mac.update(MAC_TAG);
        mac.update(body);
        Some(mac)
    }

    /// The tag of `body` under the signing key.
    fn sign(&self, body: &[u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        if let Some(mac) = self.keys.first().and_then(|key| Self::mac(key, body)) {
            tag.copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        }
        tag
    }

    /// Whether `tag` is the tag of `body` under one of the keys (compared in constant time).
    fn verify(&self, body: &[u8], tag: &[u8]) -> bool {
        self.keys.iter().any(|key| {
            Self::mac(key, body).is_some_and(|mac| mac.verify_truncated_left(tag).is_ok())
        })
    }
}

impl fmt::Debug for PageTokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTokenKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The filters of one listing request, in a canonical form a page token is bound to.
///
/// Build it from the *parsed* filters (so equivalent spellings agree) with every filter the
/// listing has, including absent ones; a filter added to a listing later must be added here too,
/// or tokens would carry over between requests that differ in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFilters {
    canonical: String,
}

impl PageFilters {
    /// The filters of `listing` (e.g. `ListDeliveries`), none added yet.
    pub fn new(listing: &str) -> Self {
        let mut filters = Self {
            canonical: String::new(),
        };
        filters.push("listing", Some(listing));
        filters
    }

    /// Adds a filter that may be absent; absent and empty are told apart.
    pub fn optional(mut self, name: &str, value: Option<impl Display>) -> Self {
        self.push(name, value.map(|v| v.to_string()).as_deref());
        self
    }

    /// Adds a set-valued filter: order and repeats do not matter.
    pub fn set<T: Display>(mut self, name: &str, values: impl IntoIterator<Item = T>) -> Self {
        let mut values: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
        values.sort_unstable();
        values.dedup();
        let mut joined = String::new();
        for value in &values {
            // Length-prefixed, so no value can imitate a separator.
            joined.push_str(&format!("{}:{value};", value.len()));
        }
        self.push(name, Some(&joined));
        self
    }

    /// Appends `name` and `value` unambiguously: every part is length-prefixed.
    fn push(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.canonical
                    .push_str(&format!("{}:{name}={}:{value};", name.len(), value.len()));
            }
            None => self.canonical.push_str(&format!("{}:{name}~;", name.len())),
        }
    }

    /// The digest a token carries.
    fn digest(&self) -> [u8; DIGEST_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN_TAG);
        hasher.update(self.canonical.as_bytes());
        let full = hasher.finalize();
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&full[..DIGEST_LEN]);
        digest
    }
}

impl PageToken {
    /// Parses `page_token` for a request with `filters`; empty means the first page. A token
    /// that was not issued by this service, or was changed, or was issued for other filters,
    /// is refused naming `page_token`.
    pub fn parse(
        value: &str,
        filters: &PageFilters,
        keys: &PageTokenKeys,
    ) -> Result<Option<Self>, ValidationError> {
        if value.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            ValidationError::new(
                FIELD,
                "is not a token returned by this API, or was changed (pass next_page_token unchanged, or empty for the first page)",
            )
        };
        if value.len() > MAX_ENCODED_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let Ok(bytes) = <[u8; TOKEN_LEN]>::try_from(bytes.as_slice()) else {
            return Err(invalid());
        };
        let (body, tag) = bytes.split_at(BODY_LEN);
        // Authenticated before anything in it is believed: an edited position or digest is
        // refused here, whatever it says.
        if body[0] != VERSION || !keys.verify(body, tag) {
            return Err(invalid());
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..9]);
        let after_seq = i64::from_be_bytes(seq);
        if after_seq < 0 {
            return Err(invalid());
        }
        // Genuine, but from another listing: said so, since that is a mistake a caller can fix.
        if body[9..] != filters.digest() {
            return Err(ValidationError::new(
                FIELD,
                "was issued for different filters: repeat the request with the filters that returned it, or send an empty page_token to start over",
            ));
        }
        Ok(Some(Self { after_seq }))
    }

    /// The token's wire form, bound to `filters` and signed with `keys`.
    pub fn encode(&self, filters: &PageFilters, keys: &PageTokenKeys) -> String {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&self.after_seq.to_be_bytes());
        bytes[9..BODY_LEN].copy_from_slice(&filters.digest());
        let tag = keys.sign(&bytes[..BODY_LEN]);
        bytes[BODY_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Parses `page_size`: 0 means `default`, otherwise 1 to `max`.
pub fn page_size(value: i32, default: i64, max: i64) -> Result<i64, ValidationError> {
    match i64::from(value) {
        0 => Ok(default),
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(ValidationError::new(
            "page_size",
            format!("must be between 1 and {max} (0 means {default})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> PageTokenKeys {
        PageTokenKeys::new([7u8; 32], [])
    }

    fn deliveries(webhook: &str, statuses: &[&str]) -> PageFilters {
        PageFilters::new("ListDeliveries")
            .optional("webhook_id", Some(webhook))
            .set("statuses", statuses.iter())
            .optional("event_type", None::<&str>)
    }

    #[test]
    fn tokens_round_trip_for_the_same_filters() {
        let filters = deliveries("A", &["failed"]);
        for after_seq in [0, 1, 42, i64::MAX] {
            let token = PageToken { after_seq };
            let text = token.encode(&filters, &keys());
            assert!(text.len() <= MAX_ENCODED_LEN);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text} is base64url"
            );
            assert_eq!(
                PageToken::parse(&text, &filters, &keys()).unwrap(),
                Some(token)
            );
        }
        assert_eq!(PageToken::parse("", &filters, &keys()).unwrap(), None);
    }

    #[test]
    fn a_token_for_other_filters_is_refused() {
        let issued = PageToken { after_seq: 7 }.encode(&deliveries("A", &["failed"]), &keys());
        for other in [
            deliveries("B", &["failed"]),
            deliveries("A", &[]),
            deliveries("A", &["failed", "pending"]),
            PageFilters::new("ListWebhooks"),
            deliveries("A", &["failed"]).optional("request_id", Some("R-1")),
        ] {
            let err = PageToken::parse(&issued, &other, &keys()).unwrap_err();
            assert_eq!(err.field, "page_token");
            assert!(err.rule.contains("different filters"), "{}", err.rule);
        }
    }

    #[test]
    fn equivalent_filters_agree_and_ambiguous_ones_do_not() {
        // Sets ignore order and repeats.
        assert_eq!(
            deliveries("A", &["pending", "failed"]).digest(),
            deliveries("A", &["failed", "pending", "failed"]).digest()
        );
        // Absent is not empty.
        assert_ne!(
            PageFilters::new("L").optional("x", None::<&str>).digest(),
            PageFilters::new("L").optional("x", Some("")).digest()
        );
        // A value cannot imitate a separator and a following field.
        assert_ne!(
            PageFilters::new("L")
                .optional("a", Some("1;1:b=1:2"))
                .digest(),
            PageFilters::new("L")
                .optional("a", Some("1"))
                .optional("b", Some("2"))
                .digest()
        );
        assert_ne!(
            PageFilters::new("L").set("s", ["a;b"]).digest(),
            PageFilters::new("L").set("s", ["a", "b"]).digest()
        );
    }

    #[test]
    fn garbage_old_and_tampered_tokens_are_refused() {
        let filters = deliveries("A", &[]);
        let genuine = || {
            URL_SAFE_NO_PAD
                .decode(PageToken { after_seq: 1 }.encode(&filters, &keys()))
                .unwrap()
        };
        let old_format = URL_SAFE_NO_PAD.encode("p1:42");
        let mut unsigned_v2 = genuine();
        unsigned_v2[0] = 2;
        unsigned_v2.truncate(BODY_LEN);
        let mut negative = genuine();
        negative[1] = 0x80;
        let mut moved = genuine();
        moved[8] = 9;
        let long = "A".repeat(MAX_ENCODED_LEN + 1);
        let mut bad = vec![
            "garbage!".to_owned(),
            old_format,
            URL_SAFE_NO_PAD.encode(unsigned_v2),
            URL_SAFE_NO_PAD.encode(negative),
            URL_SAFE_NO_PAD.encode(moved),
            long,
            "=".to_owned(),
            " ".to_owned(),
        ];
        for at in 0..TOKEN_LEN {
            let mut flipped = genuine();
            flipped[at] ^= 0x01;
            bad.push(URL_SAFE_NO_PAD.encode(flipped));
        }
        for bad in bad {
            let err = PageToken::parse(&bad, &filters, &keys()).unwrap_err();
            assert_eq!(err.field, "page_token", "{bad}");
            assert!(err.rule.contains("not a token"), "{bad}: {}", err.rule);
        }
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused_unless_that_key_is_a_previous_one() {
        let filters = deliveries("A", &[]);
        let old = PageTokenKeys::new([1u8; 32], []);
        let text = PageToken { after_seq: 5 }.encode(&filters, &old);
        let other = PageTokenKeys::new([2u8; 32], []);
        let err = PageToken::parse(&text, &filters, &other).unwrap_err();
        assert!(err.rule.contains("not a token"), "{}", err.rule);
        let rotated = PageTokenKeys::new([2u8; 32], [[1u8; 32]]);
        assert_eq!(
            PageToken::parse(&text, &filters, &rotated).unwrap(),
            Some(PageToken { after_seq: 5 })
        );
        // New tokens are signed with the current key only.
        let fresh = PageToken { after_seq: 5 }.encode(&filters, &rotated);
        assert!(PageToken::parse(&fresh, &filters, &old).is_err());
        assert!(PageToken::parse(&fresh, &filters, &other).is_ok());
    }

    #[test]
    fn debug_never_shows_a_key() {
        let text = format!("{:?}", PageTokenKeys::new([0xab; 32], [[0xcd; 32]]));
        assert!(
            !text.contains("171") && !text.contains("ab, ") && !text.contains("205"),
            "{text}"
        );
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0, 50, 1000).unwrap(), 50);
        assert_eq!(page_size(1000, 50, 1000).unwrap(), 1000);
        assert!(page_size(1001, 50, 1000).is_err());
        assert!(page_size(-1, 50, 1000).is_err());
    }
}
