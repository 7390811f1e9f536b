//! A bounded load loop: a few client threads, each on one keep-alive connection, sending `GET path` until
//! told to stop (or a hard cap is hit). Every request is recorded with the *epoch* current when it was
//! sent, so a test can say "everything sent after the deploy returned was answered by v2".

use super::http::{Conn, Failure, version_of};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No test runs load longer than this, whatever happens.
const HARD_STOP: Duration = Duration::from_secs(300);
/// Per client thread.
const MAX_REQUESTS: u64 = 200_000;

#[derive(Debug, Clone)]
pub struct Record {
    pub epoch: u32,
    pub sent: Instant,
    /// The version that answered, or why there was no good answer.
    pub result: Result<String, Outcome>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Status(u16, String),
    Failed(Failure),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Status(code, body) => write!(f, "HTTP {code}: {}", body.trim()),
            Outcome::Failed(e) => write!(f, "{e}"),
        }
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    epoch: Arc<AtomicU32>,
    done: Arc<AtomicU64>,
    workers: Vec<JoinHandle<Vec<Record>>>,
}

impl Load {
    /// `clients` threads sending `GET path` to `addr` back to back.
    pub fn start(addr: SocketAddr, clients: usize, path: &str) -> Load {
        Load::run(addr, clients, path, None)
    }

    /// Like [`Load::start`], each client sending at most `rps_per_client` requests a second (a request
    /// slower than its slot just delays the next one: the rate is a ceiling, never a burst to catch up).
    pub fn paced(addr: SocketAddr, clients: usize, path: &str, rps_per_client: u32) -> Load {
        let interval = Duration::from_secs(1) / rps_per_client.max(1);
        Load::run(addr, clients, path, Some(interval))
    }

    fn run(addr: SocketAddr, clients: usize, path: &str, interval: Option<Duration>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let workers = (0..clients)
            .map(|_| {
                let (stop, epoch, done) = (stop.clone(), epoch.clone(), done.clone());
                let path = path.to_string();
                std::thread::spawn(move || {
                    let mut conn = Conn::new(addr);
                    let mut records = Vec::new();
                    let mut next = Instant::now();
                    while !stop.load(Ordering::SeqCst)
                        && (records.len() as u64) < MAX_REQUESTS
                        && started.elapsed() < HARD_STOP
                    {
                        if let Some(interval) = interval {
                            let now = Instant::now();
                            if next > now {
                                std::thread::sleep(next - now);
                            }
                            next = next.max(now) + interval;
                        }
                        let e = epoch.load(Ordering::SeqCst);
                        let sent = Instant::now();
                        let result = match conn.get(&path, &[]) {
                            Ok(r) if (200..300).contains(&r.status) => Ok(version_of(&r)),
                            Ok(r) => Err(Outcome::Status(r.status, r.body)),
                            Err(f) => Err(Outcome::Failed(f)),
                        };
                        let refused = matches!(result, Err(Outcome::Failed(Failure::Refused(_))));
                        records.push(Record {
                            epoch: e,
                            sent,
                            result,
                        });
                        done.fetch_add(1, Ordering::SeqCst);
                        if refused {
                            // Nothing listens: do not spin on connect.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    records
                })
            })
            .collect();
        Load {
            stop,
            epoch,
            done,
            workers,
        }
    }

    /// Requests finished so far.
    pub fn total(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Requests sent from now on belong to the next epoch; returns it.
    pub fn mark(&self) -> u32 {
        self.epoch.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until `n` more requests have finished.
    pub fn wait_for_more(&self, n: u64) {
        let target = self.total() + n;
        super::wait_until(
            Duration::from_secs(120),
            &format!("{n} more requests through the load loop"),
            || self.total() >= target,
        );
    }

    pub fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut records = Vec::new();
        for w in std::mem::take(&mut self.workers) {
            records.extend(w.join().expect("load thread panicked"));
        }
        records.sort_by_key(|r| r.sent);
        Tally { records }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub struct Tally {
    pub records: Vec<Record>,
}

impl Tally {
    /// Answers per version, from requests sent in `epochs`.
    pub fn versions(&self, epochs: impl std::ops::RangeBounds<u32>) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in self.records.iter().filter(|r| epochs.contains(&r.epoch)) {
            if let Ok(v) = &r.result {
                *out.entry(v.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Once the command returned (epoch 1 on), only `version` answered.
    #[track_caller]
    pub fn assert_only_after(&self, version: &str) {
        let after = self.versions(1..);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            [version],
            "{}",
            self.summary()
        );
    }

    /// A switch under load: no request failed, `from` answered while the command ran, `to` answered,
    /// and only `to` once it returned. (`to` is not required *while* the command ran: on a loaded
    /// machine no client may be scheduled between the switch and the command's return.)
    #[track_caller]
    pub fn assert_switched(&self, from: &str, to: &str) {
        eprintln!("{}", self.summary());
        self.assert_no_failures();
        assert!(
            self.versions(0..=0).contains_key(from) && self.versions(..).contains_key(to),
            "{}",
            self.summary()
        );
        self.assert_only_after(to);
    }

    pub fn failures(&self) -> Vec<&Record> {
        self.records.iter().filter(|r| r.result.is_err()).collect()
    }

    /// Asserts that every request got a 2xx answer, showing the first failures otherwise.
    pub fn assert_no_failures(&self) {
        let failed = self.failures();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed; first ones: {:?}",
            failed.len(),
            self.records.len(),
            failed
                .iter()
                .take(5)
                .map(|r| format!("epoch {}: {}", r.epoch, r.result.as_ref().unwrap_err()))
                .collect::<Vec<_>>()
        );
    }

    /// Failed requests by kind: `HTTP 500`, `HTTP 502`, `connect failed`, `idle connection closed`,
    /// `broken exchange`.
    pub fn failures_by_kind(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in self.records.iter() {
            let kind = match &r.result {
                Ok(_) => continue,
                Err(Outcome::Status(code, _)) => format!("HTTP {code}"),
                Err(Outcome::Failed(Failure::Refused(_))) => "connect failed".into(),
                Err(Outcome::Failed(Failure::ClosedIdle(_))) => "idle connection closed".into(),
                Err(Outcome::Failed(Failure::Broken(_))) => "broken exchange".into(),
            };
            *out.entry(kind).or_insert(0) += 1;
        }
        out
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests, answers by version {:?}, {} failed",
            self.records.len(),
            self.versions(..),
            self.failures().len()
        )
    }
}
