//! Who leads: client-go's leader-election rules over a `coordination.k8s.io/v1` Lease, as a pure
//! decision (no client, no clock: the Lease as read and the time are inputs). `leader_election.rs`
//! does the reads and writes.
//!
//! The rules, as client-go's `tryAcquireOrRenew`: no Lease → create it; held by me → renew it; held
//! by nobody (released) → take it at once; held by another → take it only once its record has not
//! changed for a whole lease duration *by my own clock*. Judging expiry by when I last saw the record
//! change, not by its `renewTime`, keeps clock skew between replicas out of it. Every write is
//! conditional on the `resourceVersion` read, so of two candidates only one wins a race.
//!
//! A leader counts itself lost once it has gone `2/3` of the duration without a successful renew
//! (client-go's renew deadline): it stops before any standby may take over, never after.

use std::time::{Duration, Instant};

/// The fields of a Lease's spec that the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Empty: released.
    pub holder: String,
    pub duration: Duration,
    /// As written (RFC 3339); compared, never parsed — it only tells a changed record.
    pub renew_time: String,
    pub transitions: i32,
}

/// What to write, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by me (transitions 0).
    Create,
    /// Take it over from whoever held it: a new acquire time, `transitions` this value.
    Acquire { transitions: i32 },
    /// Mine already: a new renew time, the rest kept.
    Renew,
    /// Someone else holds it and it has not expired for me yet.
    Standby { holder: String },
}

/// One candidate's view: its identity, and when it first saw the record it last read.
#[derive(Debug)]
pub struct Candidate {
    me: String,
    duration: Duration,
    observed: Option<(Record, Instant)>,
}

impl Candidate {
    pub fn new(me: impl Into<String>, duration: Duration) -> Candidate {
        Candidate {
            me: me.into(),
            duration,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.me
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How often a leader renews (client-go's retry period is of this order).
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Decides from the Lease as just read (`None`: there is none) at `now`.
    pub fn decide(&mut self, read: Option<&Record>, now: Instant) -> Decision {
        let Some(record) = read else {
            self.observed = None;
            return Decision::Create;
        };
        let since = match &self.observed {
            Some((seen, at)) if seen == record => *at,
            _ => now,
        };
        self.observed = Some((record.clone(), since));
        if record.holder == self.me {
            return Decision::Renew;
        }
        // The holder's own duration governs its lease, not mine.
        let expired = now.saturating_duration_since(since) >= record.duration;
        if record.holder.is_empty() || expired {
            Decision::Acquire {
                transitions: record.transitions.saturating_add(1),
            }
        } else {
            Decision::Standby {
                holder: record.holder.clone(),
            }
        }
    }

    /// A leader whose last successful renew was at `renewed` has lost the Lease at `now` (it must
    /// stop acting before a standby could take it over).
    pub fn lost(&self, renewed: Instant, now: Instant) -> bool {
        now.saturating_duration_since(renewed) >= self.duration * 2 / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, renew: &str) -> Record {
        Record {
            holder: holder.to_owned(),
            duration: Duration::from_secs(15),
            renew_time: renew.to_owned(),
            transitions: 2,
        }
    }

    #[test]
    fn no_lease_is_created() {
        let mut me = Candidate::new("b", Duration::from_secs(15));
        assert_eq!(me.decide(None, Instant::now()), Decision::Create);
    }

    #[test]
    fn my_own_lease_is_renewed() {
        let mut me = Candidate::new("b", Duration::from_secs(15));
        assert_eq!(
            me.decide(Some(&held_by("b", "t1")), Instant::now()),
            Decision::Renew
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut me = Candidate::new("b", Duration::from_secs(15));
        assert_eq!(
            me.decide(Some(&held_by("", "t1")), Instant::now()),
            Decision::Acquire { transitions: 3 }
        );
    }

    #[test]
    fn another_holder_is_waited_out_a_full_duration_from_the_last_change_seen() {
        let start = Instant::now();
        let mut me = Candidate::new("b", Duration::from_secs(60));
        let lease = held_by("a", "t1");
        let standby = Decision::Standby {
            holder: "a".to_owned(),
        };
        assert_eq!(me.decide(Some(&lease), start), standby);
        assert_eq!(
            me.decide(Some(&lease), start + Duration::from_secs(14)),
            standby
        );
        // The holder renewed at 14 s: the wait starts again from there.
        let renewed = held_by("a", "t2");
        assert_eq!(
            me.decide(Some(&renewed), start + Duration::from_secs(14)),
            standby
        );
        assert_eq!(
            me.decide(Some(&renewed), start + Duration::from_secs(28)),
            standby
        );
        // Then silence for the holder's whole duration (15 s, not my 60 s): it is mine.
        assert_eq!(
            me.decide(Some(&renewed), start + Duration::from_secs(29)),
            Decision::Acquire { transitions: 3 }
        );
    }

    #[test]
    fn a_record_seen_for_the_first_time_is_never_expired_whatever_its_renew_time() {
        // Clock skew: its renewTime may look old by my clock; I still wait a duration myself.
        let mut me = Candidate::new("b", Duration::from_secs(15));
        assert!(matches!(
            me.decide(Some(&held_by("a", "1970-01-01T00:00:00Z")), Instant::now()),
            Decision::Standby { .. }
        ));
    }

    #[test]
    fn a_leader_is_lost_two_thirds_of_a_duration_after_its_last_renew() {
        let me = Candidate::new("a", Duration::from_secs(15));
        let renewed = Instant::now();
        assert!(!me.lost(renewed, renewed + Duration::from_secs(9)));
        assert!(me.lost(renewed, renewed + Duration::from_secs(10)));
        assert_eq!(me.renew_every(), Duration::from_secs(5));
    }
}
