//! Wakes the workers when a publisher announces new deliveries (LISTEN/NOTIFY). A notification is
//! only a hint: workers poll as well, so a lost notification or a dropped listener connection
//! delays deliveries by at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::sync::{Notify, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::DELIVERIES_CHANNEL;

/// Keeps a dedicated connection LISTENing (re-established after any drop) and wakes `wake` on
/// every notification, until `shutdown` flips.
pub async fn run(
    config: tokio_postgres::Config,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match listen_once(&config, &wake, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "delivery listener lost its connection; reconnecting");
                // Catch up on anything announced while we were not listening.
                wake.notify_one();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    wake: &Notify,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {DELIVERIES_CHANNEL}");
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
    tracing::debug!("listening for new deliveries");
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => {
                    wake.notify_one();
                    return Ok(());
                }
            },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
