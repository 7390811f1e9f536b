//! The demo app's endpoints. Each one exists to exercise one part of slipway: `/` carries the version
//! and the injected errors and latency (what canary analysis and zero-downtime checks watch), `/ready`
//! and `/health` feed the probes, `/slow`, `/sse` and `/ws` are in-flight work that draining must not
//! cut, and `/stats` lets tests see what the app is doing without guessing.

use crate::flag::{FlagClient, SLIPWAY_FLAGS};
use crate::knobs::{Knobs, fails};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// Shared state of the running app.
pub struct App {
    knobs: Knobs,
    /// Requests to `/` so far: drives the error rate and the crash knob.
    root_requests: AtomicU64,
    /// Requests being answered (not counting `/stats` itself).
    inflight: AtomicU64,
    /// Upgraded (`/ws`) connections still open; shutdown waits for them too.
    open_streams: watch::Sender<u64>,
    /// When the app started serving: `DEMO_ERRORS_AFTER_MS` counts from here.
    started: std::time::Instant,
    /// `DEMO_FLAG`: the flag evaluated for each `/` request.
    flag: Option<FlagClient>,
    /// Requests to `/` served the variant `on` so far: drives `DEMO_FLAG_ERROR_RATE`.
    on_requests: AtomicU64,
}

impl App {
    pub fn new(knobs: Knobs) -> Result<App, String> {
        let flag = knobs.flag.clone().map(FlagClient::new).transpose()?;
        Ok(App {
            knobs,
            root_requests: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            open_streams: watch::Sender::new(0),
            started: std::time::Instant::now(),
            flag,
            on_requests: AtomicU64::new(0),
        })
    }

    /// Resolves once every upgraded connection has ended.
    pub async fn streams_closed(&self) {
        let mut open = self.open_streams.subscribe();
        // An error means the sender is gone, which cannot happen while `self` is alive.
        let _ = open.wait_for(|n| *n == 0).await;
    }

    pub fn open_streams(&self) -> u64 {
        *self.open_streams.borrow()
    }
}

/// Counts one unit of work for as long as it lives.
struct Guard<F: Fn()>(F);

impl<F: Fn()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn inflight_guard(app: &Arc<App>) -> Guard<impl Fn() + use<>> {
    app.inflight.fetch_add(1, Ordering::SeqCst);
    let app = app.clone();
    Guard(move || {
        app.inflight.fetch_sub(1, Ordering::SeqCst);
    })
}

pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    if req.uri().path() == "/stats" {
        return Ok(stats(&app));
    }
    let guard = inflight_guard(&app);
    let version = app.knobs.version.clone();
    let response = match req.uri().path() {
        "/" => root(&app, &req).await,
        "/ready" if app.knobs.ready => text(StatusCode::OK, "ok\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/health" => text(StatusCode::OK, "ok\n"),
        "/slow" => {
            let ms = query_u64(&req, "ms").unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slow {version} {ms}\n"))
        }
        "/sse" => sse(&app, &req, guard),
        "/ws" => websocket_echo(&app, req),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(with_version(response, &version))
}

async fn root(app: &App, req: &Request<Incoming>) -> Response<ResponseBody> {
    let n = app.root_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let Some(flag) = &app.flag else {
        return root_answer(app, n).await;
    };
    let user = req
        .headers()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| n.to_string(), str::to_owned);
    let variant = flag.variant(&user).await;
    let on = variant.as_deref() == Some("on");
    let mut response = if on
        && fails(
            app.on_requests.fetch_add(1, Ordering::SeqCst) + 1,
            flag.on_error_rate_ppm(),
        ) {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} {} (flag {} on)\n",
                crate::INJECTED_ERROR,
                app.knobs.version,
                flag.key()
            ),
        )
    } else {
        root_answer(app, n).await
    };
    if let Some(value) =
        variant.and_then(|v| HeaderValue::from_str(&format!("{}={v}", flag.key())).ok())
    {
        response.headers_mut().insert(SLIPWAY_FLAGS, value);
    }
    response
}

/// `/` without a flag: the version, with the injected latency, errors and crash.
async fn root_answer(app: &App, n: u64) -> Response<ResponseBody> {
    if app.knobs.crash_after.is_some_and(|limit| n > limit) {
        println!(
            "demo {} crashing after {} requests",
            app.knobs.version,
            n - 1
        );
        std::process::exit(1);
    }
    if !app.knobs.latency.is_zero() {
        tokio::time::sleep(app.knobs.latency).await;
    }
    if let Some(path) = &app.knobs.broken_by
        && path.exists()
    {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} {}: the schema it expects is gone ({} exists)\n",
                crate::INJECTED_ERROR,
                app.knobs.version,
                path.display()
            ),
        );
    }
    if app.knobs.fails_request(n) && app.started.elapsed() >= app.knobs.errors_after {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{} {}\n", crate::INJECTED_ERROR, app.knobs.version),
        );
    }
    text(
        StatusCode::OK,
        format!("hello from {}\n", app.knobs.version),
    )
}

fn stats(app: &App) -> Response<ResponseBody> {
    let body = format!(
        "version {}\nroot_requests {}\ninflight {}\nstreams {}\n",
        app.knobs.version,
        app.root_requests.load(Ordering::SeqCst),
        app.inflight.load(Ordering::SeqCst),
        app.open_streams(),
    );
    with_version(text(StatusCode::OK, body), &app.knobs.version)
}

/// `n` events (default 10) `data: <version> <i>` for i in 1..=n, `interval_ms` apart (default 100),
/// each sent as its own chunk.
fn sse(
    app: &App,
    req: &Request<Incoming>,
    guard: Guard<impl Fn() + Send + 'static>,
) -> Response<ResponseBody> {
    let n = query_u64(req, "n").unwrap_or(10);
    let interval = Duration::from_millis(query_u64(req, "interval_ms").unwrap_or(100));
    let version = app.knobs.version.clone();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let _guard = guard; // the request is in flight until the last event is handed over
        for i in 1..=n {
            if tx
                .send(Bytes::from(format!("data: {version} {i}\n\n")))
                .await
                .is_err()
            {
                return; // the client went away
            }
            if i < n {
                tokio::time::sleep(interval).await;
            }
        }
    });
    let mut response = Response::new(ChannelBody(rx).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

/// Answers `Connection: Upgrade` (whatever the protocol) with 101, then echoes bytes until EOF.
fn websocket_echo(app: &Arc<App>, mut req: Request<Incoming>) -> Response<ResponseBody> {
    let wants_upgrade = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let Some(protocol) = req
        .headers()
        .get(UPGRADE)
        .cloned()
        .filter(|_| wants_upgrade)
    else {
        return text(
            StatusCode::UPGRADE_REQUIRED,
            "send Connection: Upgrade and an Upgrade header\n",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    app.open_streams.send_modify(|n| *n += 1);
    let stream_app = app.clone();
    tokio::spawn(async move {
        let _closed = Guard(move || stream_app.open_streams.send_modify(|n| *n -= 1));
        match on_upgrade.await {
            Ok(upgraded) => {
                let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut writer).await;
            }
            Err(e) => eprintln!("demo: upgrade failed: {e}"),
        }
    });
    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    response.headers_mut().insert(UPGRADE, protocol);
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn with_version(mut response: Response<ResponseBody>, version: &str) -> Response<ResponseBody> {
    if let Ok(value) = HeaderValue::from_str(version) {
        response.headers_mut().insert("x-demo-version", value);
    }
    response
}

fn query_u64(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// A response body fed chunk by chunk from a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}
