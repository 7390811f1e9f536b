//! Choosing where a request goes: a weighted random release group, then the least-outstanding backend in
//! it.
//!
//! Random weighted choice (rather than a shared round-robin cursor) needs no shared mutable state, so the
//! hot path stays lock-free and contention-free; over many requests it follows the weights. Within a group,
//! least-outstanding-requests steers away from a slow instance, which round-robin would keep feeding.

use std::cell::Cell;
use std::sync::Arc;

use crate::backend::Backend;

thread_local! {
    /// Per-thread xorshift state, seeded once from the OS-seeded `rand` generator.
    static RNG: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
}

/// A cheap, thread-local pseudo-random number (xorshift64*). Not for secrets.
pub(crate) fn next_u64() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A uniform number in `0..bound` (`bound > 0`), by multiply-shift (bias is negligible for our bounds).
pub(crate) fn below(bound: u64) -> u64 {
    ((u128::from(next_u64()) * u128::from(bound)) >> 64) as u64
}

/// Picks an index from cumulative weights (`cumulative[i]` = sum of weights `0..=i`, strictly increasing).
pub(crate) fn weighted(cumulative: &[u64]) -> Option<usize> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let ticket = below(total);
    Some(cumulative.partition_point(|&c| c <= ticket))
}

/// The backend with the fewest outstanding requests, skipping `exclude`; ties are broken by starting the
/// scan at a random position.
pub(crate) fn least_outstanding<'a>(
    backends: &'a [Arc<Backend>],
    exclude: Option<&Arc<Backend>>,
) -> Option<&'a Arc<Backend>> {
    let n = backends.len();
    if n == 0 {
        return None;
    }
    let start = if n == 1 { 0 } else { below(n as u64) as usize };
    let mut best: Option<(&Arc<Backend>, usize)> = None;
    for i in 0..n {
        let candidate = &backends[(start + i) % n];
        if exclude.is_some_and(|x| Arc::ptr_eq(x, candidate)) {
            continue;
        }
        let load = candidate.in_flight();
        if best.is_none_or(|(_, l)| load < l) {
            best = Some((candidate, load));
            if load == 0 {
                break;
            }
        }
    }
    best.map(|(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Lease;

    #[test]
    fn weighted_follows_weights() {
        let cumulative = [10, 10 + 30, 10 + 30 + 60];
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[weighted(&cumulative).expect("pick")] += 1;
        }
        assert!((8_500..11_500).contains(&counts[0]), "{counts:?}");
        assert!((28_000..32_000).contains(&counts[1]), "{counts:?}");
        assert!((58_000..62_000).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn weighted_empty_is_none() {
        assert_eq!(weighted(&[]), None);
        assert_eq!(weighted(&[0]), None);
    }

    #[test]
    fn least_outstanding_avoids_busy_and_excluded() {
        let a = Backend::new("a", "127.0.0.1:1".parse().expect("addr"));
        let b = Backend::new("b", "127.0.0.1:2".parse().expect("addr"));
        let all = vec![a.clone(), b.clone()];
        let _busy = Lease::acquire(&a);
        for _ in 0..50 {
            assert!(Arc::ptr_eq(
                least_outstanding(&all, None).expect("pick"),
                &b
            ));
            assert!(Arc::ptr_eq(
                least_outstanding(&all, Some(&b)).expect("pick"),
                &a
            ));
        }
        assert!(least_outstanding(&all[..1], Some(&a)).is_none());
    }

    #[test]
    fn ties_spread_over_backends() {
        let all: Vec<_> = (0..3)
            .map(|i| {
                Backend::new(
                    format!("b{i}"),
                    format!("127.0.0.1:{}", i + 1).parse().expect("addr"),
                )
            })
            .collect();
        let mut seen = [0u32; 3];
        for _ in 0..3_000 {
            let pick = least_outstanding(&all, None).expect("pick");
            let i = all
                .iter()
                .position(|b| Arc::ptr_eq(b, pick))
                .expect("member");
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| n > 700), "{seen:?}");
    }
}
