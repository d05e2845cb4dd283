//! `parse_retry_after`: the `Retry-After` header a destination answers with.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use webhooks::delivery::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let parsed = parse_retry_after(&input);
    if let Ok(seconds) = input.trim().parse::<u64>() {
        assert_eq!(parsed, Some(Duration::from_secs(seconds)));
    }
});
