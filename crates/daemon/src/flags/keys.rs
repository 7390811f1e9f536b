//! Evaluation keys: what an OFREP client presents (`X-API-Key` or `Authorization: Bearer`). A key belongs
//! to one app and can only evaluate that app's flags. The daemon keeps a SHA-256 of each key, never the
//! key: it is printed once by `slipway flags key create` and cannot be shown again. Keys are 32 random
//! bytes, so a plain hash is enough (nothing to brute-force, unlike a password).
//!
//! Each key has a rate limit, enforced with GCRA (the token bucket as one atomic "theoretical arrival
//! time"): one second's worth of requests may come at once, then one per 1/rate seconds. The evaluation
//! path takes no lock: a compare-and-swap per request.

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Keys start with this, so one pasted in the wrong place is recognisable (and admin tokens, plain hex,
/// never look like one).
pub const PREFIX: &str = "sfk_";

/// The rate a key gets unless `flags key create --rate` says otherwise.
pub const DEFAULT_RATE_PER_SEC: f64 = 1_000.0;

pub type KeyHash = [u8; 32];

/// A new key from the OS's randomness.
pub fn generate() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

pub fn hash(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// One key's limiter. `rate_per_sec` 0 means unlimited.
#[derive(Debug)]
pub struct Limiter {
    /// Nanoseconds between two requests at the sustained rate; 0: unlimited.
    interval_ns: u64,
    /// How far ahead of now the theoretical arrival time may run: the burst, less one request.
    tolerance_ns: u64,
    /// Nanoseconds since `epoch` at which the next request conforms.
    tat: AtomicU64,
    epoch: Instant,
}

impl Limiter {
    pub fn new(rate_per_sec: f64) -> Limiter {
        let (interval_ns, tolerance_ns) = if rate_per_sec > 0.0 && rate_per_sec.is_finite() {
            let interval = (1e9 / rate_per_sec).max(1.0);
            let burst = rate_per_sec.ceil().max(1.0);
            (interval as u64, (interval * (burst - 1.0)) as u64)
        } else {
            (0, 0)
        };
        Limiter {
            interval_ns,
            tolerance_ns,
            tat: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Takes one request's place, or says how long until one is free.
    pub fn check(&self) -> Result<(), Duration> {
        self.check_at(self.epoch.elapsed().as_nanos() as u64)
    }

    fn check_at(&self, now: u64) -> Result<(), Duration> {
        if self.interval_ns == 0 {
            return Ok(());
        }
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let at = tat.max(now);
            if at - now > self.tolerance_ns {
                return Err(Duration::from_nanos(at - now - self.tolerance_ns));
            }
            match self.tat.compare_exchange_weak(
                tat,
                at + self.interval_ns,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_of_one_second_then_the_sustained_rate() {
        let limiter = Limiter::new(10.0);
        for _ in 0..10 {
            assert!(limiter.check_at(SECOND).is_ok());
        }
        let wait = limiter.check_at(SECOND).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(limiter.check_at(SECOND + SECOND / 10).is_ok());
        assert!(limiter.check_at(SECOND + SECOND / 10).is_err());
    }

    #[test]
    fn a_slow_rate_allows_one_then_says_when() {
        let limiter = Limiter::new(slipway_api::flags::parse_rate("1/min").unwrap());
        assert!(limiter.check_at(5 * SECOND).is_ok());
        let wait = limiter.check_at(6 * SECOND).unwrap_err();
        assert_eq!(wait.as_secs(), 59);
        assert!(limiter.check_at(65 * SECOND).is_ok());
    }

    #[test]
    fn unlimited_never_refuses() {
        let limiter = Limiter::new(slipway_api::flags::parse_rate("unlimited").unwrap());
        assert!((0..10_000).all(|_| limiter.check_at(0).is_ok()));
    }

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
    }
}
