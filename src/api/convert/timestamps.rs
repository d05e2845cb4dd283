//! Protobuf timestamps to and from `time::OffsetDateTime`; the rules for a caller's point in
//! time (and the field they blame) are the domain's ([`crate::domain::timestamps::from_unix`]).

use time::OffsetDateTime;

use crate::domain::ValidationError;
use crate::domain::timestamps::{UnixTime, from_unix};

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

/// Writes a protobuf timestamp.
pub fn to_proto(at: OffsetDateTime) -> prost_types::Timestamp {
    let nanos = at.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: (nanos.div_euclid(1_000_000_000)) as i64,
        nanos: (nanos.rem_euclid(1_000_000_000)) as i32,
    }
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
