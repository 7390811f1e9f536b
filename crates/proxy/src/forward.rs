//! The per-request path: route, pick, rewrite headers, forward over the backend's keep-alive pool, stream
//! the response back.
//!
//! The route table guard is held only for the synchronous lookup-and-count step (see `route_handle`), and
//! nothing here takes a lock. Whether a request that got no response head is tried again is decided by
//! the rule in `retry`, which the fast path follows too; hyper consumes a request as it sends it, so a copy
//! is kept only for an attempt the rule could replay (a body-less idempotent request on a pooled
//! connection, the first time).
//!
//! Every request that got a target is counted in that target's [`ReleaseMetrics`](crate::ReleaseMetrics) when its response head
//! is handed to the client (status, and time since the request arrived; proxy error pages as failures).
//! A mirrored request also spawns its shadow copy here, before the primary is sent.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{
    CONNECTION, CONTENT_TYPE, HOST, HeaderName, HeaderValue, SET_COOKIE, STRICT_TRANSPORT_SECURITY,
};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::backend::Backend;
use crate::before_routing;
use crate::body::ResponseBody;
use crate::flag_variants::SLIPWAY_FLAGS;
use crate::headers::{self, X_SLIPWAY_RELEASE};
use crate::held::{Counted, Waited};
use crate::pages::page;
use crate::pool::{self, Sender};
use crate::release_metrics::micros_since;
use crate::request_body::TooLarge;
use crate::request_body::{RequestBody, copy_of};
use crate::retry::{self, Attempt, Decision, Replayable};
use crate::route_handle::RouteHandle;
use crate::route_table::{Choice, Hold, RequestView, Target, host_without_port, parse_release};
use crate::shadow::{self, Pair, PrimaryTap};
use crate::shared::ConnState;
use crate::tunnel::copy_until_idle;

/// Marks the copies sent to a mirror release, so an instance can tell shadow traffic apart.
pub(crate) static X_SLIPWAY_SHADOW: HeaderName = HeaderName::from_static("x-slipway-shadow");

/// The hyper service function.
pub(crate) async fn serve_request(
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    crate::busy_poll::traffic_seen();
    let response = forward(&conn, req).await;
    crate::busy_poll::traffic_seen();
    Ok(response)
}

async fn forward(conn: &ConnState, mut req: Request<Incoming>) -> Response<ResponseBody> {
    // One clock read serves the latency metrics, the deadline and the pool's idle check.
    let arrived = tokio::time::Instant::now();
    let shared = &*conn.shared;
    let host_value = match req.headers().get(HOST) {
        Some(host) => Some(host.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let host = host_value
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .unwrap_or("");
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if let Some(response) = before_routing::answer(
        &shared.challenges,
        &shared.routes,
        conn.tls,
        host_value.as_ref(),
        path_and_query,
    ) {
        return response;
    }
    let preview = match req.headers().get(&X_SLIPWAY_RELEASE) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(parse_release) {
            Some(release) => Some(release),
            None => {
                return page(
                    StatusCode::NOT_FOUND,
                    "X-Slipway-Release must name a release like v7",
                );
            }
        },
    };

    let is_upgrade = req.version() <= Version::HTTP_11 && headers::wants_upgrade(req.headers());
    let body_less = req.body().is_end_stream() && !is_upgrade;

    let held = &shared.routes.held;
    let choice = loop {
        let generation = held.generation();
        // Hold the table guard only until the chosen backend's in_flight is counted.
        let choice = {
            let table = shared.routes.inner.load();
            table.choose(&RequestView {
                host,
                path: req.uri().path(),
                preview,
                headers: req.headers(),
                method: req.method(),
                body_less,
                client_ip: &conn.client_ip,
            })
        };
        let Choice::Hold(hold) = choice else {
            break choice;
        };
        // Held until a table lets the app serve (an instance started, maintenance ended) or the hold's
        // time is up; measured from arrival, so routing again does not extend it.
        let deadline = arrived + hold.for_at_most;
        let _counted = hold.maintenance.as_ref().map(|m| Counted::enter(&m.held));
        if held.wait(generation, deadline).await == Waited::TimedOut {
            return held_too_long(&hold);
        }
    };
    let mut target = match choice {
        Choice::Chosen(target) => target,
        Choice::NoApp => {
            return page(
                StatusCode::NOT_FOUND,
                &format!(
                    "no app is routed for host {host:?} and path {:?}",
                    req.uri().path()
                ),
            );
        }
        Choice::UnknownRelease { app, release } => {
            return page(
                StatusCode::NOT_FOUND,
                &format!("app {app} has no release v{release}"),
            );
        }
        Choice::NotReady { app } => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("no ready instance of app {app}"),
            );
        }
        Choice::Idle { app } => return page(StatusCode::OK, &idle_message(&app)),
        Choice::Hold(hold) => return held_too_long(&hold),
    };

    if target.injected {
        // `slipway drill`: failed on purpose, before anything reaches an instance.
        target
            .metrics
            .record_injected(503, micros_since(arrived.into_std()));
        return page(StatusCode::SERVICE_UNAVAILABLE, &injected_message(&target));
    }
    if !conn.tls {
        target.hsts_max_age = None;
    }
    let client_upgrade = if is_upgrade {
        Some(hyper::upgrade::on(&mut req))
    } else {
        None
    };
    let (mut parts, body) = req.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, is_upgrade);
    // Room for the forwarding headers, so the map grows once.
    parts.headers.reserve(5);
    headers::add_forwarded(
        &mut parts.headers,
        &conn.client_ip,
        host_value.as_ref(),
        conn.tls,
    );
    // With neither a Host header nor an absolute URI, the instance's address is the only host there is.
    let host_is_instance = host_value.is_none() && !parts.headers.contains_key(HOST);
    if !parts.headers.contains_key(HOST) {
        // HTTP/2 carries the host in :authority; instances speak HTTP/1.1 and expect Host.
        let host = host_value.unwrap_or_else(|| authority_value(target.lease.backend()));
        parts.headers.insert(HOST, host);
    }
    let path_and_query = std::mem::take(&mut parts.uri)
        .into_parts()
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut attempt = Attempt::first(Replayable {
        body_less,
        idempotent: is_idempotent(&parts.method),
    });

    let max_body = target.max_body.unwrap_or(u64::MAX);
    if body.size_hint().lower() > max_body {
        drop(target);
        return page(StatusCode::PAYLOAD_TOO_LARGE, &too_large(max_body));
    }
    let mut request = Request::new(RequestBody::Incoming(body, max_body));
    *request.method_mut() = parts.method;
    // Origin form: the connection already says which instance this is.
    *request.uri_mut() = Uri::from(path_and_query);
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = parts.headers;

    // The shadow copy leaves first, so it sees the request at about the same time as the primary.
    let mut tap = target.shadow.take().map(|plan| {
        let pair = Pair::new(plan.report.clone());
        plan.report.count_mirrored();
        let mut copy = copy_of(&request);
        copy.headers_mut()
            .insert(X_SLIPWAY_SHADOW.clone(), HeaderValue::from_static("1"));
        if host_is_instance {
            copy.headers_mut()
                .insert(HOST, authority_value(plan.lease.backend()));
        }
        tokio::spawn(shadow::run(
            Arc::clone(&conn.shared),
            plan.lease,
            copy,
            arrived.into_std(),
            pair.clone(),
        ));
        Box::new(PrimaryTap::new(pair))
    });

    let options = &shared.options;
    let now = arrived;
    let deadline = now + options.response_timeout;
    // Taken by each send; given back by hyper when nothing was sent, or replaced by the copy kept for a
    // replay. `None` only after an attempt the rule never retries.
    let mut request = Some(request);
    loop {
        let backend = target.lease.backend();
        let (failure, what) = 'attempt: {
            let connect = || pool::connect(&shared.client, backend.addr, options.connect_timeout);
            let connection = backend
                .pool
                .connection_for(&mut attempt, now, options, connect);
            let mut sender = match connection.await {
                Ok(sender) => sender,
                Err(failed) => break 'attempt failed,
            };
            let Some(sending) = request.take() else {
                break 'attempt (
                    retry::Failure::BadResponse,
                    "kept no copy of the request to send again".to_owned(),
                );
            };
            // hyper consumes what it sends: a copy, only where the rule could replay it.
            let copy = attempt.may_replay().then(|| copy_of(&sending));
            match tokio::time::timeout_at(deadline, sender.try_send_request(sending)).await {
                Err(_) => (retry::Failure::TimedOut, String::new()),
                Ok(Ok(mut response)) => {
                    let micros = micros_since(arrived.into_std());
                    let status = response.status().as_u16();
                    target.metrics.record(status, micros);
                    // The app's note of the flag variants it served: counted, never sent on.
                    if let Some(flags) = response.headers_mut().remove(&SLIPWAY_FLAGS) {
                        let variants = &shared.routes.flag_variants;
                        variants.record(&target.app, flags.as_bytes(), status, micros);
                    }
                    if let Some(tap) = &mut tap {
                        tap.head(response.status(), micros);
                    }
                    let idle = options.stream_idle_timeout;
                    return respond(target, response, client_upgrade, sender, tap, idle);
                }
                Ok(Err(mut error)) => {
                    let unsent = error.take_message();
                    let sent = unsent.is_none();
                    request = unsent.or(copy);
                    let error = error.into_error();
                    if error.is_user() && is_too_large(&error) {
                        drop((target, tap));
                        return page(StatusCode::PAYLOAD_TOO_LARGE, &too_large(max_body));
                    }
                    if error.is_user() {
                        // The client's body failed (a malformed chunked body, which the gate cut
                        // short, or a client gone): the instance is not at fault, and got no whole
                        // request. As on the fast path, a 400 not counted against the release.
                        drop((target, tap));
                        debug!(%error, "the request body could not be read");
                        return page(StatusCode::BAD_REQUEST, "malformed request body");
                    }
                    let failure = if error.is_parse() {
                        retry::Failure::BadResponse
                    } else {
                        retry::Failure::Closed { sent }
                    };
                    (failure, failure_cause(&error))
                }
            }
        };
        let decision = attempt.decide(failure);
        match decision {
            // (Moving fails when the release has no other ready instance: then 502.)
            Decision::OtherInstance if move_to_other_instance(&shared.routes, &mut target) => {
                if host_is_instance {
                    let host = authority_value(target.lease.backend());
                    if let Some(request) = &mut request {
                        request.headers_mut().insert(HOST, host);
                    }
                }
            }
            Decision::SameInstance { fresh } if request.is_some() => {
                debug!(instance = %target.lease.backend().id, %what, ?failure, fresh,
                    "no response on a pooled connection; trying again");
            }
            Decision::Answer(StatusCode::GATEWAY_TIMEOUT) => {
                let page = gateway_timeout(&target, options.response_timeout);
                return failed(&target, arrived, tap, page);
            }
            Decision::OtherInstance | Decision::SameInstance { .. } | Decision::Answer(_) => {
                let page = bad_gateway(&target, what);
                return failed(&target, arrived, tap, page);
            }
        }
        attempt = attempt.next(failure, decision);
    }
}

/// Counts a proxy error page after a pick as a failure of the target's release (and the primary side of a
/// mirrored request).
fn failed(
    target: &Target,
    arrived: tokio::time::Instant,
    tap: Option<Box<PrimaryTap>>,
    page: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let micros = micros_since(arrived.into_std());
    target
        .metrics
        .record_failure(page.status().as_u16(), micros);
    if let Some(mut tap) = tap {
        tap.head(page.status(), micros);
        tap.end(false);
    }
    page
}

/// Moves `target` to another instance of its release after a failed connect (see `retry`); false when
/// there is none.
pub(crate) fn move_to_other_instance(routes: &RouteHandle, target: &mut Target) -> bool {
    let backend = target.lease.backend();
    let next =
        routes
            .inner
            .load()
            .choose_retry(&target.app, target.release, target.preview, backend);
    let Some(next) = next else {
        return false;
    };
    debug!(app = %target.app, instance = %backend.id, retry = %next.lease.backend().id,
        "instance refused the connection; retrying on another instance");
    carry_over(target, next);
    true
}

/// Moves `target` to the retry pick `next`, keeping the first pick's metrics (a route rule's) and sticky
/// cookie when it stays in the same release. The first pick's lease is released.
pub(crate) fn carry_over(target: &mut Target, next: Target) {
    let first = std::mem::replace(target, next);
    if target.release == first.release {
        let Target {
            metrics,
            set_cookie,
            ..
        } = first;
        target.metrics = metrics;
        target.set_cookie = set_cookie;
    }
}

/// Methods whose repetition has no extra effect (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

pub(crate) fn authority_value(backend: &Backend) -> HeaderValue {
    // An authority is always a valid header value.
    HeaderValue::from_str(backend.authority.as_str())
        .unwrap_or_else(|_| HeaderValue::from_static("localhost"))
}

fn respond(
    target: Target,
    mut response: Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
    connection: Sender,
    tap: Option<Box<PrimaryTap>>,
    idle: Duration,
) -> Response<ResponseBody> {
    let Target {
        mut lease,
        set_cookie,
        hsts_max_age,
        ..
    } = target;
    if let Some(cookie) = set_cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    if let Some(max_age) = hsts_max_age {
        response
            .headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, before_routing::hsts(max_age));
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // The connection now belongs to the tunnel (or to nobody): never back to the pool.
        drop(connection);
        let Some(client_upgrade) = client_upgrade else {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::empty());
        };
        let instance_upgrade = hyper::upgrade::on(&mut response);
        lease.become_stream();
        tokio::spawn(tunnel(client_upgrade, instance_upgrade, lease, idle));
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, ResponseBody::empty());
    }
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    if client_upgrade.is_some() {
        // The instance did not switch protocols: the client may already be sending what it meant for
        // the new protocol, which must never be read as HTTP requests. Close after this answer.
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"))
    {
        lease.become_stream();
    }
    Response::from_parts(parts, ResponseBody::upstream(body, lease, connection, tap))
}

/// Copies bytes both ways between an upgraded client connection and the instance, counted as a stream until
/// either side closes.
async fn tunnel(
    client: OnUpgrade,
    instance: OnUpgrade,
    lease: crate::backend::Lease,
    idle: Duration,
) {
    match tokio::try_join!(client, instance) {
        Ok((client, instance)) => {
            let mut client = TokioIo::new(client);
            let mut instance = TokioIo::new(instance);
            if let Err(error) = copy_until_idle(&mut client, &mut instance, idle).await {
                debug!(instance = %lease.backend().id, %error, "upgraded connection ended with an error");
            }
        }
        Err(error) => debug!(instance = %lease.backend().id, %error, "connection upgrade failed"),
    }
    drop(lease);
}

fn describe(target: &Target) -> String {
    let backend = target.lease.backend();
    format!(
        "app {} release v{} instance {} ({})",
        target.app, target.release, backend.id, backend.addr
    )
}

/// "failed before sending a response: <innermost cause>".
fn failure_cause(error: &hyper::Error) -> String {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    format!("failed before sending a response: {cause}")
}

fn bad_gateway(target: &Target, what: String) -> Response<ResponseBody> {
    page(StatusCode::BAD_GATEWAY, &bad_gateway_message(target, &what))
}

fn gateway_timeout(target: &Target, timeout: Duration) -> Response<ResponseBody> {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        &gateway_timeout_message(target, timeout),
    )
}

/// The 502 page's message: which instance, and what went wrong.
pub(crate) fn bad_gateway_message(target: &Target, what: &str) -> String {
    debug!(app = %target.app, instance = %target.lease.backend().id, %what, "bad gateway");
    format!("{} {what}", describe(target))
}

/// The 504 page's message.
pub(crate) fn gateway_timeout_message(target: &Target, timeout: Duration) -> String {
    format!(
        "{} sent no response headers within {timeout:?}",
        describe(target)
    )
}

/// The 413 page's words (the fast path's too).
pub(crate) fn too_large(max: u64) -> String {
    format!("the request body is larger than this app accepts ({max} bytes)")
}

fn is_too_large(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if inner.is::<TooLarge>() {
            return true;
        }
        source = inner.source();
    }
    false
}

/// What a health check of an app scaled to zero is told (200: the app is fine, only asleep).
/// An injected failure's page text (`slipway drill`).
pub(crate) fn injected_message(target: &Target) -> String {
    format!(
        "{} (app {}, release v{})",
        crate::route_table::InjectedFault::MESSAGE,
        target.app,
        target.release
    )
}

pub(crate) fn idle_message(app: &str) -> String {
    format!("app {app} is scaled to zero; the next request starts it")
}

/// The answer to a request held for its whole time: 503 with `Retry-After`, and the maintenance page
/// when the app has one.
fn held_too_long(hold: &Hold) -> Response<ResponseBody> {
    let (mut response, retry_after) = match &hold.maintenance {
        Some(m) => {
            let response = match &m.page {
                Some(html) => {
                    let mut response =
                        Response::new(ResponseBody::full(bytes::Bytes::from(html.to_string())));
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    response.headers_mut().insert(
                        http::header::CACHE_CONTROL,
                        HeaderValue::from_static("no-store"),
                    );
                    response
                }
                None => page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("app {} is down for maintenance", hold.app),
                ),
            };
            (response, m.retry_after)
        }
        None => (
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "app {} was scaled to zero and no instance was ready within {}s",
                    hold.app,
                    hold.for_at_most.as_secs()
                ),
            ),
            5,
        ),
    };
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}
