//! Requests held at the proxy while their app cannot serve them yet: it was scaled to zero and an
//! instance is starting, or it is in maintenance. A held request waits for the next table (or its
//! deadline) and is routed again; waiters are released in the order they arrived.
//!
//! Lost wake-ups are impossible: a request reads the table generation *before* it routes, and waits only
//! if no table was published since (checked under the same lock that publishing takes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;

#[derive(Default)]
pub(crate) struct Held {
    generation: AtomicU64,
    waiters: Mutex<VecDeque<oneshot::Sender<()>>>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// A new table is in force: route again.
    Published,
    TimedOut,
}

impl Held {
    /// The generation of the table in force; read before routing.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until a table newer than `seen` is published, or `deadline`.
    pub(crate) async fn wait(&self, seen: u64, deadline: Instant) -> Waited {
        let ready = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if self.generation.load(Ordering::Acquire) != seen {
                return Waited::Published;
            }
            // Waiters that gave up leave closed senders: dropped here rather than kept forever.
            waiters.retain(|w| !w.is_closed());
            let (tx, rx) = oneshot::channel();
            waiters.push_back(tx);
            rx
        };
        match tokio::time::timeout_at(deadline, ready).await {
            Ok(_) => Waited::Published,
            Err(_) => Waited::TimedOut,
        }
    }

    /// A table was published: every waiter routes again, first come first served.
    pub(crate) fn published(&self) {
        let waiters = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::AcqRel);
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

/// Counts one held request in a gauge while it lives.
pub(crate) struct Counted(Arc<AtomicU64>);

impl Counted {
    pub(crate) fn enter(gauge: &Arc<AtomicU64>) -> Counted {
        gauge.fetch_add(1, Ordering::Relaxed);
        Counted(Arc::clone(gauge))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_publication_releases_waiters_and_none_is_lost() {
        let held = Arc::new(Held::default());
        let seen = held.generation();
        let far = Instant::now() + Duration::from_secs(60);
        let waiter = tokio::spawn({
            let held = Arc::clone(&held);
            async move { held.wait(seen, far).await }
        });
        // Published before or after the waiter queued: either way it is released.
        held.published();
        assert_eq!(waiter.await.expect("task"), Waited::Published);
        assert_eq!(
            held.wait(seen, far).await,
            Waited::Published,
            "already newer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_ends_the_wait() {
        let held = Held::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            held.wait(held.generation(), deadline).await,
            Waited::TimedOut
        );
    }
}
