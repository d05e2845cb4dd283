//! Durations as operators write them (`500ms`, `5s`, `5m`, `2h`, `1d`): the service's timeout and
//! retention settings and the operator tools' `--timeout`, `--since` and `--tolerance` flags all
//! parse them here, so a duration means the same everywhere.

use std::time::Duration;

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d` (a bare number means seconds), up to 30 days. Public so
/// the hostile-input tests and fuzz targets can reach it; it never panics.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
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
    if !seconds.is_finite() || seconds > 30.0 * 86400.0 {
        return Err(format!("`{value}` is out of range (at most 30d)"));
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
    }
}
