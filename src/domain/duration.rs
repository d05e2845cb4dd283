//! Durations as operators write them (`500ms`, `5s`, `5m`, `2h`, `1d`): the service's timeout and
//! retention settings and the operator tools' `--timeout`, `--since` and `--tolerance` flags all
//! parse them here, so a duration means the same everywhere.

use std::time::Duration;

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d` (a bare number means seconds), up to 30 days. Public so
/// the hostile-input tests and fuzz targets can reach it; it never panics.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    parse_up_to(value, 30)
}

/// [`parse_duration`] up to 3650 days, for retentions that regulation counts in years (the
/// audit trail's `WEBHOOKS_AUDIT_RETENTION`).
pub fn parse_long_duration(value: &str) -> Result<Duration, String> {
    parse_up_to(value, 3650)
}

fn parse_up_to(value: &str, max_days: u32) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 500ms, 5s, 5m, 2h or 1d"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86400.0,
        _ => {
            return Err(format!(
                "`{value}` has an unknown unit: use ms, s, m, h or d"
            ));
        }
    };
    if !seconds.is_finite() || seconds > f64::from(max_days) * 86400.0 {
        return Err(format!("`{value}` is out of range (at most {max_days}d)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("400d").is_err());
        assert_eq!(
            parse_long_duration("400d").unwrap(),
            Duration::from_secs(400 * 86400)
        );
    }
}
