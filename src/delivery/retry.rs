//! What an attempt's result means for the delivery: done, retry later, or failed for good.

use std::time::Duration;

use rand::Rng;

use super::sender::AttemptResult;
use crate::domain::{Outcome, RetrySchedule};

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * 3600);

/// Decides the outcome of an attempt, given how many failed attempts the delivery's current
/// schedule already had. A failure retries after the schedule's next delay plus up to 10%
/// jitter (so a recovering endpoint is not hit by every retry at once), or later when the
/// endpoint asked for it with `Retry-After` (429, 502, 503, 504; capped at 24 h); after the last
/// delay the delivery fails for good.
pub fn decide(result: &AttemptResult, previous_failures: i32, schedule: &RetrySchedule) -> Outcome {
    if result.is_success() {
        return Outcome::Succeeded;
    }
    let reason = result.describe();
    let failures = usize::try_from(previous_failures).unwrap_or(0) + 1;
    match schedule.delay_after(failures) {
        None => Outcome::FailedForGood { reason },
        Some(base) => {
            let jitter = base.mul_f64(rand::rng().random_range(0.0..0.1));
            let mut delay = base + jitter;
            if let Some(asked) = result.retry_after {
                delay = delay.max(asked.min(RETRY_AFTER_CAP));
            }
            Outcome::RetryAfter { delay, reason }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: u16, retry_after: Option<Duration>) -> AttemptResult {
        AttemptResult {
            status: Some(status),
            retry_after,
            ..AttemptResult::default()
        }
    }

    #[test]
    fn success_ends_and_failures_follow_the_schedule() {
        let schedule = RetrySchedule(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        assert_eq!(decide(&failed(204, None), 0, &schedule), Outcome::Succeeded);
        let Outcome::RetryAfter { delay, .. } = decide(&failed(500, None), 0, &schedule) else {
            panic!()
        };
        assert!(delay >= Duration::from_secs(10) && delay <= Duration::from_secs(11));
        let Outcome::RetryAfter { delay, .. } = decide(&failed(500, None), 1, &schedule) else {
            panic!()
        };
        assert!(delay >= Duration::from_secs(100) && delay <= Duration::from_secs(110));
        assert!(matches!(
            decide(&failed(500, None), 2, &schedule),
            Outcome::FailedForGood { .. }
        ));
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let schedule = RetrySchedule(vec![Duration::from_secs(1)]);
        let Outcome::RetryAfter { delay, .. } =
            decide(&failed(429, Some(Duration::from_secs(30))), 0, &schedule)
        else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(30));
        let Outcome::RetryAfter { delay, .. } = decide(
            &failed(503, Some(Duration::from_secs(10 * 86400))),
            0,
            &schedule,
        ) else {
            panic!()
        };
        assert_eq!(delay, RETRY_AFTER_CAP);
    }
}
