//! Mirroring (shadow traffic): a copy of some requests goes to the mirror release, whose answer is compared
//! with the one the client actually got, and then thrown away.
//!
//! The client's request never waits for the shadow: the copy is sent by a spawned task, and the primary's
//! side of the comparison is observed as its response streams to the client (a [`PrimaryTap`] in the
//! response body hashes the chunks going by; nothing is buffered). Whichever side finishes second settles
//! the [`Pair`] into the app's [`ShadowReport`]. Only body-less GET/HEAD/OPTIONS requests are mirrored, so
//! the copy cannot have side effects the client did not ask for. Shadow requests count in their backend's
//! `in_flight` (draining waits for them) but never in [`ReleaseMetrics`](crate::ReleaseMetrics).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tracing::debug;

use crate::backend::{Backend, Lease};
use crate::pool;
use crate::release_metrics::micros_since;
use crate::request_body::{RequestBody, copy_of};
use crate::shadow_report::ShadowReport;
use crate::shared::Shared;

/// The most of a shadow's body that is read; a longer body is cut off (and not compared).
const MAX_SHADOW_BODY: u64 = 1 << 20;

/// Bodies are compared only when both are at most this long.
const MAX_COMPARED_BODY: u64 = 64 << 10;

/// A streaming FNV-1a digest of a body, abandoned past [`MAX_COMPARED_BODY`].
#[derive(Debug, Clone, Copy)]
struct BodyDigest {
    hash: u64,
    len: u64,
}

impl BodyDigest {
    fn new() -> BodyDigest {
        BodyDigest {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.len = self.len.saturating_add(bytes.len() as u64);
        if self.len > MAX_COMPARED_BODY {
            return;
        }
        for &b in bytes {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// `(len, hash)`, or `None` when the body was too long to compare.
    fn finish(&self) -> Option<(u64, u64)> {
        (self.len <= MAX_COMPARED_BODY).then_some((self.len, self.hash))
    }
}

/// One side's answer: status, time to the response head since the request arrived, and the body's digest
/// when it was seen completely and is short enough.
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    micros: u64,
    body: Option<(u64, u64)>,
}

/// Each side is `None` until it settles, then `Some(None)` when it has no answer to compare.
#[derive(Debug, Default)]
struct Sides {
    primary: Option<Option<Answer>>,
    shadow: Option<Option<Answer>>,
}

/// The shared slot of one mirrored request.
#[derive(Debug)]
pub(crate) struct Pair {
    report: Arc<ShadowReport>,
    sides: Mutex<Sides>,
}

impl Pair {
    pub(crate) fn new(report: Arc<ShadowReport>) -> Arc<Pair> {
        Arc::new(Pair {
            report,
            sides: Mutex::new(Sides::default()),
        })
    }

    fn settle(&self, primary: bool, answer: Option<Answer>) {
        if !primary && answer.is_none() {
            self.report.count_shadow_failure();
        }
        let both = {
            let mut sides = self.sides.lock().unwrap_or_else(|e| e.into_inner());
            if primary {
                sides.primary = Some(answer);
            } else {
                sides.shadow = Some(answer);
            }
            match (sides.primary, sides.shadow) {
                (Some(Some(p)), Some(Some(s))) => Some((p, s)),
                _ => None,
            }
        };
        if let Some((p, s)) = both {
            let diff = i64::try_from(s.micros).unwrap_or(i64::MAX)
                - i64::try_from(p.micros).unwrap_or(i64::MAX);
            let bodies = match (p.body, s.body) {
                (Some(a), Some(b)) => Some(a == b),
                _ => None,
            };
            self.report
                .count_pair(p.status / 100 == s.status / 100, diff, bodies);
        }
    }
}

/// The primary's side of a mirrored request: knows its head once the response is chosen, digests the body
/// as it streams to the client, and settles when the body ends or is dropped (unsettled on drop: the
/// client went away before an answer, so there is nothing to compare).
#[derive(Debug)]
pub(crate) struct PrimaryTap {
    pair: Arc<Pair>,
    head: Option<(u16, u64)>,
    digest: BodyDigest,
    settled: bool,
}

impl PrimaryTap {
    pub(crate) fn new(pair: Arc<Pair>) -> PrimaryTap {
        PrimaryTap {
            pair,
            head: None,
            digest: BodyDigest::new(),
            settled: false,
        }
    }

    pub(crate) fn head(&mut self, status: StatusCode, micros: u64) {
        self.head = Some((status.as_u16(), micros));
    }

    pub(crate) fn observe(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// Settles once: `complete` when the body was seen to its end.
    pub(crate) fn end(&mut self, complete: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let answer = self.head.map(|(status, micros)| Answer {
            status,
            micros,
            body: if complete { self.digest.finish() } else { None },
        });
        self.pair.settle(true, answer);
    }
}

impl Drop for PrimaryTap {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// Sends `request` (a body-less copy) to the shadow `lease`'s backend, reads its answer, and settles the
/// pair. The lease (the backend's `in_flight`) is held until the shadow's body has been read.
pub(crate) async fn run(
    shared: Arc<Shared>,
    lease: Lease,
    request: Request<RequestBody>,
    arrived: Instant,
    pair: Arc<Pair>,
) {
    let backend = lease.backend();
    let exchange = exchange(&shared, backend, request, arrived);
    let answer = match tokio::time::timeout(shared.options.response_timeout, exchange).await {
        Ok(answer) => answer,
        Err(_) => {
            debug!(instance = %backend.id, "shadow request timed out");
            None
        }
    };
    drop(lease);
    pair.settle(false, answer);
}

async fn exchange(
    shared: &Shared,
    backend: &Arc<Backend>,
    request: Request<RequestBody>,
    arrived: Instant,
) -> Option<Answer> {
    let options = &shared.options;
    let connect = || pool::connect(&shared.client, backend.addr, options.connect_timeout);
    let pooled = backend
        .pool
        .checkout(Instant::now(), options.idle_pool_timeout);
    let (sender, response) = match pooled {
        Some(reused) => {
            let copy = copy_of(&request);
            let mut sender = reused;
            match sender.try_send_request(request).await {
                Ok(response) => (sender, response),
                // The pooled connection was closed under us; the copy is idempotent, so once more anew.
                Err(_) => {
                    let mut sender = connect().await.ok()?;
                    let response = sender.send_request(copy).await.ok()?;
                    (sender, response)
                }
            }
        }
        None => {
            let mut sender = connect().await.ok()?;
            let response = sender.send_request(request).await.ok()?;
            (sender, response)
        }
    };
    let status = response.status().as_u16();
    let micros = micros_since(arrived);
    let mut body = response.into_body();
    let mut digest = BodyDigest::new();
    let cut = |body| {
        Some(Answer {
            status,
            micros,
            body,
        })
    };
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    digest.update(data);
                    if digest.len > MAX_SHADOW_BODY {
                        // Dropping the body closes the connection rather than reading on.
                        return cut(None);
                    }
                }
            }
            Some(Err(error)) => {
                debug!(instance = %backend.id, %error, "shadow response body failed");
                return cut(None);
            }
        }
    }
    backend.pool.checkin(sender, Instant::now());
    cut(digest.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_does_not_depend_on_chunking() {
        let mut whole = BodyDigest::new();
        whole.update(b"hello world");
        let mut parts = BodyDigest::new();
        parts.update(b"hello");
        parts.update(b"");
        parts.update(b" world");
        assert_eq!(whole.finish(), parts.finish());
        let mut other = BodyDigest::new();
        other.update(b"hello there");
        assert_ne!(whole.finish(), other.finish());
        let mut long = BodyDigest::new();
        long.update(&vec![0u8; MAX_COMPARED_BODY as usize + 1]);
        assert_eq!(long.finish(), None);
    }

    fn answer(status: u16, micros: u64, body: &[u8]) -> Answer {
        let mut d = BodyDigest::new();
        d.update(body);
        Answer {
            status,
            micros,
            body: d.finish(),
        }
    }

    #[test]
    fn pair_compares_once_both_sides_settle() {
        let report = ShadowReport::new();
        let pair = Pair::new(report.clone());
        pair.settle(false, Some(answer(500, 900, b"b")));
        assert_eq!(report.snapshot().compared, 0);
        pair.settle(true, Some(answer(200, 400, b"a")));
        let s = report.snapshot();
        assert_eq!((s.compared, s.status_class_mismatches), (1, 1));
        assert_eq!((s.body_compared, s.body_mismatches), (1, 1));
        assert_eq!(s.latency_diff_mean_micros, 500);
    }

    #[test]
    fn dropped_tap_without_head_compares_nothing_and_failures_count() {
        let report = ShadowReport::new();
        let pair = Pair::new(report.clone());
        drop(PrimaryTap::new(pair.clone()));
        pair.settle(false, None);
        let s = report.snapshot();
        assert_eq!((s.compared, s.shadow_failures), (0, 1));

        // A head but a body cut short: statuses compared, bodies not.
        let pair = Pair::new(report.clone());
        let mut tap = PrimaryTap::new(pair.clone());
        tap.head(StatusCode::OK, 10);
        tap.observe(b"partial");
        drop(tap);
        pair.settle(false, Some(answer(200, 20, b"partial")));
        let s = report.snapshot();
        assert_eq!((s.compared, s.body_compared), (1, 0));
    }
}
