//! Opaque page tokens (AIP-158). A token wraps the sequence number of the last row returned, so
//! pages stay stable while rows are added, and is bound to the filters of the request that
//! issued it: a token from one listing (say webhook A, status FAILED) presented with other
//! filters (webhook B) is refused, so it can never be turned into a view the caller did not ask
//! for, nor silently skip or repeat rows.
//!
//! Wire form: base64url (no padding) of 25 bytes — a version byte, the position as a big-endian
//! `i64`, and the first 16 bytes of SHA-256 over a domain tag and the canonical description of
//! the filters ([`PageFilters`]). The position is not secret (it only says where a page ends), so
//! no server key is needed: what matters is that the filters cannot be swapped, and any instance
//! of the service checks that the same way.

use std::fmt::Display;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::ValidationError;

/// A position in a listing ordered by a table's `seq` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    /// The `seq` of the last row of the previous page.
    pub after_seq: i64,
}

/// The token format this version writes and reads.
const VERSION: u8 = 2;
/// Bytes of the filter digest kept in a token.
const DIGEST_LEN: usize = 16;
/// Version, position, digest.
const TOKEN_LEN: usize = 1 + 8 + DIGEST_LEN;
/// Longer input cannot be a token; refused before decoding so hostile input costs nothing.
const MAX_ENCODED_LEN: usize = 64;
/// Separates this digest from every other SHA-256 the service computes.
const DOMAIN_TAG: &[u8] = b"backoffice.webhooks.v1 page token\n";

/// The field every page-token error names.
const FIELD: &str = "page_token";

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
                    .push_str(&format!("{}:{name}={}:{value};", name.len(), value.len()))
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
    /// that was not issued by this API, or was issued for other filters, is refused naming
    /// `page_token`.
    pub fn parse(value: &str, filters: &PageFilters) -> Result<Option<Self>, ValidationError> {
        if value.is_empty() {
            return Ok(None);
        }
        let invalid = || {
            ValidationError::new(
                FIELD,
                "is not a token returned by this API (pass next_page_token unchanged, or empty for the first page)",
            )
        };
        if value.len() > MAX_ENCODED_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| invalid())?;
        let Ok(bytes) = <[u8; TOKEN_LEN]>::try_from(bytes.as_slice()) else {
            return Err(invalid());
        };
        let (version, rest) = bytes.split_at(1);
        let (position, digest) = rest.split_at(8);
        if version != [VERSION] {
            return Err(invalid());
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(position);
        let after_seq = i64::from_be_bytes(seq);
        if after_seq < 0 {
            return Err(invalid());
        }
        if digest != filters.digest() {
            return Err(ValidationError::new(
                FIELD,
                "was issued for different filters: repeat the request with the filters that returned it, or send an empty page_token to start over",
            ));
        }
        Ok(Some(Self { after_seq }))
    }

    /// The token's wire form, bound to `filters`.
    pub fn encode(&self, filters: &PageFilters) -> String {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&self.after_seq.to_be_bytes());
        bytes[9..].copy_from_slice(&filters.digest());
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
            let text = token.encode(&filters);
            assert!(text.len() <= MAX_ENCODED_LEN);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text} is base64url"
            );
            assert_eq!(PageToken::parse(&text, &filters).unwrap(), Some(token));
        }
        assert_eq!(PageToken::parse("", &filters).unwrap(), None);
    }

    #[test]
    fn a_token_for_other_filters_is_refused() {
        let issued = PageToken { after_seq: 7 }.encode(&deliveries("A", &["failed"]));
        for other in [
            deliveries("B", &["failed"]),
            deliveries("A", &[]),
            deliveries("A", &["failed", "pending"]),
            PageFilters::new("ListWebhooks"),
            deliveries("A", &["failed"]).optional("request_id", Some("R-1")),
        ] {
            let err = PageToken::parse(&issued, &other).unwrap_err();
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
        let old_format = URL_SAFE_NO_PAD.encode("p1:42");
        let mut wrong_version = URL_SAFE_NO_PAD
            .decode(PageToken { after_seq: 1 }.encode(&filters))
            .unwrap();
        wrong_version[0] = 1;
        let mut negative = URL_SAFE_NO_PAD
            .decode(PageToken { after_seq: 1 }.encode(&filters))
            .unwrap();
        negative[1] = 0x80;
        let long = "A".repeat(MAX_ENCODED_LEN + 1);
        for bad in [
            "garbage!".to_owned(),
            old_format,
            URL_SAFE_NO_PAD.encode(wrong_version),
            URL_SAFE_NO_PAD.encode(negative),
            long,
            "=".to_owned(),
            " ".to_owned(),
        ] {
            let err = PageToken::parse(&bad, &filters).unwrap_err();
            assert_eq!(err.field, "page_token", "{bad}");
            assert!(err.rule.contains("not a token"), "{bad}: {}", err.rule);
        }
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0, 50, 1000).unwrap(), 50);
        assert_eq!(page_size(1000, 50, 1000).unwrap(), 1000);
        assert!(page_size(1001, 50, 1000).is_err());
        assert!(page_size(-1, 50, 1000).is_err());
    }
}
