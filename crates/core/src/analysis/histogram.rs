//! A log-linear latency histogram with a fixed bucket layout.
//!
//! Why this shape: the proxy records one latency per request into per-release atomic counters, so the
//! layout must be fixed (shared by the recorder and the analysis), the bucket of a value must cost a few
//! instructions, and snapshots must subtract (the analysis window is "now − snapshot at analysis start").
//! Like HdrHistogram, values below 256 µs are exact and every power of two above is split into 128 linear
//! sub-buckets, so a bucket is at most 1/128 (0.78 %) of its values wide. Values are microseconds; anything
//! above [`MAX_MICROS`] (2³² − 1 µs ≈ 71.6 min) is counted in the last bucket.

use serde::{Deserialize, Serialize};

/// log2 of the number of linear sub-buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// The highest power of two tracked (its bucket range ends at 2^(MAX_EXP+1) − 1).
const MAX_EXP: u32 = 31;

/// The largest latency told apart from larger ones, in microseconds (≈ 71.6 minutes).
pub const MAX_MICROS: u64 = (1 << (MAX_EXP + 1)) - 1;

/// Counts of requests per latency bucket. Plain data: mergeable, subtractable, serializable (sparsely).
///
/// Kept without its trailing empty buckets (a bucket past the end counts 0): the controller keeps a
/// minute of per-second snapshots of every release, and a full layout is 26 KB where an idle release's
/// is empty and a busy one's ends at its slowest request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SparseCounts", into = "SparseCounts")]
pub struct LatencyHistogram {
    /// At most [`Self::BUCKETS`], never ending in a zero.
    counts: Vec<u64>,
    total: u64,
}

impl LatencyHistogram {
    /// Number of buckets: 256 exact ones, then 128 per power of two up to 2³².
    pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) << SUB_BITS;

    /// The bucket a latency falls in. Branch-free apart from the clamp: the proxy calls it per request.
    #[inline]
    pub fn bucket_of(micros: u64) -> usize {
        let v = micros.min(MAX_MICROS);
        // `v | SUB` keeps values below 256 at shift 0 (exact buckets) without a branch.
        let shift = (63 - SUB_BITS) - (v | SUB).leading_zeros();
        (((shift as u64) << SUB_BITS) + (v >> shift)) as usize
    }

    /// The largest latency (µs) that falls in bucket `i` (indices past the end mean the last bucket).
    pub fn bucket_upper_micros(i: usize) -> u64 {
        let i = i.min(Self::BUCKETS - 1) as u64;
        if i < 2 * SUB {
            return i;
        }
        let shift = (i >> SUB_BITS) - 1;
        let mantissa = i - (shift << SUB_BITS);
        ((mantissa + 1) << shift) - 1
    }

    /// A histogram from raw bucket counts (the proxy's atomics). Missing buckets count zero; counts
    /// past [`Self::BUCKETS`] are added to the last bucket.
    pub fn from_counts(mut counts: Vec<u64>) -> Self {
        if counts.len() > Self::BUCKETS {
            let overflow = counts[Self::BUCKETS..]
                .iter()
                .fold(0u64, |a, &c| a.saturating_add(c));
            counts.truncate(Self::BUCKETS);
            counts[Self::BUCKETS - 1] = counts[Self::BUCKETS - 1].saturating_add(overflow);
        }
        let used = counts.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
        counts.truncate(used);
        counts.shrink_to_fit();
        let total = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
        LatencyHistogram { counts, total }
    }

    /// The raw bucket counts up to the last non-empty one (for exposition, e.g. as a Prometheus
    /// histogram); the buckets after them are empty.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn record(&mut self, micros: u64) {
        let b = Self::bucket_of(micros);
        if b >= self.counts.len() {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `p`th percentile (0 < p ≤ 100) in µs: the upper edge of the bucket holding the value of rank
    /// ⌈p/100 · count⌉, so never below the exact value and at most 0.78 % above it. `None` when empty or
    /// when `p` is not a percentage.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 || !(0.0..=100.0).contains(&p) {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64)
            .ceil()
            .clamp(1.0, self.total as f64) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return Some(Self::bucket_upper_micros(i));
            }
        }
        None
    }

    /// Requests in buckets entirely above the one holding `micros`: "slower than `micros`" at the
    /// histogram's resolution (a request in the same bucket counts as not slower).
    pub fn count_above(&self, micros: u64) -> u64 {
        let b = Self::bucket_of(micros);
        self.counts
            .get(b + 1..)
            .unwrap_or_default()
            .iter()
            .fold(0u64, |a, &c| a.saturating_add(c))
    }

    /// Bucket-wise `self − earlier`, never below zero: the latencies recorded since `earlier`.
    pub fn saturating_sub(&self, earlier: &Self) -> Self {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, a)| a.saturating_sub(earlier.counts.get(i).copied().unwrap_or(0)))
            .collect();
        Self::from_counts(counts)
    }

    /// Adds `other`'s counts to these (e.g. several instances, or several proxy threads).
    pub fn merge(&mut self, other: &Self) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total = self.total.saturating_add(other.total);
    }
}

/// The serialized form: only the non-empty buckets, as `[index, count]` pairs.
#[derive(Serialize, Deserialize)]
struct SparseCounts {
    buckets: Vec<(u32, u64)>,
}

impl From<LatencyHistogram> for SparseCounts {
    fn from(h: LatencyHistogram) -> Self {
        let buckets = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u32, *c))
            .collect();
        SparseCounts { buckets }
    }
}

impl TryFrom<SparseCounts> for LatencyHistogram {
    type Error = String;

    fn try_from(s: SparseCounts) -> Result<Self, String> {
        let mut counts = vec![0u64; Self::BUCKETS];
        for (i, c) in s.buckets {
            let slot = counts.get_mut(i as usize).ok_or_else(|| {
                format!(
                    "latency bucket {i} is out of range (0..{})",
                    LatencyHistogram::BUCKETS
                )
            })?;
            *slot = slot.saturating_add(c);
        }
        Ok(Self::from_counts(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn layout_is_contiguous_and_edges_round_trip() {
        assert_eq!(LatencyHistogram::BUCKETS, 3328);
        assert_eq!(LatencyHistogram::bucket_of(0), 0);
        assert_eq!(LatencyHistogram::bucket_of(255), 255);
        assert_eq!(LatencyHistogram::bucket_of(256), 256);
        assert_eq!(LatencyHistogram::bucket_of(257), 256);
        assert_eq!(LatencyHistogram::bucket_of(258), 257);
        for i in 0..LatencyHistogram::BUCKETS - 1 {
            let upper = LatencyHistogram::bucket_upper_micros(i);
            assert_eq!(LatencyHistogram::bucket_of(upper), i, "upper edge of {i}");
            assert_eq!(LatencyHistogram::bucket_of(upper + 1), i + 1, "after {i}");
        }
        let last = LatencyHistogram::BUCKETS - 1;
        assert_eq!(LatencyHistogram::bucket_upper_micros(last), MAX_MICROS);
        assert_eq!(LatencyHistogram::bucket_of(MAX_MICROS), last);
        assert_eq!(LatencyHistogram::bucket_of(u64::MAX), last);
        // One hour fits inside the tracked range.
        assert!(LatencyHistogram::bucket_of(3_600_000_000) < last);
    }

    #[test]
    fn buckets_are_at_most_one_percent_wide() {
        for i in 256..LatencyHistogram::BUCKETS {
            let lower = LatencyHistogram::bucket_upper_micros(i - 1) + 1;
            let upper = LatencyHistogram::bucket_upper_micros(i);
            assert!(((upper - lower + 1) as f64) / (lower as f64) <= 1.0 / 128.0 + 1e-12);
        }
    }

    #[test]
    fn percentiles_are_within_one_percent_of_exact() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..20 {
            let mut h = LatencyHistogram::default();
            let mut exact = Vec::new();
            let n = 1 + (rng.next() % 20_000) as usize;
            for _ in 0..n {
                // Log-uniform from 1 µs to ~1 h, so every scale of the layout is exercised.
                let v = (1.0f64 * (rng.unit() * (3.6e9f64).ln()).exp()) as u64;
                exact.push(v);
                h.record(v);
            }
            exact.sort_unstable();
            assert_eq!(h.count(), n as u64);
            for p in [0.1, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0] {
                let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as usize;
                let truth = exact[rank - 1];
                let got = h.percentile(p).unwrap();
                assert!(got >= truth, "round {round} p{p}: {got} < {truth}");
                assert!(
                    (got - truth) as f64 <= truth as f64 * 0.01,
                    "round {round} p{p}: {got} vs {truth}"
                );
            }
        }
    }

    #[test]
    fn empty_or_invalid_percentiles_are_none() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.percentile(50.0), None);
        h.record(1000);
        assert_eq!(h.percentile(f64::NAN), None);
        assert_eq!(h.percentile(101.0), None);
        assert_eq!(h.percentile(-1.0), None);
        assert_eq!(
            h.percentile(0.0),
            Some(LatencyHistogram::bucket_upper_micros(
                LatencyHistogram::bucket_of(1000)
            ))
        );
    }

    #[test]
    fn count_above_counts_strictly_slower_buckets() {
        let mut h = LatencyHistogram::default();
        for v in [10, 100, 1_000, 10_000, 100_000] {
            h.record(v);
        }
        assert_eq!(h.count_above(0), 5);
        assert_eq!(h.count_above(10), 4);
        assert_eq!(h.count_above(999), 3);
        assert_eq!(h.count_above(1_000), 2);
        assert_eq!(h.count_above(u64::MAX), 0);
    }

    #[test]
    fn subtract_and_merge_are_bucket_wise() {
        let mut rng = XorShift(42);
        let mut earlier = LatencyHistogram::default();
        let mut later_only = LatencyHistogram::default();
        for _ in 0..5_000 {
            earlier.record(rng.next() % 1_000_000);
            later_only.record(rng.next() % 5_000_000);
        }
        let mut now = earlier.clone();
        now.merge(&later_only);
        assert_eq!(now.count(), 10_000);
        assert_eq!(now.saturating_sub(&earlier), later_only);
        // Never negative: subtracting a larger snapshot (e.g. after a proxy restart) gives empty buckets.
        assert_eq!(earlier.saturating_sub(&now).count(), 0);
        // Different lengths: what is past the shorter one is kept, not cut.
        let mut slow = LatencyHistogram::default();
        slow.record(3_000_000);
        let fast = LatencyHistogram::from_counts(vec![1]);
        assert_eq!(slow.saturating_sub(&fast), slow);
        let mut both = fast.clone();
        both.merge(&slow);
        assert_eq!((both.count(), both.count_above(1_000)), (2, 1));
        assert_eq!(fast.count_above(5_000_000), 0);
    }

    #[test]
    fn from_counts_trims_and_folds_overflow() {
        let h = LatencyHistogram::from_counts(vec![1, 2, 3, 0, 0]);
        assert_eq!(h.count(), 6);
        assert_eq!(h.counts(), [1, 2, 3], "no trailing empty buckets kept");
        assert!(
            LatencyHistogram::from_counts(vec![0; 100])
                .counts()
                .is_empty()
        );
        assert_eq!(
            h,
            LatencyHistogram::from_counts(vec![1, 2, 3]),
            "one representation"
        );
        let mut long = vec![0; LatencyHistogram::BUCKETS + 2];
        long[LatencyHistogram::BUCKETS + 1] = 7;
        let h = LatencyHistogram::from_counts(long);
        assert_eq!(h.counts()[LatencyHistogram::BUCKETS - 1], 7);
        assert_eq!(h.count(), 7);
    }

    #[test]
    fn serializes_sparsely_and_round_trips() {
        let mut h = LatencyHistogram::default();
        h.record(5);
        h.record(5);
        h.record(70_000);
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.len() < 60, "{json}");
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        let bad = serde_json::from_str::<LatencyHistogram>(r#"{"buckets":[[99999,1]]}"#);
        assert!(bad.is_err());
    }
}
