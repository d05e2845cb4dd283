//! "There is new work": the in-process wake-ups of one instance, and the LISTEN task that turns
//! other instances' NOTIFYs into the same wake-ups.
//!
//! Every write that makes work (a publish, a resend or recovery, a re-enabled webhook, a
//! sequencer round) wakes this instance's waiter in-process and NOTIFYs the others, with this
//! instance's [`Wakeups::origin`] as the payload: the listener skips notifications carrying its
//! own origin, so an instance is woken once for its own writes, not a second time through its
//! own NOTIFY. A notification is only a hint: everyone polls as well, so a lost notification or
//! a dropped listener connection delays work by at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::PgConnector;
use crate::shutdown::Shutdown;

/// Wakes one waiter (or the next one to wait) when there is new work. Cheap to clone; clones
/// wake the same waiter.
#[derive(Debug, Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    /// There is new work. Wakes the waiter, or leaves it a permit when it is busy, so a wake-up
    /// sent while it works is not lost.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Waits for [`Wakeup::wake`] (returns at once on a permit left meanwhile).
    pub async fn wait(&self) {
        self.0.notified().await;
    }
}

/// The wake-ups of one instance, shared by all its stores (the delivery-results pool's too).
#[derive(Debug, Clone)]
pub struct Wakeups {
    /// Sent as the payload of this instance's NOTIFYs, so its own listener can skip them.
    origin: Arc<str>,
    /// Due deliveries: wakes the delivery worker.
    pub deliveries: Wakeup,
    /// New entries in the delivery log: wakes the update hub's reader.
    pub updates: Wakeup,
    /// Entries appended to the delivery-update log: wakes this instance's sequencer.
    pub appended: Wakeup,
}

impl Default for Wakeups {
    fn default() -> Self {
        Self {
            origin: uuid::Uuid::new_v4().simple().to_string().into(),
            deliveries: Wakeup::default(),
            updates: Wakeup::default(),
            appended: Wakeup::default(),
        }
    }
}

impl Wakeups {
    /// The payload of this instance's NOTIFYs: an id of this process, nothing else.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Channels to LISTEN on, each with what to wake, skipping this instance's own notifications.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    /// This instance's origin: notifications carrying it were already acted on in-process.
    origin: Arc<str>,
    channels: Vec<(&'static str, Wakeup)>,
}

impl Subscriptions {
    /// No channel yet; notifications from `wakeups`' own instance will be skipped.
    pub fn new(wakeups: &Wakeups) -> Self {
        Self {
            origin: wakeups.origin.clone(),
            channels: Vec::new(),
        }
    }

    /// Also LISTENs on `channel`, waking `wakeup`.
    pub fn with(mut self, channel: &'static str, wakeup: Wakeup) -> Self {
        self.channels.push((channel, wakeup));
        self
    }

    /// What a notification on `channel` with `payload` wakes: nothing when it came from this
    /// instance (its writer woke the waiter in-process already).
    fn woken_by(&self, channel: &str, payload: &str) -> impl Iterator<Item = &Wakeup> {
        let own = payload == &*self.origin;
        self.channels
            .iter()
            .filter(move |(subscribed, _)| !own && *subscribed == channel)
            .map(|(_, wakeup)| wakeup)
    }

    fn wake_all(&self) {
        for (_, wakeup) in &self.channels {
            wakeup.wake();
        }
    }
}

/// Keeps a dedicated connection LISTENing (re-established after any drop) and wakes the matching
/// waiter on every other instance's notification, until `shutdown`.
pub async fn listen(connector: PgConnector, subscriptions: Subscriptions, mut shutdown: Shutdown) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if shutdown.is_shutdown() {
            return;
        }
        match listen_once(&connector, &subscriptions, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "notification listener lost its connection; reconnecting");
                // Catch up on anything announced while we were not listening.
                subscriptions.wake_all();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(
    connector: &PgConnector,
    subscriptions: &Subscriptions,
    shutdown: &mut Shutdown,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = connector.connect().await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement: String = subscriptions
        .channels
        .iter()
        .map(|(channel, _)| format!("LISTEN {channel};"))
        .collect();
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    // Drive the connection while LISTEN runs.
    loop {
        tokio::select! {
            done = &mut listen => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }
    tracing::debug!("listening for notifications");
    // Anything announced before LISTEN took effect is picked up by this first wake-up.
    subscriptions.wake_all();
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    for wakeup in subscriptions.woken_by(note.channel(), note.payload()) {
                        wakeup.wake();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => {
                    subscriptions.wake_all();
                    return Ok(());
                }
            },
            _ = shutdown.recv() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn woken(subscriptions: &Subscriptions, channel: &str, payload: &str) -> usize {
        subscriptions.woken_by(channel, payload).count()
    }

    #[test]
    fn own_notifications_wake_nothing_and_others_wake_their_channel() {
        let here = Wakeups::default();
        let elsewhere = Wakeups::default();
        assert_ne!(here.origin(), elsewhere.origin());
        let subscriptions = Subscriptions::new(&here)
            .with("deliveries", here.deliveries.clone())
            .with("updates", here.updates.clone());
        // This instance already woke its worker in-process when it wrote.
        assert_eq!(woken(&subscriptions, "deliveries", here.origin()), 0);
        assert_eq!(woken(&subscriptions, "updates", here.origin()), 0);
        // Another instance's write (or an older version's, with no or another payload).
        assert_eq!(woken(&subscriptions, "deliveries", elsewhere.origin()), 1);
        assert_eq!(woken(&subscriptions, "updates", ""), 1);
        assert_eq!(woken(&subscriptions, "updates", "42"), 1);
        assert_eq!(woken(&subscriptions, "elsewhere", elsewhere.origin()), 0);
    }

    /// Against the test server (`WEBHOOKS_TEST_DATABASE_URL`, by default the local one, as in
    /// every suite; never skipped): this instance's NOTIFY on one channel, then another
    /// instance's on a second. Once the second has woken its waiter, the listener has read the
    /// first (one session's notifications arrive in order), so a permit left on the first
    /// channel would be the double wake-up.
    #[tokio::test]
    async fn the_listener_skips_notifications_of_its_own_instance() {
        use futures_util::FutureExt;
        let url = std::env::var("WEBHOOKS_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
        let connector = PgConnector::new(&url, None).expect("a usable test database URL");
        let (here, elsewhere) = (Wakeups::default(), Wakeups::default());
        let name = |what: &str| -> &'static str {
            let name = format!("webhooks_test_{what}_{}", uuid::Uuid::new_v4().simple());
            Box::leak(name.into_boxed_str())
        };
        let (own_channel, other_channel) = (name("own"), name("other"));
        let subscriptions = Subscriptions::new(&here)
            .with(own_channel, here.deliveries.clone())
            .with(other_channel, here.updates.clone());
        let stop = crate::shutdown::ShutdownSender::new();
        let listening = tokio::spawn(listen(connector.clone(), subscriptions, stop.subscribe()));
        let patience = Duration::from_secs(10);
        // The wake-ups sent once LISTEN took effect.
        for wakeup in [&here.deliveries, &here.updates] {
            tokio::time::timeout(patience, wakeup.wait())
                .await
                .expect("the listener connects");
        }
        let (client, connection) = connector.connect().await.expect("the test database");
        tokio::spawn(connection);
        for (channel, origin) in [
            (own_channel, here.origin()),
            (other_channel, elsewhere.origin()),
        ] {
            client
                .execute("SELECT pg_notify($1, $2)", &[&channel, &origin])
                .await
                .expect("NOTIFY");
        }
        tokio::time::timeout(patience, here.updates.wait())
            .await
            .expect("another instance's notification wakes");
        assert!(
            here.deliveries.wait().now_or_never().is_none(),
            "this instance's own notification woke it a second time"
        );
        stop.send();
        listening.await.expect("the listener stops");
    }

    #[tokio::test]
    async fn a_wake_up_sent_before_waiting_is_kept() {
        let wakeup = Wakeup::default();
        wakeup.clone().wake();
        tokio::time::timeout(Duration::from_secs(5), wakeup.wait())
            .await
            .expect("the permit was kept");
    }
}
