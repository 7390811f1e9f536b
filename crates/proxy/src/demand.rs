//! What the controller needs to know of an app's traffic to scale it to zero and back: whether requests
//! other than health checks arrived, and whether the proxy holds some for want of an instance. The
//! controller makes one per app, keeps it across tables (like release metrics), and reads it each second;
//! the proxy rings its doorbell when a request is held, so a cold start does not wait for that second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Notify;

pub struct Demand {
    /// Requests counted as activity (health checks excluded), since the demand was made.
    arrivals: AtomicU64,
    /// A request is held waiting for an instance (cleared by the controller's read).
    waiting: AtomicBool,
    /// The controller's doorbell (one for every app).
    doorbell: Arc<Notify>,
    /// Paths whose requests are not activity and do not wake the app (health checks).
    idle_paths: Vec<String>,
    /// How long a request is held while the app has no instance.
    pub wake_timeout: Duration,
}

impl std::fmt::Debug for Demand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demand")
            .field("arrivals", &self.arrivals())
            .field("idle_paths", &self.idle_paths)
            .finish()
    }
}

impl Demand {
    pub fn new(
        doorbell: Arc<Notify>,
        idle_paths: Vec<String>,
        wake_timeout: Duration,
    ) -> Arc<Demand> {
        Arc::new(Demand {
            arrivals: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            doorbell,
            idle_paths,
            wake_timeout,
        })
    }

    /// Requests counted as activity so far.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Relaxed)
    }

    /// Whether a request was held since the last call (and forgets it).
    pub fn take_waiting(&self) -> bool {
        self.waiting.swap(false, Relaxed)
    }

    /// A health check: neither activity nor a reason to wake. Matched on the path without its query.
    pub(crate) fn is_idle_path(&self, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        self.idle_paths.iter().any(|p| p == path)
    }

    pub(crate) fn count(&self) {
        self.arrivals.fetch_add(1, Relaxed);
    }

    /// A request is held: ask the controller for an instance now.
    pub(crate) fn wake(&self) {
        self.waiting.store(true, Relaxed);
        self.doorbell.notify_one();
    }
}
