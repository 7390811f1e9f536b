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
    /// Each counter's requests failed on purpose (a drill's), by the counter's identity.
    pub injected: Vec<(usize, u64)>,
    /// What the app served in the last minute (from the per-second history): a new flag ramp's baseline.
    pub last_minute: Window,
}

/// The app's traffic, from the controller.
pub async fn traffic(controller: &ControllerHandle, app: &str) -> Result<TrafficReport, Error> {
    let app = app.to_string();
    controller
        .ask(|reply| Command::FlagTraffic { app, reply })
        .await
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
        let injected = a
            .metrics
            .values()
            .map(|m| (Arc::as_ptr(m) as usize, m.injected()))
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
            injected,
            last_minute,
        }
    }
}

/// One app's cumulative traffic, for as long as this daemon runs.
#[derive(Debug, Default)]
pub struct AppTraffic {
    seen: HashMap<usize, (Window, u64)>,
    pub total: Window,
    /// Of `total`'s errors, those failed on purpose.
    pub injected: u64,
}

impl AppTraffic {
    pub fn update(&mut self, report: &TrafficReport) {
        let injected: HashMap<usize, u64> = report.injected.iter().copied().collect();
        let mut seen = HashMap::with_capacity(report.counters.len());
        for (id, now) in &report.counters {
            let now_injected = injected.get(id).copied().unwrap_or(0);
            let (gained, gained_injected) = match self.seen.get(id) {
                Some((then, then_injected)) => {
                    (now.since(then), now_injected.saturating_sub(*then_injected))
                }
                None => (now.clone(), now_injected),
            };
            self.total.add(&gained);
            self.injected += gained_injected;
            seen.insert(*id, (now.clone(), now_injected));
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

    fn report(counters: &[(usize, Window)], injected: &[(usize, u64)]) -> TrafficReport {
        TrafficReport {
            counters: counters.to_vec(),
            injected: injected.to_vec(),
            last_minute: Window::default(),
        }
    }

    #[test]
    fn counters_that_move_or_vanish_never_count_twice() {
        let mut traffic = AppTraffic::default();
        traffic.update(&report(&[(1, window(10, 1))], &[]));
        assert_eq!(traffic.total.requests, 10);
        traffic.update(&report(&[(1, window(15, 1)), (2, window(3, 3))], &[(2, 2)]));
        assert_eq!((traffic.total.requests, traffic.total.errors), (18, 4));
        assert_eq!(traffic.injected, 2);
        // Counter 1 gone (its release retired), counter 2 grows.
        traffic.update(&report(&[(2, window(5, 3))], &[(2, 2)]));
        assert_eq!(traffic.total.requests, 20);
        assert_eq!(traffic.total.latency.count(), 20);
        assert_eq!(traffic.injected, 2, "counted once");
    }
}
