//! The retry schedule: how long a delivery waits after each failed attempt, and when it gives up.
//! The service reads it from `WEBHOOKS_RETRY_SCHEDULE`; the delivery workers consult it after
//! every failure.

use std::time::Duration;

use super::parse_duration;

/// Delays between attempts after the first one fails: entry `i` is the wait after the
/// `i + 1`-th failure, and the number of entries is the number of retries (after the last one
/// fails, the delivery is FAILED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// The delay before the retry that follows the `failures`-th failed attempt (1-based), or
    /// `None` when the schedule is exhausted.
    pub fn delay_after(&self, failures: usize) -> Option<Duration> {
        failures.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }
}

/// Parses a retry schedule: comma-separated durations (see [`parse_duration`]); blank means no
/// retries. Public so the hostile-input tests and fuzz targets can reach it; it never panics.
pub fn parse_schedule(value: &str) -> Result<RetrySchedule, String> {
    if value.trim().is_empty() {
        return Ok(RetrySchedule(Vec::new()));
    }
    value
        .split(',')
        .map(|part| parse_duration(part.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map(RetrySchedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse() {
        let schedule = parse_schedule("1s, 2s").unwrap();
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(schedule.delay_after(2), Some(Duration::from_secs(2)));
        assert_eq!(schedule.delay_after(3), None);
    }
}
