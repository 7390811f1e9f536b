//! When a request that got no response head from its instance is tried again: one rule for both
//! forwarding paths (the fast path in `h1::exchange` and the hyper path in `forward`).
//!
//! The rule is about what the instance may have done with the request, never about timing:
//!
//! | what happened                                  | request / connection                          | decision             |
//! |------------------------------------------------|-----------------------------------------------|----------------------|
//! | the deadline (`response_timeout`) passed       | any                                           | 504                  |
//! | a response came but could not be used          | any                                           | 502                  |
//! | no connection could be opened                  | body-less, not yet moved to another instance  | another instance     |
//! | no connection could be opened                  | otherwise                                     | 502                  |
//! | closed before any byte of the request was sent | pooled, fewer than [`MAX_UNSENT`] such so far | any connection       |
//! | closed before any byte of the request was sent | pooled, the [`MAX_UNSENT`]th                  | a new connection     |
//! | closed before any byte of the request was sent | new connection                                | 502                  |
//! | closed after sending, before any response byte | pooled, idempotent, body-less, not replayed   | a new connection     |
//! | closed after sending, before any response byte | otherwise                                     | 502                  |
//!
//! Why a replay on a pooled connection does not depend on how long it sat idle: an instance closes a
//! keep-alive connection at a moment of its own choosing (its idle timeout, a request limit, a graceful
//! shutdown during a deploy, which closes idle connections at once), so a connection used a millisecond
//! ago can be closed just as we write to it as well as one idle for minutes. The request then never
//! reached the application; but we cannot tell that apart from an instance that read the request and
//! died, so only a request that may be repeated without extra effect (idempotent, RFC 9110 §9.2.2) and
//! whose body we still have (none) is sent again, once, and on a new connection (a second pooled one
//! may be just as stale). A new connection that closes under a request is the instance itself failing:
//! no replay, a replay would only load a broken instance twice.

use http::StatusCode;

/// Pooled connections found closed in a row before the request insists on a new connection.
pub(crate) const MAX_UNSENT: u32 = 4;

/// What the request allows, fixed for all its attempts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayable {
    /// The client sent no body (nothing to stream a second time).
    pub(crate) body_less: bool,
    /// Repeating the method has no extra effect (see [`crate::forward::is_idempotent`]).
    pub(crate) idempotent: bool,
}

/// One attempt to get a response head: the connection it used and the attempts before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    pub(crate) request: Replayable,
    /// The connection came from the pool (the instance may have closed it while it sat idle).
    pub(crate) pooled: bool,
    /// The rule asked for a new connection (see [`crate::pool::IdlePool::connection_for`]).
    pub(crate) fresh: bool,
    /// A connect failure already moved the request to another instance.
    pub(crate) moved: bool,
    /// The request was already sent once and replayed.
    pub(crate) replayed: bool,
    /// Pooled connections found closed before any byte was sent, so far.
    pub(crate) unsent: u32,
}

/// Why an attempt got no response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection could be opened (refused, unreachable, connect timeout, handshake): nothing sent.
    Connect,
    /// The connection closed or failed before any byte of a response; `sent` says whether any byte of
    /// the request had been written to it.
    Closed { sent: bool },
    /// A response started but was malformed or cut in its head.
    BadResponse,
    /// `response_timeout` passed since the request arrived.
    TimedOut,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Pick another instance of the same release (a connection to it may come from its pool).
    OtherInstance,
    /// The same instance again; `fresh`: on a new connection only.
    SameInstance { fresh: bool },
    /// Answer the client with a proxy page (502 or 504).
    Answer(StatusCode),
}

impl Attempt {
    /// The first attempt of a request (its connection, pooled or new, set by the caller).
    pub(crate) fn first(request: Replayable) -> Attempt {
        Attempt {
            request,
            pooled: false,
            fresh: false,
            moved: false,
            replayed: false,
            unsent: 0,
        }
    }

    /// Whether this attempt could be replayed after its request went out. The hyper path consumes the
    /// request when it sends it, so it keeps a copy for exactly these attempts.
    pub(crate) fn may_replay(&self) -> bool {
        self.pooled && self.request.idempotent && self.request.body_less && !self.replayed
    }

    /// The rule (see the module doc).
    pub(crate) fn decide(&self, failure: Failure) -> Decision {
        match failure {
            Failure::TimedOut => Decision::Answer(StatusCode::GATEWAY_TIMEOUT),
            Failure::BadResponse => Decision::Answer(StatusCode::BAD_GATEWAY),
            Failure::Connect if self.request.body_less && !self.moved => Decision::OtherInstance,
            Failure::Closed { sent: false } if self.pooled => Decision::SameInstance {
                fresh: self.unsent + 1 >= MAX_UNSENT,
            },
            Failure::Closed { sent: true } if self.may_replay() => {
                Decision::SameInstance { fresh: true }
            }
            Failure::Connect | Failure::Closed { .. } => Decision::Answer(StatusCode::BAD_GATEWAY),
        }
    }

    /// The attempt after `decision` (a retry) for `failure`.
    pub(crate) fn next(&self, failure: Failure, decision: Decision) -> Attempt {
        let mut next = *self;
        next.fresh = decision == Decision::SameInstance { fresh: true };
        match failure {
            Failure::Connect => next.moved = true,
            Failure::Closed { sent: false } => next.unsent += 1,
            Failure::Closed { sent: true } => next.replayed = true,
            Failure::BadResponse | Failure::TimedOut => {}
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: Replayable = Replayable {
        body_less: true,
        idempotent: true,
    };
    /// A POST without a body: nothing to stream again, but it may act twice.
    const EMPTY_POST: Replayable = Replayable {
        body_less: true,
        idempotent: false,
    };
    /// A PUT with a body: idempotent, but the body has been streamed away.
    const PUT: Replayable = Replayable {
        body_less: false,
        idempotent: true,
    };

    fn attempt(request: Replayable, pooled: bool) -> Attempt {
        Attempt {
            pooled,
            ..Attempt::first(request)
        }
    }

    const fn closed(sent: bool) -> Failure {
        Failure::Closed { sent }
    }

    const BAD_GATEWAY: Decision = Decision::Answer(StatusCode::BAD_GATEWAY);
    const TIMEOUT: Decision = Decision::Answer(StatusCode::GATEWAY_TIMEOUT);
    const ANY: Decision = Decision::SameInstance { fresh: false };
    const FRESH: Decision = Decision::SameInstance { fresh: true };

    #[test]
    fn the_rule() {
        let get = attempt(GET, false);
        let pooled_get = attempt(GET, true);
        let moved = Attempt { moved: true, ..get };
        let replayed = Attempt {
            replayed: true,
            ..pooled_get
        };
        let unsent = |n| Attempt {
            unsent: n,
            ..pooled_get
        };
        #[rustfmt::skip]
        let table: &[(&str, Attempt, Failure, Decision)] = &[
            ("deadline, new connection", get, Failure::TimedOut, TIMEOUT),
            ("deadline, pooled", pooled_get, Failure::TimedOut, TIMEOUT),
            ("malformed response", pooled_get, Failure::BadResponse, BAD_GATEWAY),
            ("refused, body-less", get, Failure::Connect, Decision::OtherInstance),
            ("refused, body-less POST: nothing sent", attempt(EMPTY_POST, false), Failure::Connect, Decision::OtherInstance),
            ("refused, with a body", attempt(PUT, false), Failure::Connect, BAD_GATEWAY),
            ("refused twice", moved, Failure::Connect, BAD_GATEWAY),
            ("unsent on pooled", pooled_get, closed(false), ANY),
            ("unsent on pooled, POST: nothing sent", attempt(EMPTY_POST, true), closed(false), ANY),
            ("unsent on pooled, with a body", attempt(PUT, true), closed(false), ANY),
            ("unsent on pooled, after a replay", replayed, closed(false), ANY),
            ("unsent on pooled, third", unsent(MAX_UNSENT - 2), closed(false), ANY),
            ("unsent on pooled, the last allowed", unsent(MAX_UNSENT - 1), closed(false), FRESH),
            ("unsent on a new connection", get, closed(false), BAD_GATEWAY),
            ("sent, pooled, GET", pooled_get, closed(true), FRESH),
            ("sent, pooled, GET, after unsent ones", unsent(MAX_UNSENT), closed(true), FRESH),
            ("sent, pooled, POST may have acted", attempt(EMPTY_POST, true), closed(true), BAD_GATEWAY),
            ("sent, pooled, body gone", attempt(PUT, true), closed(true), BAD_GATEWAY),
            ("sent, pooled, replayed already", replayed, closed(true), BAD_GATEWAY),
            ("sent, new connection: the instance failed", get, closed(true), BAD_GATEWAY),
        ];
        for &(case, attempt, failure, decision) in table {
            assert_eq!(attempt.decide(failure), decision, "{case}");
        }
    }

    #[test]
    fn may_replay_is_the_sent_case_of_the_rule() {
        for request in [GET, EMPTY_POST, PUT] {
            for pooled in [false, true] {
                for replayed in [false, true] {
                    let attempt = Attempt {
                        replayed,
                        ..attempt(request, pooled)
                    };
                    let replays = attempt.decide(closed(true)) != BAD_GATEWAY;
                    assert_eq!(attempt.may_replay(), replays, "{attempt:?}");
                }
            }
        }
    }

    #[test]
    fn next_counts_what_was_retried() {
        let get = attempt(GET, true);
        let count = |failure, decision| {
            let a = get.next(failure, decision);
            (a.fresh, a.moved, a.unsent, a.replayed)
        };
        let other = Decision::OtherInstance;
        assert_eq!(count(Failure::Connect, other), (false, true, 0, false));
        assert_eq!(count(closed(false), ANY), (false, false, 1, false));
        assert_eq!(count(closed(false), FRESH), (true, false, 1, false));
        assert_eq!(count(closed(true), FRESH), (true, false, 0, true));
    }
}
