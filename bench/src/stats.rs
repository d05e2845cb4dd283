//! Latency summaries: nearest-rank percentiles where samples that never arrived count as
//! infinitely late, so a percentile that falls among them is reported as unknown (`None`) rather
//! than flattered.

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Samples measured.
    pub count: u64,
    /// Samples expected but never seen (counted as +infinity in the percentiles).
    pub missing: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest measured sample (`None` when something is missing: the true maximum is unknown).
    pub max_ms: Option<f64>,
    /// Mean of the measured samples.
    pub mean_ms: Option<f64>,
}

/// Summarises `samples_us` (microseconds, may be negative) with `missing` samples that never
/// arrived.
pub fn summarize(mut samples_us: Vec<i64>, missing: u64) -> Summary {
    samples_us.sort_unstable();
    let count = samples_us.len() as u64;
    let total = count + missing;
    let at = |p: f64| -> Option<f64> {
        if total == 0 {
            return None;
        }
        // Nearest rank, 1-based.
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        if rank > count {
            None
        } else {
            samples_us
                .get(rank as usize - 1)
                .map(|us| *us as f64 / 1000.0)
        }
    };
    let mean_ms = if count == 0 {
        None
    } else {
        Some(samples_us.iter().map(|us| *us as f64).sum::<f64>() / count as f64 / 1000.0)
    };
    Summary {
        count,
        missing,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: if missing == 0 {
            samples_us.last().map(|us| *us as f64 / 1000.0)
        } else {
            None
        },
        mean_ms,
    }
}

/// `12.3 ms`, or `> LIMIT` when the value is unknown because samples are missing.
pub fn fmt_ms(value: Option<f64>, limit: &str) -> String {
    match value {
        Some(ms) if ms.abs() >= 100.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{ms:.1} ms"),
        None => format!("> {limit}"),
    }
}

/// `a / b` as f64, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summarize((1..=100).map(|ms| ms * 1000).collect(), 0);
        assert_eq!(s.p50_ms, Some(50.0));
        assert_eq!(s.p90_ms, Some(90.0));
        assert_eq!(s.p99_ms, Some(99.0));
        assert_eq!(s.max_ms, Some(100.0));
    }

    #[test]
    fn missing_samples_make_high_percentiles_unknown() {
        let s = summarize((1..=98).map(|ms| ms * 1000).collect(), 2);
        assert_eq!(s.p50_ms, Some(50.0));
        assert_eq!(s.p99_ms, None);
        assert_eq!(s.max_ms, None);
        let empty = summarize(Vec::new(), 0);
        assert_eq!(empty.p50_ms, None);
    }
}
