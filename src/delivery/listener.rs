//! Turns Postgres NOTIFYs into in-process wake-ups (new deliveries for the workers, new log
//! entries for the update hub). A notification is only a hint: everyone polls as well, so a lost
//! notification or a dropped listener connection delays work by at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use crate::shutdown::Shutdown;
use crate::store::PgConnector;

/// Channels to LISTEN on, each with what to wake.
pub type Subscriptions = Vec<(&'static str, Arc<Notify>)>;

/// Keeps a dedicated connection LISTENing (re-established after any drop) and wakes the matching
/// notifier on every notification, until `shutdown` flips.
pub async fn run(connector: PgConnector, subscriptions: Subscriptions, mut shutdown: Shutdown) {
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
                wake_all(&subscriptions);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn wake_all(subscriptions: &Subscriptions) {
    for (_, wake) in subscriptions {
        wake.notify_one();
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
    wake_all(subscriptions);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    for (channel, wake) in subscriptions {
                        if *channel == note.channel() {
                            wake.notify_one();
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => {
                    wake_all(subscriptions);
                    return Ok(());
                }
            },
            _ = shutdown.recv() => return Ok(()),
        }
    }
}
