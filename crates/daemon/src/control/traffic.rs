//! The app's traffic as a flag ramp, and the watch of the stable release after a release phase, see it:
//! the proxy's counters for every release of the app, summed into one cumulative window (a flag's users
//! are spread over whatever releases serve).
//!
//! The controller owns the counters; it answers with a snapshot of each, named by the counter's
//! identity rather than its release, because a counter can move to another release (`scale` adopts the
//! stable release's instances and their counters). [`AppTraffic`] adds up what each counter gained since
//! the last look, so counters that come and go never count twice or go backwards.

use crate::control::controller::{Command, Controller, ControllerHandle};
use crate::error::Error;
use slipway_core::analysis::Window;
use std::collections::HashMap;
use std::sync::Arc;

/// The controller's answer to `Command::FlagTraffic`.
#[derive(Debug, Clone, Default)]
pub struct TrafficReport {
    /// Each counter's snapshot, by the counter's identity.
    pub counters: Vec<(usize, Window)>,
    /// What the app served in the last minute (from the per-second history): a new flag ramp's baseline.
    pub last_minute: Window,
}

/// The app's traffic, from the controller.
pub async fn traffic(controller: &ControllerHandle, app: &str) -> Result<TrafficReport, Error> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    controller.send(Command::FlagTraffic {
        app: app.to_string(),
        reply,
    })?;
    answer
        .await
        .map_err(|_| Error::internal("the controller stopped"))
}

impl Controller {
    pub(crate) fn flag_traffic(&self, app: &str) -> TrafficReport {
        let Some(a) = self.apps.get(app) else {
            return TrafficReport::default();
        };
        let counters = a
            .metrics
            .values()
            .map(|m| (Arc::as_ptr(m) as usize, m.snapshot()))
            .collect();
        let mut last_minute = Window::default();
        if let (Some((_, first)), Some((_, last))) = (a.history.front(), a.history.back()) {
            for (version, now) in last {
                let gained = match first.get(version) {
                    Some(then) => now.since(then),
                    None => now.clone(),
                };
                last_minute.add(&gained);
            }
        }
        TrafficReport {
            counters,
            last_minute,
        }
    }
}

/// One app's cumulative traffic, for as long as this daemon runs.
#[derive(Debug, Default)]
pub struct AppTraffic {
    seen: HashMap<usize, Window>,
    pub total: Window,
}

impl AppTraffic {
    pub fn update(&mut self, counters: &[(usize, Window)]) {
        let mut seen = HashMap::with_capacity(counters.len());
        for (id, now) in counters {
            let gained = match self.seen.get(id) {
                Some(then) => now.since(then),
                None => now.clone(),
            };
            self.total.add(&gained);
            seen.insert(*id, now.clone());
        }
        self.seen = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(requests: u64, errors: u64) -> Window {
        Window::uniform(requests, errors, 1_000)
    }

    #[test]
    fn counters_that_move_or_vanish_never_count_twice() {
        let mut traffic = AppTraffic::default();
        traffic.update(&[(1, window(10, 1))]);
        assert_eq!(traffic.total.requests, 10);
        traffic.update(&[(1, window(15, 1)), (2, window(3, 3))]);
        assert_eq!((traffic.total.requests, traffic.total.errors), (18, 4));
        // Counter 1 gone (its release retired), counter 2 grows.
        traffic.update(&[(2, window(5, 3))]);
        assert_eq!(traffic.total.requests, 20);
        assert_eq!(traffic.total.latency.count(), 20);
    }
}
