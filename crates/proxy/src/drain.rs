//! Draining an instance: after the controller has published a table without it, wait for the requests it is
//! still serving to finish, then stop it.
//!
//! Ordinary requests and long-lived streams get separate deadlines: a request should finish in seconds,
//! while an SSE or WebSocket client may stay for minutes and is expected to reconnect (to another instance)
//! when cut off.

use std::time::Duration;

use tokio::time::Instant;

use crate::backend::Backend;

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Requests still in flight when the drain ended (non-zero only if `requests_deadline` passed).
    pub in_flight_left: usize,
    /// Streams still open when the drain ended (non-zero only if `streams_deadline` passed).
    pub streams_left: usize,
    /// How long the drain waited.
    pub waited: Duration,
}

impl DrainOutcome {
    /// Nothing was cut off: every request and stream finished before its deadline.
    pub fn is_clean(&self) -> bool {
        self.in_flight_left == 0 && self.streams_left == 0
    }
}

/// Waits until `backend` has no in-flight requests (up to `requests_deadline`) and no streams (up to
/// `streams_deadline`), both counted from the call.
pub async fn drain(
    backend: &Backend,
    requests_deadline: Duration,
    streams_deadline: Duration,
) -> DrainOutcome {
    const POLL: Duration = Duration::from_millis(5);
    let start = Instant::now();
    loop {
        let waited = start.elapsed();
        let (in_flight, streams) = (backend.in_flight(), backend.streams());
        let requests_done = in_flight == 0 || waited >= requests_deadline;
        let streams_done = streams == 0 || waited >= streams_deadline;
        if requests_done && streams_done {
            return DrainOutcome {
                in_flight_left: in_flight,
                streams_left: streams,
                waited,
            };
        }
        let next_deadline = [requests_deadline, streams_deadline]
            .into_iter()
            .filter(|d| *d > waited)
            .min()
            .unwrap_or(waited);
        tokio::time::sleep(
            POLL.min(next_deadline - waited)
                .max(Duration::from_millis(1)),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Lease;

    #[tokio::test]
    async fn idle_backend_drains_at_once() {
        let b = Backend::new("a", "127.0.0.1:1".parse().expect("addr"));
        let outcome = drain(&b, Duration::from_secs(5), Duration::from_secs(5)).await;
        assert!(outcome.is_clean());
    }

    #[tokio::test]
    async fn waits_for_release_and_reports_leftovers() {
        let b = Backend::new("a", "127.0.0.1:1".parse().expect("addr"));
        let lease = Lease::acquire(&b);
        let mut stream = Lease::acquire(&b);
        stream.become_stream();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(lease);
        });
        let outcome = drain(&b, Duration::from_secs(10), Duration::from_millis(100)).await;
        releaser.await.expect("releaser");
        assert_eq!((outcome.in_flight_left, outcome.streams_left), (0, 1));
        assert!(!outcome.is_clean());
        drop(stream);
    }
}
