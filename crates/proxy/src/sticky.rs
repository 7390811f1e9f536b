//! Sticky users: keeping one user on one release while a canary runs, so they do not flip between versions
//! from one request to the next.
//!
//! Two ways. With a cookie, the proxy remembers the release it picked (`name=vN`) and honours it while that
//! release still gets traffic. With a header value or the client's address, nothing is stored: the value is
//! hashed into one of [`BUCKETS`] buckets, and buckets are laid out over the serving releases **newest
//! first**, each taking a share proportional to its weight. The canary's range is then `0..share`, so raising
//! its weight only extends its range: a user on the canary at 10 % stays on it at 20 % (only users moving
//! *to* the canary change release), and lowering it only moves users back to the stable release.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;

/// How finely the weights are split for hash-sticky users (0.01 % steps).
pub(crate) const BUCKETS: u32 = 10_000;

/// The bucket (`0..BUCKETS`) of a sticky value (header value or client address). The same in every process
/// of one build (SipHash with fixed keys), and spread evenly even for similar values.
pub(crate) fn bucket_of(value: &[u8]) -> u32 {
    let mut hasher = DefaultHasher::new();
    hasher.write(value);
    ((u128::from(hasher.finish()) * u128::from(BUCKETS)) >> 64) as u32
}

/// Buckets laid over the serving releases, newest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketMap {
    /// `(end, item)`: buckets below `end` (and at or above the previous end) go to `item`.
    ranges: Vec<(u32, usize)>,
}

impl BucketMap {
    /// `groups`: `(release, weight, item)` of the serving groups; `item` is what `pick` returns. Groups at
    /// weight 0 get no bucket.
    pub(crate) fn new(groups: impl IntoIterator<Item = (u64, u32, usize)>) -> BucketMap {
        let mut groups: Vec<(u64, u32, usize)> =
            groups.into_iter().filter(|&(_, w, _)| w > 0).collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.0));
        let total: u64 = groups.iter().map(|&(_, w, _)| u64::from(w)).sum();
        let mut cumulative = 0u64;
        let ranges = groups
            .into_iter()
            .map(|(_, weight, item)| {
                cumulative += u64::from(weight);
                // cumulative ≤ total, so every end is at most BUCKETS and the last one is exactly BUCKETS.
                let end = cumulative * u64::from(BUCKETS) / total;
                (u32::try_from(end).unwrap_or(BUCKETS), item)
            })
            .collect();
        BucketMap { ranges }
    }

    /// The item owning `bucket` (`< BUCKETS`); `None` only when no group has weight.
    pub(crate) fn pick(&self, bucket: u32) -> Option<usize> {
        let i = self.ranges.partition_point(|&(end, _)| end <= bucket);
        self.ranges
            .get(i)
            .or_else(|| self.ranges.last())
            .map(|&(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canary v2 at `w` %, stable v1 at the rest; items are the release numbers.
    fn split(w: u32) -> BucketMap {
        BucketMap::new([(1, 100 - w, 1), (2, w, 2)])
    }

    #[test]
    fn canary_buckets_stay_on_the_canary_as_its_weight_rises() {
        let steps = [0, 1, 5, 10, 20, 25, 33, 50, 75, 99, 100];
        for (i, &w1) in steps.iter().enumerate() {
            let before = split(w1);
            for &w2 in &steps[i..] {
                let after = split(w2);
                for bucket in 0..BUCKETS {
                    if before.pick(bucket) == Some(2) {
                        assert_eq!(
                            after.pick(bucket),
                            Some(2),
                            "bucket {bucket}: {w1}% -> {w2}%"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shares_follow_weights_and_newest_comes_first() {
        let map = split(10);
        let canary = (0..BUCKETS).filter(|&b| map.pick(b) == Some(2)).count();
        assert_eq!(canary, 1_000);
        assert_eq!(map.pick(0), Some(2));
        assert_eq!(map.pick(BUCKETS - 1), Some(1));
        // Weights need not add up to 100; three releases keep the newest-first layout.
        let three = BucketMap::new([(3, 1, 30), (1, 2, 10), (2, 1, 20)]);
        assert_eq!(three.pick(0), Some(30));
        assert_eq!(three.pick(BUCKETS / 4), Some(20));
        assert_eq!(three.pick(BUCKETS - 1), Some(10));
        assert_eq!(BucketMap::new([]).pick(0), None);
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket_of(b"user-42"), bucket_of(b"user-42"));
        let mut low = 0;
        for i in 0..10_000 {
            let b = bucket_of(format!("user-{i}").as_bytes());
            assert!(b < BUCKETS);
            if b < BUCKETS / 10 {
                low += 1;
            }
        }
        // ~1000 expected; allow ~6 sd.
        assert!((800..1_200).contains(&low), "{low}");
    }
}
