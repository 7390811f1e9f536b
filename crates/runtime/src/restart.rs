//! When to restart an instance that exited or was killed, and when to call it crash-looping.
//!
//! Pure bookkeeping, so the policy is tested without processes or clocks: exponential backoff
//! (250 ms · 2ⁿ, capped at 30 s) whose counter resets once a run has been Ready for 30 s, and a streak of
//! restarts that never reached Ready, which marks the instance as crash-looping. A crash-looping instance is
//! still retried: a rollout gives up on it by its own deadline, but a stable release that crashes because a
//! database blipped must come back by itself.

use crate::instance::InstanceState;
use crate::probe::fmt_duration;
use std::time::Duration;

/// Consecutive restarts without reaching Ready after which the instance is reported as crash-looping.
pub const CRASH_LOOP_AFTER: u32 = 3;
/// How long a run must stay Ready for the backoff delay to start again from the base.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
const BASE_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// What to do after a run ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Restart {
    pub delay: Duration,
    /// Restarts since the instance was started, this one included.
    pub restarts: u32,
    pub crash_loop: bool,
}

#[derive(Debug, Default)]
pub struct RestartPolicy {
    restarts: u32,
    backoff_step: u32,
    unready_streak: u32,
}

impl RestartPolicy {
    /// The current run reached Ready: it is not crash-looping (any more).
    pub fn on_ready(&mut self) {
        self.unready_streak = 0;
    }

    /// The current run has been Ready for [`STABLE_AFTER`]: the next crash backs off from the base again.
    pub fn on_stable(&mut self) {
        self.backoff_step = 0;
    }

    /// A run ended by itself or was killed by a probe; `reached_ready` says whether it ever became Ready.
    pub fn on_exit(&mut self, reached_ready: bool) -> Restart {
        let delay = backoff_delay(self.backoff_step);
        self.backoff_step = self.backoff_step.saturating_add(1);
        self.restarts = self.restarts.saturating_add(1);
        self.unready_streak = if reached_ready {
            0
        } else {
            self.unready_streak.saturating_add(1)
        };
        Restart {
            delay,
            restarts: self.restarts,
            crash_loop: self.crash_looping(),
        }
    }

    pub fn crash_looping(&self) -> bool {
        self.unready_streak >= CRASH_LOOP_AFTER
    }

    /// Consecutive restarts whose run never reached Ready.
    pub fn unready_streak(&self) -> u32 {
        self.unready_streak
    }

    /// The state to report for `restart` (decided by [`RestartPolicy::on_exit`]) and the sentence
    /// saying why: `message` (how the run ended), then crash-looping or not, then the delay.
    pub fn announce(
        &self,
        restart: Restart,
        last_exit: &str,
        message: &str,
    ) -> (InstanceState, String) {
        if restart.crash_loop {
            let state = InstanceState::CrashLoop {
                restarts: restart.restarts,
                last_exit: last_exit.to_owned(),
            };
            let why = format!(
                "{message}; crash-looping ({} restarts in a row without becoming ready), restarting in {}",
                self.unready_streak,
                fmt_duration(restart.delay)
            );
            (state, why)
        } else {
            let state = InstanceState::Backoff {
                restarts: restart.restarts,
                delay: restart.delay,
                last_exit: last_exit.to_owned(),
            };
            let why = format!("{message}; restarting in {}", fmt_duration(restart.delay));
            (state, why)
        }
    }
}

/// 250 ms · 2^step, capped at 30 s.
pub fn backoff_delay(step: u32) -> Duration {
    // 2^7 · 250 ms already exceeds the cap; clamping the shift keeps the multiplication from overflowing.
    BASE_DELAY
        .saturating_mul(1u32 << step.min(8))
        .min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_250ms_and_caps_at_30s() {
        let delays: Vec<u64> = (0..9)
            .map(|n| backoff_delay(n).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(backoff_delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn three_restarts_without_ready_is_a_crash_loop() {
        let mut policy = RestartPolicy::default();
        let first = policy.on_exit(false);
        assert_eq!(
            first,
            Restart {
                delay: Duration::from_millis(250),
                restarts: 1,
                crash_loop: false
            }
        );
        assert!(!policy.on_exit(false).crash_loop);
        let third = policy.on_exit(false);
        assert!(third.crash_loop);
        assert_eq!(third.restarts, 3);
        assert_eq!(third.delay, Duration::from_millis(1000));
        assert!(policy.on_exit(false).crash_loop);
    }

    #[test]
    fn reaching_ready_ends_the_crash_loop_but_not_the_backoff() {
        let mut policy = RestartPolicy::default();
        for _ in 0..3 {
            policy.on_exit(false);
        }
        assert!(policy.crash_looping());
        policy.on_ready();
        assert!(!policy.crash_looping());
        let next = policy.on_exit(true);
        assert!(!next.crash_loop);
        assert_eq!(
            next.delay,
            Duration::from_secs(2),
            "a short Ready does not reset the backoff"
        );
    }

    #[test]
    fn staying_ready_resets_the_backoff_but_not_the_restart_count() {
        let mut policy = RestartPolicy::default();
        for _ in 0..5 {
            policy.on_exit(true);
        }
        policy.on_stable();
        let next = policy.on_exit(true);
        assert_eq!(next.delay, BASE_DELAY);
        assert_eq!(next.restarts, 6);
    }
}
