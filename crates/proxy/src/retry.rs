//! The one retry rule of both forwarding paths (the HTTP/1.1 fast path and hyper's): after an attempt
//! at an instance fails, try again — and where — or answer 502/504. Pure: the paths report what
//! happened, this decides, so the two cannot drift apart.
//!
//! Why each retry is safe:
//! - a refused connection sent nothing: another instance of the same release may take it (once, and
//!   only for a request without a body, whose body could not be sent twice);
//! - a pooled connection found closed before any byte went out sent nothing either: take another
//!   pooled one, a new one after [`MAX_UNSENT`] in a row;
//! - a request that went out on a *reused* connection which then closed before any byte of an answer is
//!   the keep-alive race (the instance closed the idle connection as we wrote): an idempotent request
//!   without a body (RFC 9110 §9.2.2) is sent once more, on a new connection. On a new connection the
//!   same silence means the instance failed on this request: it is not replayed.

use http::StatusCode;

/// Pooled connections found closed in a row before the request insists on a new connection.
pub(crate) const MAX_UNSENT: u32 = 4;

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection could be made (refused, unreachable, failed handshake).
    ConnectFailed,
    /// The connection was found closed before any byte of the request went out.
    Unsent,
    /// The request went out; the connection closed before any answer came back.
    NoAnswer,
    /// Anything else: a partial send, an invalid answer.
    Broken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Pick another instance of the same release (`choose_retry`); if there is none, answer 502.
    AnotherInstance,
    /// Try the same instance again; `fresh_only`: on a new connection, not a pooled one.
    Again { fresh_only: bool },
    /// Give up with this status (502 Bad Gateway). A timeout is never retried: the paths answer 504.
    Answer(StatusCode),
}

/// One request's attempts so far.
#[derive(Debug, Clone)]
pub(crate) struct Retries {
    body_less: bool,
    replayable: bool,
    tried_another: bool,
    unsent: u32,
    replayed: bool,
}

impl Retries {
    pub(crate) fn new(body_less: bool, idempotent: bool) -> Retries {
        Retries {
            body_less,
            replayable: body_less && idempotent,
            tried_another: false,
            unsent: 0,
            replayed: false,
        }
    }

    /// Whether a failure on this attempt could still be replayed: the hyper path keeps a copy of the
    /// request only then (the fast path still has the request's head in its buffer).
    pub(crate) fn may_replay(&self, reused: bool) -> bool {
        reused && self.replayable && !self.replayed
    }

    /// What to do after an attempt (on a pooled connection if `reused`) failed this way.
    pub(crate) fn after(&mut self, reused: bool, failure: Failure) -> Decision {
        const BAD_GATEWAY: Decision = Decision::Answer(StatusCode::BAD_GATEWAY);
        match failure {
            Failure::ConnectFailed if self.body_less && !self.tried_another => {
                self.tried_another = true;
                Decision::AnotherInstance
            }
            Failure::Unsent if reused => {
                self.unsent += 1;
                Decision::Again {
                    fresh_only: self.unsent >= MAX_UNSENT,
                }
            }
            Failure::NoAnswer if self.may_replay(reused) => {
                self.replayed = true;
                Decision::Again { fresh_only: true }
            }
            Failure::ConnectFailed | Failure::Unsent | Failure::NoAnswer | Failure::Broken => {
                BAD_GATEWAY
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: (bool, bool) = (true, true);
    const DELETE_NO_BODY: (bool, bool) = (true, true);
    const POST_NO_BODY: (bool, bool) = (true, false);
    const PUT_WITH_BODY: (bool, bool) = (false, true);
    const BAD_GATEWAY: Decision = Decision::Answer(StatusCode::BAD_GATEWAY);
    const AGAIN_POOLED: Decision = Decision::Again { fresh_only: false };
    const AGAIN_FRESH: Decision = Decision::Again { fresh_only: true };

    /// One attempt: on a reused connection?, how it failed, what the rule must decide.
    type Step = (bool, Failure, Decision);

    /// ((body-less, idempotent), its attempts in order): one request's whole story.
    #[test]
    fn the_rule_as_a_table() {
        use Failure::*;
        let table: &[((bool, bool), &[Step])] = &[
            // A refused connection: another instance once, then 502.
            (
                GET,
                &[
                    (false, ConnectFailed, Decision::AnotherInstance),
                    (false, ConnectFailed, BAD_GATEWAY),
                ],
            ),
            // A body cannot be sent twice: no other instance.
            (PUT_WITH_BODY, &[(false, ConnectFailed, BAD_GATEWAY)]),
            // Closed pooled connections: the next pooled one, a new one after MAX_UNSENT in a row.
            (
                PUT_WITH_BODY,
                &[
                    (true, Unsent, AGAIN_POOLED),
                    (true, Unsent, AGAIN_POOLED),
                    (true, Unsent, AGAIN_POOLED),
                    (true, Unsent, AGAIN_FRESH),
                ],
            ),
            // Unsent on a new connection is the instance's failure.
            (GET, &[(false, Unsent, BAD_GATEWAY)]),
            // The keep-alive race: an idempotent body-less request is replayed once, on a new connection.
            (
                GET,
                &[(true, NoAnswer, AGAIN_FRESH), (true, NoAnswer, BAD_GATEWAY)],
            ),
            (
                GET,
                &[
                    (true, NoAnswer, AGAIN_FRESH),
                    (false, NoAnswer, BAD_GATEWAY),
                ],
            ),
            (DELETE_NO_BODY, &[(true, NoAnswer, AGAIN_FRESH)]),
            // ...never a request that may have been processed and could not be undone, or one with a body.
            (POST_NO_BODY, &[(true, NoAnswer, BAD_GATEWAY)]),
            (PUT_WITH_BODY, &[(true, NoAnswer, BAD_GATEWAY)]),
            // Silence on a new connection: the instance failed on this request.
            (GET, &[(false, NoAnswer, BAD_GATEWAY)]),
            (GET, &[(true, Broken, BAD_GATEWAY)]),
            // Retries of different kinds add up, each within its own limit.
            (
                GET,
                &[
                    (false, ConnectFailed, Decision::AnotherInstance),
                    (true, Unsent, AGAIN_POOLED),
                    (true, NoAnswer, AGAIN_FRESH),
                    (false, ConnectFailed, BAD_GATEWAY),
                ],
            ),
        ];
        for (row, ((body_less, idempotent), story)) in table.iter().enumerate() {
            let mut retries = Retries::new(*body_less, *idempotent);
            for (step, (reused, failure, expected)) in story.iter().enumerate() {
                let decided = retries.after(*reused, *failure);
                assert_eq!(decided, *expected, "row {row}, step {step}: {failure:?}");
            }
        }
    }

    #[test]
    fn a_copy_is_kept_only_while_a_replay_is_possible() {
        let mut retries = Retries::new(true, true);
        assert!(
            !retries.may_replay(false),
            "a new connection is never replayed"
        );
        assert!(retries.may_replay(true));
        retries.after(true, Failure::NoAnswer);
        assert!(!retries.may_replay(true), "only once");
        assert!(!Retries::new(true, false).may_replay(true));
    }
}
