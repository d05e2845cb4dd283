//! Resource ids. Each kind of id is its own type, so a webhook id can never be passed where a
//! delivery id is expected; they are UUIDs underneath and go to and from Postgres `uuid` columns
//! as they are. A malformed id is the caller's mistake (INVALID_ARGUMENT), an unknown one is
//! NOT_FOUND.

use std::fmt;

use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use super::ValidationError;

/// Parses the id in `field`.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    Uuid::try_parse(value.trim()).map_err(|_| {
        ValidationError::new(
            field,
            "must be a UUID like 0190c6f6-8f5e-7c3a-9d4e-2b1f0a9c8d7e",
        )
    })
}

/// Stores a newtype as the Postgres value of the type it wraps (`uuid` or `bigint`), so store
/// code binds and reads typed ids directly.
macro_rules! sql_as_inner {
    ($name:ident, $inner:ty) => {
        impl ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.0.to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <$inner as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                <$inner>::from_sql(ty, raw).map(Self)
            }

            fn accepts(ty: &Type) -> bool {
                <$inner as FromSql>::accepts(ty)
            }
        }
    };
}

/// Defines an id type over a UUID.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7), so ids sort roughly by creation.
            pub fn now_v7() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the id a caller sent in `field`.
            pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
                parse_id(field, value).map(Self)
            }

            /// The UUID underneath.
            pub fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        sql_as_inner!($name, Uuid);
    };
}

uuid_id! {
    /// A webhook's id.
    WebhookId
}

uuid_id! {
    /// A delivery's id; `msg_<id>` is its webhook-id header.
    DeliveryId
}

uuid_id! {
    /// A published event's id.
    EventId
}

impl DeliveryId {
    /// The `webhook-id` header value of every attempt of this delivery: `msg_` and the id's 32
    /// hex digits.
    pub fn message_id(self) -> String {
        format!("msg_{}", self.as_uuid().simple())
    }
}

uuid_id! {
    /// A delivery attempt's id, chosen before the attempt is recorded so recording it twice is a
    /// no-op.
    AttemptId
}

uuid_id! {
    /// The fencing token of one claim on deliveries: a result is written only while the delivery
    /// still carries the token it was claimed with.
    ClaimToken
}

/// A position in the delivery-update log: dense and increasing across instances, so a watcher
/// resumes after the last cursor it saw and notices a gap. 0 is "before the first entry".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor(i64);

impl Cursor {
    /// Before the first entry of the log.
    pub const START: Self = Self(0);

    /// The cursor a client sent (`after_cursor`), or one read from the log.
    pub fn new(position: i64) -> Self {
        Self(position)
    }

    /// The position, for the wire and for arithmetic on log ranges.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The entry right after this one.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

sql_as_inner!(Cursor, i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_empty_ids_name_the_field() {
        assert_eq!(parse_id("id", "").unwrap_err().rule, "is required");
        assert_eq!(
            parse_id("webhook_id", "nope").unwrap_err().field,
            "webhook_id"
        );
        assert!(parse_id("id", &Uuid::new_v4().to_string()).is_ok());
    }

    #[test]
    fn typed_ids_show_and_parse_as_their_uuid() {
        let uuid = Uuid::now_v7();
        let id = WebhookId::from(uuid);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(WebhookId::parse("id", &uuid.to_string()).unwrap(), id);
        assert_eq!(DeliveryId::parse("id", "x").unwrap_err().field, "id");
    }

    #[test]
    fn cursors_order_by_position_and_next_is_one_after() {
        let cursor = Cursor::new(41);
        assert_eq!(cursor.next(), Cursor::new(42));
        assert!(Cursor::START < cursor);
        assert_eq!(cursor.to_string(), "41");
        assert_eq!(Cursor::new(i64::MAX).next(), Cursor::new(i64::MAX));
    }
}
