//! `parse_duration` and `parse_schedule`: durations and the retry schedule from the environment.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use webhooks::domain::{parse_duration, parse_schedule};

const MAX: Duration = Duration::from_secs(30 * 86400);

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(duration) = parse_duration(&input) {
        assert!(duration <= MAX, "{input:?} gave {duration:?}");
    }
    if let Ok(schedule) = parse_schedule(&input) {
        assert!(schedule.0.iter().all(|d| *d <= MAX));
        let expected = if input.trim().is_empty() {
            0
        } else {
            input.split(',').count()
        };
        assert_eq!(schedule.0.len(), expected, "one delay per entry");
    }
});
