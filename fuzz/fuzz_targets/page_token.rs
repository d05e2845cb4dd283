//! `PageToken::parse`: the opaque page tokens of ListWebhooks and ListDeliveries.
//!
//! Even first bytes feed the rest to the parser as text; odd ones build a genuine token for one
//! set of filters from the next 8 bytes, check it round-trips and is refused for other filters,
//! then flip bytes of it as the rest says, so the parser is also driven near valid tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhooks::domain::{PageFilters, PageToken, PageTokenKeys};

fn filters(webhook: &str) -> PageFilters {
    PageFilters::new("ListDeliveries")
        .optional("webhook_id", Some(webhook))
        .set("statuses", ["failed"])
}

fn keys() -> PageTokenKeys {
    PageTokenKeys::new([42u8; 32], [])
}

fn check(text: &str, a: &PageFilters, b: &PageFilters) {
    match PageToken::parse(text, a, &keys()) {
        Ok(None) => assert!(text.is_empty()),
        Ok(Some(token)) => {
            assert!(token.after_seq >= 0);
            assert_eq!(token.encode(a, &keys()), text, "a token has exactly one spelling");
            let other = PageToken::parse(text, b, &keys()).expect_err("other filters are refused");
            assert_eq!(other.field, "page_token");
            assert!(other.rule.contains("different filters"));
        }
        Err(error) => assert_eq!(error.field, "page_token"),
    }
}

fuzz_target!(|data: &[u8]| {
    let a = filters("A");
    let b = filters("B");
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check(&String::from_utf8_lossy(rest), &a, &b);
        return;
    }
    let mut seq = [0u8; 8];
    let take = rest.len().min(8);
    seq[..take].copy_from_slice(&rest[..take]);
    let after_seq = i64::from_be_bytes(seq).checked_abs().unwrap_or(0);
    let token = PageToken { after_seq };
    let text = token.encode(&a, &keys());
    assert_eq!(PageToken::parse(&text, &a, &keys()), Ok(Some(token)));
    check(&text, &a, &b);
    let mut bytes = text.into_bytes();
    for pair in rest[take..].chunks(2) {
        if let [position, value] = pair {
            let len = bytes.len();
            bytes[usize::from(*position) % len] ^= value;
        }
    }
    check(&String::from_utf8_lossy(&bytes), &a, &b);
});
