//! Points in time as callers write them (seconds and nanoseconds since the epoch, checked
//! here) and as webhook payloads carry them (RFC 3339). The protobuf form is `api`'s
//! (`api::convert::timestamps`).

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

/// RFC 3339 text, as the webhook payloads carry it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
