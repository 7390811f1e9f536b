//! Ports for instances (`PORT`). Chosen below the kernel's ephemeral range: a port from that range
//! (what binding port 0 returns) is also what every outgoing connection takes as its source port, and
//! with many instances the daemon opens hundreds a second (probes, the proxy's connections) — one of
//! them could take the port between the pick and the instance's own bind, which then fails with
//! "Address already in use" until the instance is counted as crash-looping. A port is also not handed
//! out twice within a while, so two instances starting together never get the same one.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where instance ports come from when the ephemeral range leaves room below it.
const LOWEST: u16 = 10_000;
/// How long a port handed out is not handed out again (an instance binds well within it).
const RESERVED_FOR: Duration = Duration::from_secs(60);

static RECENT: Mutex<VecDeque<(u16, Instant)>> = Mutex::new(VecDeque::new());

/// A port on 127.0.0.1 that is free now, outside the ephemeral range, and not handed out in the last
/// minute. Another process could still take it before the instance binds (the instance then fails to
/// bind, is restarted, and its replacement gets a new port); falls back to port 0's answer when the
/// range below the ephemeral ports is too small or taken.
pub fn pick_free_port() -> io::Result<u16> {
    let (ephemeral_low, _) = ephemeral_range();
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    while recent
        .front()
        .is_some_and(|&(_, at)| now.duration_since(at) > RESERVED_FOR)
    {
        recent.pop_front();
    }
    if ephemeral_low > LOWEST + 1_000 {
        let span = u32::from(ephemeral_low - LOWEST);
        let start = random_below(span);
        for i in 0..span.min(2_000) {
            let port = LOWEST + ((start + i) % span) as u16;
            if recent.iter().any(|&(p, _)| p == port) {
                continue;
            }
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                recent.push_back((port, now));
                return Ok(port);
            }
        }
    }
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    recent.push_back((port, now));
    Ok(port)
}

/// The kernel's ephemeral port range (Linux's default when it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// A number below `n` that differs between calls and processes (no need to be unpredictable: it
/// only spreads the picks).
fn random_below(n: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()));
    (hasher.finish() % u64::from(n.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_free_distinct_and_below_the_ephemeral_range() {
        let (low, _) = ephemeral_range();
        let ports: Vec<u16> = (0..200).map(|_| pick_free_port().expect("port")).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
        if low > LOWEST + 1_000 {
            assert!(
                ports.iter().all(|&p| (LOWEST..low).contains(&p)),
                "{ports:?}"
            );
        }
        for p in ports.iter().take(5) {
            TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).expect("still free");
        }
    }
}
