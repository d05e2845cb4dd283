//! Conversions between protobuf timestamps and `time::OffsetDateTime`.

use time::OffsetDateTime;

use super::ValidationError;

/// A point in time as the caller wrote it: seconds and nanoseconds since the Unix epoch, not yet
/// checked. Domain inputs carry it so the rules (and the field they blame) stay in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnixTime {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds past `seconds`; valid values are 0 to 999,999,999.
    pub nanos: i32,
}

/// Reads a protobuf timestamp from `field`; out-of-range values are the caller's mistake.
pub fn from_proto(
    field: &str,
    ts: &prost_types::Timestamp,
) -> Result<OffsetDateTime, ValidationError> {
    from_unix(
        field,
        UnixTime {
            seconds: ts.seconds,
            nanos: ts.nanos,
        },
    )
}

/// Checks a caller's point in time from `field`: nanoseconds in range, years 1970 to 9999.
pub fn from_unix(field: &str, ts: UnixTime) -> Result<OffsetDateTime, ValidationError> {
    let invalid = || ValidationError::new(field, "is not a valid timestamp");
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(invalid());
    }
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| invalid())?;
    // Postgres stores years 4713 BC to 294276 AD; keep to sane calendar years.
    if !(1970..=9999).contains(&at.year()) {
        return Err(ValidationError::new(field, "must be between 1970 and 9999"));
    }
    Ok(at)
}

/// Writes a protobuf timestamp.
pub fn to_proto(at: OffsetDateTime) -> prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: (nanos.div_euclid(1_000_000_000)) as i64,
        nanos: (nanos.rem_euclid(1_000_000_000)) as i32,
    }
}

/// RFC 3339 text, as the webhook payloads carry it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_nanos() {
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(to_proto(from_proto("t", &ts).unwrap()), ts);
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_proto("t", &bad).unwrap_err().field, "t");
    }
}
