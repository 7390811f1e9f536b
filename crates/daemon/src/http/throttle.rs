//! Brute-force limits on the tokens presented over TCP (API requests and dashboard logins share them),
//! per client address. Pure: time is an input and nothing is logged here (`doorkeeper.rs` does the IO).
//!
//! The rule: `failures` wrong tokens within `window` lock the address out for `lockout`; after that
//! every further failure locks it out again, each time twice as long as the last, up to
//! `max_lockout`. While an address is locked out nothing it presents is checked (the answer is 429
//! with `Retry-After`). A success forgets the address, and so does `forget_after` without a failure.
//! An IPv6 client is counted by its /64 (one host usually holds the whole prefix), an IPv4 client by
//! its address. At most `max_tracked` addresses are remembered; when full, the one whose last failure
//! is oldest is forgotten first, so memory stays bounded whatever the number of attackers.

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wrong tokens within `window_ms` before the first lock-out.
    pub failures: u32,
    pub window_ms: u64,
    /// The first lock-out; each further failure doubles it. 0: no lock-outs at all.
    pub lockout_ms: u64,
    pub max_lockout_ms: u64,
    /// An address with no failure for this long starts afresh.
    pub forget_after_ms: u64,
    pub max_tracked: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            failures: 10,
            window_ms: 60_000,
            lockout_ms: 30_000,
            max_lockout_ms: 15 * 60_000,
            forget_after_ms: 60 * 60_000,
            max_tracked: 10_000,
        }
    }
}

/// Who is counted: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(_) => Client(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Client(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer as the token deserves (200, 401, 403…).
    Open,
    /// Refuse without looking at the token: 429, `Retry-After` this long.
    Locked { retry_after_ms: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: u64,
    /// Failures in the current window (before the first lock-out).
    failures: u32,
    /// Lock-outs so far: the next one lasts `lockout_ms << lockouts`.
    lockouts: u32,
    locked_until: u64,
    last_failure: u64,
}

impl Record {
    fn fresh(now: u64) -> Record {
        Record {
            window_start: now,
            failures: 0,
            lockouts: 0,
            locked_until: 0,
            last_failure: now,
        }
    }
}

#[derive(Debug)]
pub struct Attempts {
    limits: Limits,
    records: HashMap<Client, Record>,
}

impl Attempts {
    pub fn new(limits: Limits) -> Attempts {
        Attempts {
            limits,
            records: HashMap::new(),
        }
    }

    /// Before the token is looked at: is this client locked out?
    pub fn check(&self, now: u64, client: Client) -> Verdict {
        match self.records.get(&client) {
            Some(r) if r.locked_until > now => Verdict::Locked {
                retry_after_ms: r.locked_until - now,
            },
            _ => Verdict::Open,
        }
    }

    /// Records one presented token, `ok` if it was valid. A client that is locked out stays so and
    /// the attempt does not count (nothing was checked).
    pub fn attempt(&mut self, now: u64, client: Client, ok: bool) -> Verdict {
        if let locked @ Verdict::Locked { .. } = self.check(now, client) {
            return locked;
        }
        if ok {
            self.records.remove(&client);
            return Verdict::Open;
        }
        self.make_room(client);
        let limits = self.limits;
        let r = self
            .records
            .entry(client)
            .or_insert_with(|| Record::fresh(now));
        if now.saturating_sub(r.last_failure) >= limits.forget_after_ms {
            *r = Record::fresh(now);
        }
        if now.saturating_sub(r.window_start) >= limits.window_ms {
            r.window_start = now;
            r.failures = 0;
        }
        r.failures += 1;
        r.last_failure = now;
        if (r.lockouts == 0 && r.failures < limits.failures) || limits.lockout_ms == 0 {
            return Verdict::Open;
        }
        let lock = limits
            .lockout_ms
            .saturating_mul(1u64 << r.lockouts.min(40))
            .min(limits.max_lockout_ms.max(limits.lockout_ms));
        r.lockouts = r.lockouts.saturating_add(1);
        r.failures = 0;
        r.locked_until = now.saturating_add(lock);
        Verdict::Locked {
            retry_after_ms: lock,
        }
    }

    /// How many clients are remembered.
    pub fn tracked(&self) -> usize {
        self.records.len()
    }

    /// Keeps the table under `max_tracked` before `client` is added: the oldest failure goes first.
    fn make_room(&mut self, client: Client) {
        if self.records.contains_key(&client) {
            return;
        }
        while self.records.len() >= self.limits.max_tracked.max(1) {
            let oldest = self
                .records
                .iter()
                .min_by_key(|(_, r)| r.last_failure)
                .map(|(c, _)| *c);
            match oldest {
                Some(c) => self.records.remove(&c),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            failures: 3,
            window_ms: 1_000,
            lockout_ms: 100,
            max_lockout_ms: 1_000,
            forget_after_ms: 10_000,
            max_tracked: 100,
        }
    }

    fn ip(text: &str) -> Client {
        Client::of(text.parse().unwrap())
    }

    fn locked(ms: u64) -> Verdict {
        Verdict::Locked { retry_after_ms: ms }
    }

    #[test]
    fn failures_in_a_window_lock_the_client_out_and_each_further_one_doubles_it() {
        let mut a = Attempts::new(limits());
        let c = ip("10.0.0.1");
        assert_eq!(a.attempt(0, c, false), Verdict::Open);
        assert_eq!(a.attempt(1, c, false), Verdict::Open);
        assert_eq!(a.attempt(2, c, false), locked(100));
        assert_eq!(a.check(52, c), locked(50));
        // While locked out nothing counts, not even a good token.
        assert_eq!(a.attempt(60, c, true), locked(42));
        assert_eq!(a.attempt(60, c, false), locked(42));
        assert_eq!(a.check(102, c), Verdict::Open);
        // After the first lock-out, every failure locks again, twice as long, up to the cap.
        assert_eq!(a.attempt(102, c, false), locked(200));
        assert_eq!(a.attempt(302, c, false), locked(400));
        assert_eq!(a.attempt(702, c, false), locked(800));
        assert_eq!(a.attempt(1_502, c, false), locked(1_000));
        assert_eq!(a.attempt(2_502, c, false), locked(1_000));
        // Others are not affected.
        assert_eq!(a.check(2_600, ip("10.0.0.2")), Verdict::Open);
        assert_eq!(a.attempt(2_600, ip("10.0.0.2"), false), Verdict::Open);
    }

    #[test]
    fn a_success_forgets_the_client() {
        let mut a = Attempts::new(limits());
        let c = ip("10.0.0.1");
        a.attempt(0, c, false);
        a.attempt(1, c, false);
        assert_eq!(a.attempt(2, c, false), locked(100));
        assert_eq!(a.attempt(102, c, true), Verdict::Open);
        assert_eq!(a.tracked(), 0);
        // A fresh start: the full allowance again, and the first lock-out short again.
        assert_eq!(a.attempt(103, c, false), Verdict::Open);
        assert_eq!(a.attempt(104, c, false), Verdict::Open);
        assert_eq!(a.attempt(105, c, false), locked(100));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_do_not_lock() {
        let mut a = Attempts::new(limits());
        let c = ip("10.0.0.1");
        for round in 0..5 {
            let t = round * 1_000;
            assert_eq!(a.attempt(t, c, false), Verdict::Open);
            assert_eq!(a.attempt(t + 500, c, false), Verdict::Open);
        }
    }

    #[test]
    fn a_quiet_spell_forgets_the_lockouts() {
        let mut a = Attempts::new(limits());
        let c = ip("10.0.0.1");
        a.attempt(0, c, false);
        a.attempt(1, c, false);
        assert_eq!(a.attempt(2, c, false), locked(100));
        assert_eq!(a.attempt(102, c, false), locked(200));
        // 10 s without a failure: the allowance is back.
        assert_eq!(a.attempt(10_102, c, false), Verdict::Open);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
        let mut a = Attempts::new(limits());
        a.attempt(0, ip("2001:db8::1"), false);
        a.attempt(0, ip("2001:db8::2"), false);
        assert_eq!(a.attempt(0, ip("2001:db8::3"), false), locked(100));
    }

    #[test]
    fn memory_stays_bounded_and_the_oldest_failure_goes_first() {
        let mut a = Attempts::new(Limits {
            max_tracked: 10,
            ..limits()
        });
        for n in 0..1_000u32 {
            let c = Client::of(IpAddr::from(n.to_be_bytes()));
            a.attempt(u64::from(n), c, false);
            assert!(a.tracked() <= 10);
        }
        // The newest are still counted: two more failures lock the last client out.
        let last = Client::of(IpAddr::from(999u32.to_be_bytes()));
        a.attempt(1_000, last, false);
        assert_eq!(a.attempt(1_001, last, false), locked(100));
    }
}
