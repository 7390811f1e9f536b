//! Health probes: startup, readiness and liveness checks of a running instance.
//!
//! Split in two so the decisions are testable without IO: [`ProbeTracker`] turns a stream of single check
//! results into a verdict with Kubernetes' consecutive-threshold semantics, and [`check`] performs one
//! check (`http`, `tcp` or `exec`) against the instance. [`spawn_probe`] runs one probe on its schedule
//! and reports each result to the supervisor, which owns the trackers and acts on the verdicts.

use crate::process_group::{Death, describe_exit, group_command, signal_group, spawn};
use nix::sys::signal::Signal;
use slipway_core::spec::{ProbeCheck, ProbeSpec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// Consecutive-result bookkeeping for one probe.
///
/// The verdict starts unknown (`None`): a readiness probe is not passing until `success_threshold` checks
/// in a row pass, a liveness probe is not failing until `failure_threshold` checks in a row fail.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    passing: Option<bool>,
}

impl ProbeTracker {
    pub fn new(spec: &ProbeSpec) -> ProbeTracker {
        ProbeTracker {
            // A threshold of 0 would flip on no evidence at all; treat it as 1.
            success_threshold: spec.success_threshold.max(1),
            failure_threshold: spec.failure_threshold.max(1),
            successes: 0,
            failures: 0,
            passing: None,
        }
    }

    /// Records one check; returns the new verdict when it changed (including from unknown).
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let verdict = if self.successes >= self.success_threshold {
            Some(true)
        } else if self.failures >= self.failure_threshold {
            Some(false)
        } else {
            self.passing
        };
        let changed = verdict != self.passing;
        self.passing = verdict;
        if changed { verdict } else { None }
    }

    #[cfg(test)]
    pub fn passing(&self) -> Option<bool> {
        self.passing
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

/// Readiness for a web instance that has no readiness probe: its port accepts connections.
pub fn default_web_readiness() -> ProbeSpec {
    ProbeSpec {
        check: ProbeCheck::Tcp,
        // As for a configured readiness probe: steady state only (see `spawn_probe`).
        period: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
        initial_delay: Duration::ZERO,
        success_threshold: 1,
        failure_threshold: 3,
    }
}

/// What a probe checks: the instance's address, and for `exec` its folder and env.
#[derive(Debug)]
pub struct ProbeTarget {
    /// `127.0.0.1:$PORT` for a process; a container's published port or network address.
    pub addr: Option<SocketAddr>,
    /// The address is a forwarder's (Docker's userland proxy) that accepts connections even when
    /// nothing listens behind it: a TCP check must also see the connection stay open.
    pub forwarded: bool,
    pub workdir: PathBuf,
    /// Merged over the daemon's env, as for the instance. Contains secrets: never log it.
    pub env: BTreeMap<String, String>,
}

/// Runs one check, bounded by `timeout`. `Err` says why it failed, for events (never contains env values).
pub async fn check(
    check: &ProbeCheck,
    target: &ProbeTarget,
    timeout: Duration,
) -> Result<(), String> {
    match check {
        // The exec check enforces its own timeout, because it must kill what it started.
        ProbeCheck::Exec { cmd } => exec_check(cmd, target, timeout).await,
        ProbeCheck::Http { path } => {
            let addr = target
                .addr
                .ok_or("http probe on a process without a port")?;
            tokio::time::timeout(timeout, http_check(addr, path))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "GET {path} timed out after {}",
                        fmt_duration(timeout)
                    ))
                })
        }
        ProbeCheck::Tcp => {
            let addr = target.addr.ok_or("tcp probe on a process without a port")?;
            let connect = async {
                let stream = TcpStream::connect(addr)
                    .await
                    .map_err(|err| format!("connect to {addr}: {err}"))?;
                if target.forwarded {
                    held_open(stream, addr).await
                } else {
                    Ok(())
                }
            };
            tokio::time::timeout(timeout, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "connect to {addr} timed out after {}",
                        fmt_duration(timeout)
                    ))
                })
        }
    }
}

/// How long a forwarded connection must stay open to count: a forwarder that cannot reach the app
/// closes it as soon as its own connect is refused, which takes well under this on one host.
const FORWARDED_HOLD: Duration = Duration::from_millis(150);

/// A forwarder accepted: the app is there if the connection is neither closed nor reset at once.
async fn held_open(mut stream: TcpStream, addr: SocketAddr) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(FORWARDED_HOLD, stream.read(&mut byte)).await {
        // Silence (an HTTP server waiting for a request) or a greeting: something listens.
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) => Err(format!(
            "{addr} accepted and closed the connection at once: nothing listens behind it yet"
        )),
        Ok(Err(err)) => Err(format!("{addr}: {err}")),
    }
}

/// `GET http://addr/path`: 2xx or 3xx passes. One connection per check, closed afterwards, so a
/// probe never holds a keep-alive connection that would delay the instance's drain. Written by hand:
/// only the status line matters, and a probe of every instance every period is the daemon's main
/// idle cost, where a client connection with its own task per check did more than a probe needs.
async fn http_check(addr: SocketAddr, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("connect to {addr}: {err}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: slipway-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|err| format!("GET {path}: {err}"))?;
    // "HTTP/1.1 200" is all it takes; read until the status code is in.
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        match stream.read(&mut head[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) => return Err(format!("GET {path}: {err}")),
        }
    }
    let status =
        status_of(&head[..filled]).ok_or_else(|| format!("GET {path}: not an HTTP response"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

/// The status code of a response starting `HTTP/1.x NNN`.
fn status_of(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `sh -c cmd` in the instance's folder and env; exit 0 passes. On timeout its whole group is killed.
async fn exec_check(cmd: &str, target: &ProbeTarget, timeout: Duration) -> Result<(), String> {
    let mut command = group_command(cmd, &target.workdir, &target.env, Death::WithDaemon);
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = spawn(command).map_err(|err| format!("could not run `{cmd}`: {err}"))?;
    // Also covers the probe task being aborted mid-check (the instance exited or is stopping).
    let mut guard = KillGroupOnDrop(child.id());
    let result = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("`{cmd}` {}", describe_exit(status))),
        Ok(Err(err)) => Err(format!("`{cmd}`: {err}")),
        Err(_) => return Err(format!("`{cmd}` timed out after {}", fmt_duration(timeout))),
    };
    // Reaped: its pid may be reused now, so do not signal the group any more.
    guard.0 = None;
    result
}

struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
        }
    }
}

/// One check's result, sent to the supervisor.
#[derive(Debug)]
pub struct ProbeResult {
    pub kind: ProbeKind,
    pub result: Result<(), String>,
}

/// The first pause between readiness checks of an instance that has not passed one yet; it doubles
/// up to [`SETTLING`]. An instance is ready moments after it listens, not up to a period later: what a
/// cold start or a rollout waits for. (Failed readiness checks before the first pass change nothing, so
/// checking often then is safe; startup and liveness failures restart, so they keep their period.)
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// The longest pause between readiness checks while an instance is not passing: still starting, or
/// failed a check and is being confirmed (taken out after `failure_threshold` failures in a row, then
/// watched for its return). Only a passing instance waits the whole period — the steady state, whose
/// cost grows with the number of instances (1,000 instances at 1 s were 1,000 connections a second).
const SETTLING: Duration = Duration::from_secs(1);

/// The pause after a check, and the next doubling pause while starting (`eager`).
fn next_pause(
    kind: ProbeKind,
    period: Duration,
    passed: bool,
    eager: &mut Option<Duration>,
) -> Duration {
    if kind != ProbeKind::Readiness {
        return period;
    }
    if passed {
        *eager = None;
        return period;
    }
    let settling = period.min(SETTLING);
    match *eager {
        Some(pause) if pause < settling => {
            *eager = Some(pause * 2);
            pause
        }
        _ => settling,
    }
}

/// Steady-state checks are due on these ticks of the daemon's clock, so that with many instances
/// the daemon wakes a few times a second for a batch of checks rather than once per check: with
/// 1,000 instances at a 10 s period, 100 wake-ups a second (each an `epoll_wait` and often a
/// thread woken) become at most 10, and a check is later by less than a tick.
const TICK: Duration = Duration::from_millis(100);

/// `due` moved to the next tick (measured from the first call), for pauses of a second or more;
/// a shorter pause (a starting instance checked within milliseconds) is kept exact.
fn on_tick(due: Instant, pause: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    tick_after(epoch, due, pause)
}

fn tick_after(epoch: Instant, due: Instant, pause: Duration) -> Instant {
    if pause < SETTLING || due <= epoch {
        return due;
    }
    let tick = TICK.as_nanos();
    let since = due.duration_since(epoch).as_nanos();
    let ticks = since.div_ceil(tick);
    epoch + Duration::from_nanos((ticks * tick) as u64)
}

/// Runs `spec` forever: `initial_delay`, then one check every `period` (measured from the start of the
/// previous check; a slow check is followed by the next at once) — sooner for a readiness probe that
/// is not passing (see [`FIRST_PAUSE`] and [`SETTLING`]). Dropping the handle stops it.
pub fn spawn_probe(
    kind: ProbeKind,
    spec: ProbeSpec,
    target: Arc<ProbeTarget>,
    results: mpsc::Sender<ProbeResult>,
) -> AbortOnDropHandle<()> {
    AbortOnDropHandle::new(tokio::spawn(async move {
        tokio::time::sleep(spec.initial_delay).await;
        let mut eager = Some(FIRST_PAUSE);
        loop {
            let started = Instant::now();
            let result = check(&spec.check, &target, spec.timeout).await;
            let passed = result.is_ok();
            if results.send(ProbeResult { kind, result }).await.is_err() {
                return;
            }
            let pause = next_pause(kind, spec.period, passed, &mut eager);
            tokio::time::sleep_until(on_tick(started + pause, pause)).await;
        }
    }))
}

/// `1.5s`, `250ms`: short durations for human messages.
pub fn fmt_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_checks_wait_for_the_next_tick_and_starting_ones_do_not() {
        let epoch = Instant::now();
        let at = |ms: u64| epoch + Duration::from_millis(ms);
        let period = Duration::from_secs(10);
        assert_eq!(tick_after(epoch, at(10_001), period), at(10_100));
        assert_eq!(tick_after(epoch, at(10_100), period), at(10_100));
        assert_eq!(tick_after(epoch, at(10_199), period), at(10_200));
        let starting = Duration::from_millis(20);
        assert_eq!(tick_after(epoch, at(10_001), starting), at(10_001));
    }

    #[test]
    fn readiness_checks_often_until_it_passes_then_every_period_and_confirms_a_failure_within_a_second()
     {
        let period = Duration::from_secs(10);
        let mut eager = Some(FIRST_PAUSE);
        let ms = |d: Duration| d.as_millis();
        let starting: Vec<u128> = (0..10)
            .map(|_| ms(next_pause(ProbeKind::Readiness, period, false, &mut eager)))
            .collect();
        assert_eq!(starting, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(
            next_pause(ProbeKind::Readiness, period, true, &mut eager),
            period
        );
        assert_eq!(
            ms(next_pause(ProbeKind::Readiness, period, false, &mut eager)),
            1000
        );
        assert_eq!(
            next_pause(ProbeKind::Readiness, period, true, &mut eager),
            period
        );
        // A period shorter than a second is kept as it is.
        let short = Duration::from_millis(100);
        assert_eq!(
            next_pause(ProbeKind::Readiness, short, false, &mut None),
            short
        );
        // Liveness and startup failures restart: they keep their period.
        for kind in [ProbeKind::Liveness, ProbeKind::Startup] {
            let mut eager = Some(FIRST_PAUSE);
            assert_eq!(next_pause(kind, period, false, &mut eager), period);
        }
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn spec(check: ProbeCheck, success_threshold: u32, failure_threshold: u32) -> ProbeSpec {
        ProbeSpec {
            check,
            period: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
            initial_delay: Duration::ZERO,
            success_threshold,
            failure_threshold,
        }
    }

    #[test]
    fn verdict_needs_consecutive_results() {
        let mut tracker = ProbeTracker::new(&spec(ProbeCheck::Tcp, 2, 3));
        assert_eq!(tracker.record(true), None);
        assert_eq!(
            tracker.record(false),
            None,
            "a failure resets the success streak"
        );
        assert_eq!(tracker.record(true), None);
        assert_eq!(tracker.record(true), Some(true));
        assert_eq!(tracker.record(true), None, "no change, no verdict");
        assert_eq!(tracker.record(false), None);
        assert_eq!(tracker.record(false), None);
        assert_eq!(tracker.passing(), Some(true));
        assert_eq!(tracker.record(false), Some(false));
        assert_eq!(tracker.consecutive_failures(), 3);
        assert_eq!(tracker.record(true), None);
        assert_eq!(tracker.record(true), Some(true));
    }

    #[test]
    fn failing_from_unknown_is_a_change_and_zero_thresholds_mean_one() {
        let mut tracker = ProbeTracker::new(&spec(ProbeCheck::Tcp, 0, 0));
        assert_eq!(tracker.record(false), Some(false));
        assert_eq!(tracker.record(true), Some(true));
    }

    fn target(port: Option<u16>) -> ProbeTarget {
        ProbeTarget {
            addr: port.map(|port| SocketAddr::from(([127, 0, 0, 1], port))),
            forwarded: false,
            workdir: std::env::temp_dir(),
            env: BTreeMap::from([("PROBE_VALUE".into(), "7".into())]),
        }
    }

    /// Answers each connection with `status_line` once.
    async fn serve(status_line: &'static str) -> u16 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 {status_line}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    #[test]
    fn the_status_line_is_all_that_is_read() {
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_of(b"HTTP/1.0 301"), Some(301));
        assert_eq!(status_of(b"HTTP/1.1 2"), None, "cut short");
        assert_eq!(status_of(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status_of(b"HTTP/1.1 abc"), None);
    }

    #[tokio::test]
    async fn http_accepts_2xx_and_3xx_only() {
        let timeout = Duration::from_secs(5);
        let http = ProbeCheck::Http {
            path: "/healthz".into(),
        };
        for (status, ok) in [
            ("200 OK", true),
            ("302 Found", true),
            ("503 Service Unavailable", false),
        ] {
            let port = serve(status).await;
            let result = check(&http, &target(Some(port)), timeout).await;
            assert_eq!(result.is_ok(), ok, "{status}: {result:?}");
        }
    }

    #[tokio::test]
    async fn tcp_and_http_fail_on_a_closed_port() {
        let port = crate::pick_free_port().expect("port");
        assert!(
            check(
                &ProbeCheck::Tcp,
                &target(Some(port)),
                Duration::from_secs(5)
            )
            .await
            .is_err()
        );
        let http = ProbeCheck::Http { path: "/".into() };
        assert!(
            check(&http, &target(Some(port)), Duration::from_secs(5))
                .await
                .is_err()
        );
        assert!(
            check(&ProbeCheck::Tcp, &target(None), Duration::from_secs(5))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_forwarded_port_counts_only_when_the_connection_stays_open() {
        let timeout = Duration::from_secs(5);
        // A forwarder with nothing behind it: accepts, then closes at once.
        let closing = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let closing_port = closing.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = closing.accept().await {
                drop(socket);
            }
        });
        let mut forwarded = target(Some(closing_port));
        forwarded.forwarded = true;
        let err = check(&ProbeCheck::Tcp, &forwarded, timeout)
            .await
            .expect_err("closed at once");
        assert!(err.contains("nothing listens"), "{err}");
        // A server waiting for a request keeps it open.
        let port = serve("200 OK").await;
        let mut forwarded = target(Some(port));
        forwarded.forwarded = true;
        assert_eq!(check(&ProbeCheck::Tcp, &forwarded, timeout).await, Ok(()));
    }

    #[tokio::test]
    async fn exec_sees_the_instance_env_and_times_out() {
        let timeout = Duration::from_secs(10);
        let pass = ProbeCheck::Exec {
            cmd: "test \"$PROBE_VALUE\" = 7".into(),
        };
        assert_eq!(check(&pass, &target(None), timeout).await, Ok(()));
        let fail = ProbeCheck::Exec {
            cmd: "exit 3".into(),
        };
        let err = check(&fail, &target(None), timeout)
            .await
            .expect_err("exit 3 fails");
        assert!(err.contains("status 3"), "{err}");
        let slow = ProbeCheck::Exec {
            cmd: "sleep 1000".into(),
        };
        let err = check(&slow, &target(None), Duration::from_millis(100))
            .await
            .expect_err("times out");
        assert!(err.contains("timed out"), "{err}");
    }
}
