//! What only the process suite needs besides `testkit`: the binary under test, and a receiver
//! that answers 200 after a random delay in a range (slow enough to keep deliveries in flight).

use std::time::Duration;

use testkit::{Receiver, Reply};

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = testkit::webhooks_bin!();

/// A receiver answering every request 200 after `min_ms..=max_ms` milliseconds.
pub async fn answering_after(min_ms: u64, max_ms: u64) -> Receiver {
    let receiver = Receiver::start().await;
    receiver.reply_by_default(
        Reply::status(200)
            .after_between(Duration::from_millis(min_ms), Duration::from_millis(max_ms)),
    );
    receiver
}
