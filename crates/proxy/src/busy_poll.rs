//! Busy polling (`slipway serve --busy-poll`): before the runtime's one thread blocks in
//! `epoll_wait`, it keeps polling (`epoll_wait` with no timeout) for a short window after the last
//! request or answer, so the next one is picked up without the thread going to sleep and being
//! woken. In a VM each sleep can halt the vCPU, and each wake-up is then an interrupt through the
//! hypervisor: tens of µs on a request's path.
//!
//! The window adapts as the guest kernel's haltpoll does: a sleep that ended within the limit
//! means a longer spin would have caught its event (grow), a longer one means spinning would have
//! been wasted (shrink, down to not spinning at all). An idle daemon never spins; traffic that
//! keeps coming costs a core, which is the trade (docs/operations.md).
//!
//! Wired into a current-thread runtime: `on_thread_park(before_park)`,
//! `on_thread_unpark(after_unpark)`, and [`spinner`] spawned on it. Thread-local state: all of
//! it lives on the runtime's thread.

use std::cell::Cell;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Request and response heads read on this thread: the sign that traffic flows.
    static HEADS: Cell<u64> = const { Cell::new(0) };
    static SPINNER: Cell<Option<Waker>> = const { Cell::new(None) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// `HEADS` when the last spin ended: no new spin without new traffic.
    static SPUN_UNTIL: Cell<u64> = const { Cell::new(0) };
    static WINDOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static BLOCKED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The window's smallest step: below it, no spin.
const STEP: Duration = Duration::from_micros(2);

/// The longest window `--busy-poll` accepts.
pub const MAX_LIMIT: Duration = Duration::from_millis(1);

/// Counts a request or response head read on this thread.
pub(crate) fn traffic_seen() {
    HEADS.set(HEADS.get().wrapping_add(1));
}

/// The runtime's hook before its thread blocks: wakes the spinner if traffic came since its last
/// spin and the window is open; otherwise notes when the thread went to sleep.
pub fn before_park() {
    if HEADS.get() != SPUN_UNTIL.get()
        && !WINDOW.get().is_zero()
        && let Some(spinner) = SPINNER.take()
    {
        ARMED.set(true);
        spinner.wake();
        return;
    }
    BLOCKED_AT.set(Some(Instant::now()));
}

/// The runtime's hook after its thread woke (or decided not to sleep): adapts the window to how
/// long the thread slept.
pub fn after_unpark(limit: Duration) {
    if let Some(at) = BLOCKED_AT.take() {
        WINDOW.set(next_window(WINDOW.get(), at.elapsed(), limit));
    }
}

/// The window after a sleep of `slept`: doubled (at least one step, at most `limit`) when a spin
/// that long would have caught the wake-up, halved (to zero below a step) when it would not.
pub fn next_window(window: Duration, slept: Duration, limit: Duration) -> Duration {
    if slept <= limit {
        (window * 2).max(STEP).min(limit)
    } else if window / 2 < STEP {
        Duration::ZERO
    } else {
        window / 2
    }
}

/// The task that spins, spawned once on the runtime: each `yield_now` makes the runtime poll for
/// events without blocking before it runs the spinner again. A spin ends once no head has been
/// read for the window.
pub async fn spinner() {
    loop {
        std::future::poll_fn(|cx| {
            if ARMED.replace(false) {
                return Poll::Ready(());
            }
            SPINNER.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        let mut seen = HEADS.get();
        // The clock is read only while nothing comes: the window counts from the first quiet poll.
        let mut quiet_since: Option<Instant> = None;
        loop {
            tokio::task::yield_now().await;
            if HEADS.get() != seen {
                seen = HEADS.get();
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed() > WINDOW.get() {
                break;
            }
        }
        SPUN_UNTIL.set(seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_grows_while_sleeps_are_short_and_closes_when_they_are_long() {
        let limit = Duration::from_micros(50);
        let us = Duration::from_micros;
        let mut window = Duration::ZERO;
        let mut grown = Vec::new();
        for _ in 0..7 {
            window = next_window(window, us(20), limit);
            grown.push(window.as_micros());
        }
        assert_eq!(grown, [2, 4, 8, 16, 32, 50, 50]);
        let mut shrunk = Vec::new();
        for _ in 0..6 {
            window = next_window(window, us(5_000), limit);
            shrunk.push(window.as_micros());
        }
        assert_eq!(shrunk, [25, 12, 6, 3, 0, 0]);
        // A sleep of exactly the limit would have been caught by a full window.
        assert_eq!(next_window(Duration::ZERO, limit, limit), us(2));
    }
}
