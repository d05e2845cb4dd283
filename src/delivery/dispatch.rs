//! Direct dispatch: the instance that accepts a publish sends the first attempts itself, at
//! once, from memory.
//!
//! Before a publish, the ingest API reserves free worker slots here. The publish statement then
//! inserts up to that many of its new deliveries already leased to this instance (endpoints with
//! a closed circuit and room under the cluster-wide cap, nothing overtaking an earlier pending
//! delivery of the same request), and once the publish has committed they are sent on the
//! reserved slots. A first attempt so needs no claim statement and no wake-up round; the claim
//! is left retries, resends, work that found no slot or room, and expired leases. Nothing
//! changes for durability: a leased delivery is committed with its event before the publisher
//! hears back, and if this instance dies before recording the attempt, the lease runs out and
//! any instance's claim takes it, like any claimed delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, mpsc};
use uuid::Uuid;

use super::recorder::{Finished, RecorderHandle};
use super::worker::Attempter;
use crate::domain::{ClaimToken, DeliveryPolicy};
use crate::store::{ClaimedDelivery, DirectLease};

/// The most slots reserved per published event. How many webhooks an event matches is known
/// only once it is published, so a publish reserves what the last one needed per event (see
/// [`Dispatcher::observe_fanout`]); unused slots go back as soon as the publish answers. A
/// guess too low only leaves the rest to a claim.
const MAX_SLOTS_PER_EVENT: usize = 64;

/// Reserves worker slots for publishes and sends what they lease. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    attempter: Arc<Attempter>,
    slots: Arc<Semaphore>,
    /// Weak, so a dispatcher held by the API does not keep the recorder running after the worker
    /// stopped; each reservation holds a strong handle until its attempts are handed over.
    results: mpsc::WeakUnboundedSender<Finished>,
    lease: Duration,
    policy: DeliveryPolicy,
    /// Cleared when the worker stops: publishes then leave everything to the queue.
    accepting: Arc<AtomicBool>,
    /// The most deliveries one event of the last publish made (at least 1).
    fanout: Arc<AtomicUsize>,
    /// Held by every statement of this instance that leases (a publish with a reservation, a
    /// claim) from its start to its commit: each counts the leases already committed, so two
    /// at once would each see the same room and together pass the cap. Publishes never wait
    /// for it: one that finds it taken leaves its deliveries to the claim.
    lease_turn: Arc<Mutex<()>>,
}

/// Worker slots held for one publish, and the lease its deliveries are inserted under.
/// Dropping it (after [`Dispatcher::dispatch`], or when the publish failed) frees what it holds.
pub struct Reservation {
    slots: Vec<OwnedSemaphorePermit>,
    results: RecorderHandle,
    lease: DirectLease,
    /// This instance's turn to lease, until the publish has committed.
    _turn: OwnedMutexGuard<()>,
}

impl Reservation {
    /// What the publish statement leases under (`limit` is the number of slots held).
    pub fn lease(&self) -> &DirectLease {
        &self.lease
    }
}

impl Dispatcher {
    pub(super) fn new(
        attempter: Arc<Attempter>,
        slots: Arc<Semaphore>,
        results: &RecorderHandle,
        lease: Duration,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            attempter,
            slots,
            results: results.downgrade(),
            lease,
            policy,
            accepting: Arc::new(AtomicBool::new(true)),
            fanout: Arc::new(AtomicUsize::new(1)),
            lease_turn: Arc::new(Mutex::new(())),
        }
    }

    /// Waits for this instance's turn to lease, for a claim: held until the claim returns (its
    /// statement commits by itself).
    pub(super) async fn lease_turn(&self) -> OwnedMutexGuard<()> {
        self.lease_turn.clone().lock_owned().await
    }

    /// Remembers how many deliveries the events of a publish made at most, so the next one
    /// reserves about what it will use: reserving far more would keep slots from the claim and
    /// from concurrent publishes for nothing.
    /// A publish that stored nothing new (repeats only) says nothing and is ignored.
    pub fn observe_fanout(&self, deliveries_per_event: usize) {
        if deliveries_per_event == 0 {
            return;
        }
        self.fanout.store(
            deliveries_per_event.clamp(1, MAX_SLOTS_PER_EVENT),
            Ordering::Relaxed,
        );
    }

    /// Takes free worker slots for a publish of `events` events, and this instance's turn to
    /// lease, without waiting: `None` when no slot is free, another statement of this instance
    /// is leasing, or the worker has stopped (everything then goes to the queue). For a batch:
    /// a long statement that others should not queue behind.
    pub fn reserve(&self, events: usize) -> Option<Reservation> {
        let turn = self.lease_turn.clone().try_lock_owned().ok()?;
        self.reservation(events, turn, false)
    }

    /// As [`Dispatcher::reserve`], waiting for the turn to lease (in this instance, then across
    /// the cluster) instead of leaving the deliveries to a claim. For single publishes: their
    /// statements are short, and a publish that gives up its turn whenever a claim runs makes
    /// the claim run for its deliveries, which takes the turn from the next publish, and so on
    /// (measured: most deliveries at 1,000 single publishes a second went through claims).
    pub async fn reserve_waiting(&self, events: usize) -> Option<Reservation> {
        if !self.accepting.load(Ordering::Acquire) {
            return None;
        }
        let turn = self.lease_turn.clone().lock_owned().await;
        self.reservation(events, turn, true)
    }

    fn reservation(
        &self,
        events: usize,
        turn: OwnedMutexGuard<()>,
        wait_for_turn: bool,
    ) -> Option<Reservation> {
        if !self.accepting.load(Ordering::Acquire) {
            return None;
        }
        let results = self.results.upgrade()?;
        let want = events.saturating_mul(self.fanout.load(Ordering::Relaxed));
        let mut slots = Vec::new();
        while slots.len() < want {
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => slots.push(slot),
                Err(_) => break,
            }
        }
        if slots.is_empty() {
            return None;
        }
        Some(Reservation {
            lease: DirectLease {
                limit: slots.len(),
                token: ClaimToken::from(Uuid::new_v4()),
                lease: self.lease,
                policy: self.policy.clone(),
                wait_for_turn,
            },
            slots,
            results,
            _turn: turn,
        })
    }

    /// Sends each delivery a committed publish leased under `reservation`, on its slots; the
    /// slots left over are freed.
    pub fn dispatch(&self, reservation: Reservation, leased: Vec<ClaimedDelivery>) {
        let Reservation {
            mut slots, results, ..
        } = reservation;
        crate::metrics::record_attempts_started("direct", leased.len());
        for delivery in leased {
            // The statement leases at most one delivery per slot held.
            let Some(slot) = slots.pop() else {
                tracing::error!(delivery_id = %delivery.id, "a leased delivery has no slot; it will be claimed after its lease");
                continue;
            };
            let attempter = self.attempter.clone();
            let results = results.clone();
            // Not joined: the worker's shutdown waits until every slot is back, which is after
            // the recorder has written this attempt.
            tokio::spawn(async move { attempter.attempt(delivery, slot, &results).await });
        }
    }

    /// No more reservations (the worker is stopping).
    pub(super) fn stop(&self) {
        self.accepting.store(false, Ordering::Release);
    }
}
