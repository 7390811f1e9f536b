//! An app's traffic per minute over its SLO window: requests, errors and slow requests, one bucket a
//! minute (only minutes with traffic have one). Sums over any span of whole minutes answer every
//! question the budget and the alerts ask. 30 days of busy minutes are 43,200 buckets of 16 bytes.

use std::collections::VecDeque;

/// Minutes since the Unix epoch (fits in 32 bits until the year 10,000).
pub fn minute_of(ms: u64) -> u32 {
    u32::try_from(ms / 60_000).unwrap_or(u32::MAX)
}

/// One minute of an app's traffic. Counts saturate (4 billion requests a minute is 70 M per second).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    pub minute: u32,
    pub requests: u32,
    pub errors: u32,
    /// Requests slower than the latency objective's time (0 without one).
    pub slow: u32,
}

/// Sums of buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    pub slow: u64,
}

impl Counts {
    fn add(&mut self, b: &Bucket) {
        self.requests += u64::from(b.requests);
        self.errors += u64::from(b.errors);
        self.slow += u64::from(b.slow);
    }
}

/// Buckets in minute order, at most one per minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    buckets: VecDeque<Bucket>,
}

fn sat(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Ledger {
    /// A ledger of these buckets, in any order; buckets of the same minute are added together.
    pub fn from_buckets(mut buckets: Vec<Bucket>) -> Ledger {
        buckets.sort_by_key(|b| b.minute);
        let mut ledger = Ledger::default();
        for b in buckets {
            ledger.add(b.minute, b.requests.into(), b.errors.into(), b.slow.into());
        }
        ledger
    }

    /// Adds traffic to its minute's bucket (new minutes come last in practice; an older one is put in
    /// its place).
    pub fn add(&mut self, minute: u32, requests: u64, errors: u64, slow: u64) {
        if requests == 0 && errors == 0 && slow == 0 {
            return;
        }
        let at = self.buckets.partition_point(|b| b.minute < minute);
        match self.buckets.get_mut(at) {
            Some(b) if b.minute == minute => {
                b.requests = sat(u64::from(b.requests) + requests);
                b.errors = sat(u64::from(b.errors) + errors);
                b.slow = sat(u64::from(b.slow) + slow);
            }
            _ => self.buckets.insert(
                at,
                Bucket {
                    minute,
                    requests: sat(requests),
                    errors: sat(errors),
                    slow: sat(slow),
                },
            ),
        }
    }

    /// Forgets the minutes before `minute`.
    pub fn prune(&mut self, minute: u32) {
        let keep_from = self.buckets.partition_point(|b| b.minute < minute);
        self.buckets.drain(..keep_from);
    }

    /// The traffic of minutes `from..=to`.
    pub fn totals(&self, from: u32, to: u32) -> Counts {
        let start = self.buckets.partition_point(|b| b.minute < from);
        let mut c = Counts::default();
        for b in self.buckets.range(start..) {
            if b.minute > to {
                break;
            }
            c.add(b);
        }
        c
    }

    pub fn buckets(&self) -> impl DoubleEndedIterator<Item = &Bucket> + '_ {
        self.buckets.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_adds_up_per_minute_and_old_minutes_go() {
        let mut l = Ledger::default();
        l.add(10, 100, 1, 2);
        l.add(10, 50, 0, 1);
        l.add(12, 10, 10, 0);
        l.add(11, 5, 0, 0); // late, put in its place
        l.add(13, 0, 0, 0); // nothing: no bucket
        let minutes: Vec<u32> = l.buckets().map(|b| b.minute).collect();
        assert_eq!(minutes, [10, 11, 12]);
        assert_eq!(
            l.totals(10, 12),
            Counts {
                requests: 165,
                errors: 11,
                slow: 3
            }
        );
        assert_eq!(l.totals(11, 11).requests, 5);
        assert_eq!(l.totals(13, 99), Counts::default());
        l.prune(11);
        assert_eq!(l.totals(0, 99).requests, 15);
    }

    #[test]
    fn a_ledger_is_rebuilt_from_stored_buckets_in_any_order() {
        let b = |minute, requests| Bucket {
            minute,
            requests,
            errors: 0,
            slow: 0,
        };
        let l = Ledger::from_buckets(vec![b(3, 1), b(1, 2), b(3, 4)]);
        let got: Vec<(u32, u32)> = l.buckets().map(|b| (b.minute, b.requests)).collect();
        assert_eq!(got, [(1, 2), (3, 5)]);
        assert_eq!(minute_of(120_000), 2);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut l = Ledger::default();
        l.add(1, u64::from(u32::MAX), 0, 0);
        l.add(1, 10, 0, 0);
        assert_eq!(l.totals(1, 1).requests, u64::from(u32::MAX));
    }
}
