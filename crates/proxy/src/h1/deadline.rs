//! A per-connection timer for deadlines that move forward with every request (a request head must arrive
//! within 30 s of the connection going idle; response headers within `response_timeout` of the request).
//!
//! Re-arming a timer for every request costs a timer-wheel update each time. Here the timer keeps the
//! deadline it was armed with; when it fires early (the deadline has moved on since), it is re-armed to the
//! current one. So the wheel is touched about once per timeout period per connection, not per request.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

pub(crate) struct LazyDeadline {
    sleep: Pin<Box<Sleep>>,
}

impl LazyDeadline {
    pub(crate) fn new(at: Instant) -> LazyDeadline {
        LazyDeadline {
            sleep: Box::pin(tokio::time::sleep_until(at)),
        }
    }

    /// Ready once `deadline` has passed; otherwise the task is woken by then (or earlier, harmlessly).
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.sleep.deadline() > deadline {
            // A shorter deadline than the armed one (rare): the timer must fire in time.
            self.sleep.as_mut().reset(deadline);
        }
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            if self.sleep.deadline() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
    }

    /// What `work` gives, or `None` when `deadline` passes first. The timer is polled only while `work`
    /// waits: a write the socket takes at once (most of them) costs no timer at all, where
    /// `tokio::time::timeout` makes one per call.
    pub(crate) async fn bound<F: Future>(
        &mut self,
        deadline: Instant,
        work: F,
    ) -> Option<F::Output> {
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(output) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_passed(cx, deadline).map(|()| None)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_the_current_deadline_not_the_armed_one() {
        let start = Instant::now();
        let mut timer = LazyDeadline::new(start + Duration::from_millis(5));
        let later = start + Duration::from_millis(40);
        std::future::poll_fn(|cx| timer.poll_passed(cx, later)).await;
        assert!(Instant::now() >= later, "fired at the armed deadline");
        // A deadline earlier than the armed one fires too (the wait is bounded, not timed).
        let mut timer = LazyDeadline::new(Instant::now() + Duration::from_secs(3600));
        let sooner = Instant::now() + Duration::from_millis(5);
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            std::future::poll_fn(|cx| timer.poll_passed(cx, sooner)),
        )
        .await;
        assert!(waited.is_ok(), "an earlier deadline never fired");
    }
}
