//! Telling the background tasks that the instance is shutting down.
//!
//! In the style of mini-redis's `shutdown.rs`: every task holds a [`Shutdown`] and `select!`s on
//! [`Shutdown::recv`] wherever it waits, and checks [`Shutdown::is_shutdown`] between steps. The
//! signal is a `watch` channel rather than a broadcast, so a task that subscribes after the
//! signal was sent still sees it (a broadcast would only deliver what was sent afterwards).
//! Dropping the [`ShutdownSender`] counts as the signal: no task outlives its owner's intent.

use tokio::sync::watch;

/// The sending side: held by whoever decides when the instance stops.
#[derive(Debug)]
pub struct ShutdownSender {
    sender: watch::Sender<bool>,
}

impl Default for ShutdownSender {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSender {
    /// A signal not sent yet.
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Self { sender }
    }

    /// A receiver for one more task; it sees the signal even when it was sent already.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            receiver: self.sender.subscribe(),
        }
    }

    /// Tells every [`Shutdown`] to stop (sending twice is harmless).
    pub fn send(&self) {
        self.sender.send_replace(true);
    }
}

/// One task's view of the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// Set once [`Shutdown::recv`] returned, so later calls return at once.
    is_shutdown: bool,
    /// Flips to `true` once, when the instance shuts down.
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// Whether the signal was sent (or the sender is gone).
    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown || *self.receiver.borrow() || self.receiver.has_changed().is_err()
    }

    /// Waits for the signal; returns at once when it was sent already. Cancel-safe, so it can be
    /// one branch of a `select!` in a loop.
    pub async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // An error means the sender is gone, which counts as the signal.
        let _ = self.receiver.wait_for(|stop| *stop).await;
        self.is_shutdown = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receivers_see_a_signal_sent_before_they_wait_or_subscribe() {
        let sender = ShutdownSender::new();
        let mut early = sender.subscribe();
        assert!(!early.is_shutdown());
        sender.send();
        let mut late = sender.subscribe();
        assert!(early.is_shutdown() && late.is_shutdown());
        early.recv().await;
        late.recv().await;
    }

    #[tokio::test]
    async fn a_dropped_sender_counts_as_the_signal() {
        let sender = ShutdownSender::new();
        let mut shutdown = sender.subscribe();
        drop(sender);
        assert!(shutdown.is_shutdown());
        shutdown.recv().await;
    }

    #[tokio::test]
    async fn recv_waits_until_the_signal() {
        let sender = ShutdownSender::new();
        let mut shutdown = sender.subscribe();
        let waiting = tokio::spawn(async move { shutdown.recv().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        sender.send();
        waiting.await.unwrap();
    }
}
