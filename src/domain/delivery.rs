//! The vocabulary of deliveries: where one stands, what an attempt was triggered by and failed
//! with, what an attempt leaves it as, and how deliveries to one endpoint are paced. Each enum
//! has one string form, stored in the database and shown in logs; `api::convert` maps them to
//! the wire enums.

use std::time::Duration;

/// Defines a string-backed enum: `as_str` gives the one stored form, `from_db` reads it back.
macro_rules! stored_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The name stored in the database (and used in logs).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Reads a stored name; `None` for a name this release does not know.
            pub fn from_db(value: &str) -> Option<Self> {
                match value {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_names! {
    /// Where a delivery stands.
    DeliveryStatus {
        /// Waiting for an attempt.
        Pending => "pending",
        /// Got a 2xx.
        Succeeded => "succeeded",
        /// The schedule ran out.
        Failed => "failed",
        /// Not sent by design.
        Skipped => "skipped",
        /// Webhook deleted first.
        Cancelled => "cancelled",
    }
}

stored_names! {
    /// What made an attempt happen; a delivery's next attempt has one too (`next_trigger`).
    AttemptTrigger {
        /// The retry schedule (the first attempt included).
        Scheduled => "scheduled",
        /// An admin's ResendDelivery.
        Resend => "resend",
        /// An admin's RecoverFailedDeliveries.
        Recover => "recover",
    }
}

stored_names! {
    /// Why an attempt failed.
    AttemptErrorKind {
        /// No answer within the request timeout.
        Timeout => "timeout",
        /// The connection could not be made.
        Connect => "connect",
        /// The destination's name did not resolve.
        Dns => "dns",
        /// The TLS handshake failed.
        Tls => "tls",
        /// The endpoint answered with a status other than 2xx.
        Status => "status",
        /// The SSRF guard refused the destination.
        Refused => "refused",
        /// The answer was not readable HTTP.
        Protocol => "protocol",
    }
}

stored_names! {
    /// What changed in a delivery-update log entry.
    UpdateKind {
        /// The delivery was created.
        Created => "created",
        /// An attempt succeeded.
        AttemptSucceeded => "attempt_succeeded",
        /// An attempt failed and another is scheduled.
        AttemptFailed => "attempt_failed",
        /// The last attempt failed: the delivery failed for good.
        Failed => "failed",
        /// The delivery was not sent by design.
        Skipped => "skipped",
        /// The webhook was deleted first.
        Cancelled => "cancelled",
        /// An admin resent or recovered it.
        Resent => "resent",
        /// The webhook was disabled (by an admin, a 410 Gone, or auto-disable).
        WebhookDisabled => "webhook_disabled",
        /// The webhook was enabled again.
        WebhookEnabled => "webhook_enabled",
        /// The webhook's circuit breaker opened: its deliveries wait.
        CircuitOpened => "circuit_opened",
        /// The webhook's circuit breaker closed: an attempt succeeded (or it was re-enabled).
        CircuitClosed => "circuit_closed",
        /// A delivery failed for good: logged right after its `Failed` entry, as an alert.
        DeliveryExhausted => "delivery_exhausted",
    }
}

impl UpdateKind {
    /// The kinds about a webhook's state rather than a delivery's progress: the alerts.
    pub const WEBHOOK_LEVEL: [UpdateKind; 5] = [
        UpdateKind::WebhookDisabled,
        UpdateKind::WebhookEnabled,
        UpdateKind::CircuitOpened,
        UpdateKind::CircuitClosed,
        UpdateKind::DeliveryExhausted,
    ];

    /// Whether this is a webhook-level update (see [`Self::WEBHOOK_LEVEL`]).
    pub fn is_webhook_level(self) -> bool {
        Self::WEBHOOK_LEVEL.contains(&self)
    }
}

/// What an attempt leaves the delivery as.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: done.
    Succeeded,
    /// Failed; try again after this delay (the schedule position moves on).
    RetryAfter {
        /// Delay before the next attempt.
        delay: Duration,
        /// Why it failed.
        reason: String,
    },
    /// Failed and the schedule ran out.
    FailedForGood {
        /// Why the last attempt failed.
        reason: String,
    },
}

impl Outcome {
    /// The status the delivery is left in.
    pub fn status(&self) -> DeliveryStatus {
        match self {
            Self::Succeeded => DeliveryStatus::Succeeded,
            Self::RetryAfter { .. } => DeliveryStatus::Pending,
            Self::FailedForGood { .. } => DeliveryStatus::Failed,
        }
    }
}

/// How deliveries to one endpoint are paced, enforced in the claim and result statements so
/// every instance agrees.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Attempts in flight to one webhook at once, across instances.
    pub max_in_flight_per_webhook: i64,
    /// Consecutive failures that open the circuit.
    pub breaker_threshold: i32,
    /// How long an open circuit holds deliveries back at first (doubling per further failure,
    /// up to 10 minutes).
    pub breaker_cooldown: Duration,
    /// Disable a webhook whose deliveries have all failed for this long (None: never).
    pub auto_disable_after: Option<Duration>,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_in_flight_per_webhook: 64,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            auto_disable_after: Some(Duration::from_secs(5 * 86400)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_and_unknown_names_are_none() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::from_db(status.as_str()), Some(*status));
        }
        for trigger in AttemptTrigger::ALL {
            assert_eq!(AttemptTrigger::from_db(trigger.as_str()), Some(*trigger));
        }
        for kind in AttemptErrorKind::ALL {
            assert_eq!(AttemptErrorKind::from_db(kind.as_str()), Some(*kind));
        }
        for kind in UpdateKind::ALL {
            assert_eq!(UpdateKind::from_db(kind.as_str()), Some(*kind));
        }
        assert_eq!(DeliveryStatus::from_db("Pending"), None);
        assert_eq!(
            AttemptErrorKind::as_str(AttemptErrorKind::Refused),
            "refused"
        );
        assert_eq!(UpdateKind::AttemptFailed.as_str(), "attempt_failed");
    }
}
