//! The per-request path: route, pick, rewrite headers, forward over the backend's keep-alive pool, stream
//! the response back.
//!
//! The route table guard is held only for the synchronous lookup-and-count step (see `route_handle`), and
//! nothing here takes a lock. Retries happen only where the instance cannot have acted on the request:
//! - a body-less request whose instance refused the connection is retried once on another instance (this
//!   keeps a crashed instance from failing requests before the controller has removed it);
//! - a request hyper hands back unsent because its pooled connection turned out closed is sent on another
//!   connection to the same instance;
//! - a body-less idempotent request that failed on a connection idle for a while (the instance's own
//!   keep-alive timeout may have closed it just as we wrote) is sent once more on a new connection. Only
//!   then is a copy of the request kept, so the common case (a connection used moments ago) copies nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::backend::Backend;
use crate::body::{RequestBody, ResponseBody};
use crate::headers::{self, X_SLIPWAY_RELEASE};
use crate::options::ProxyOptions;
use crate::pages::page;
use crate::pool::{self, Sender};
use crate::route_handle::RouteHandle;
use crate::route_table::{Choice, Target, host_without_port, parse_release};

/// A pooled connection idle at least this long may have been closed by the instance's keep-alive timeout
/// while we were writing to it, so a replayable request sent on it keeps a copy for one more try.
const STALE_AFTER: Duration = Duration::from_millis(300);

/// Pooled connections found closed in a row before the request insists on a new connection.
const MAX_UNSENT: u32 = 4;

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub(crate) routes: RouteHandle,
    /// How connections to instances are set up (HTTP/1.1).
    pub(crate) client: http1::Builder,
    pub(crate) options: ProxyOptions,
}

/// State of one client connection.
pub(crate) struct ConnState {
    pub(crate) shared: Arc<Shared>,
    /// The client's IP, formatted once per connection for `X-Forwarded-For`.
    pub(crate) client_ip: HeaderValue,
}

/// The hyper service function.
pub(crate) async fn serve_request(
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    Ok(forward(&conn, req).await)
}

async fn forward(conn: &ConnState, mut req: Request<Incoming>) -> Response<ResponseBody> {
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

    // Hold the table guard only until the chosen backend's in_flight is counted.
    let choice = {
        let table = shared.routes.inner.load();
        table.choose(host, req.uri().path(), preview)
    };
    let target = match choice {
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
    };

    let is_upgrade = req.version() <= Version::HTTP_11 && headers::wants_upgrade(req.headers());
    let client_upgrade = if is_upgrade {
        Some(hyper::upgrade::on(&mut req))
    } else {
        None
    };
    let (mut parts, body) = req.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, is_upgrade);
    // Room for the forwarding headers, so the map grows once.
    parts.headers.reserve(5);
    headers::add_forwarded(&mut parts.headers, &conn.client_ip, host_value.as_ref());
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
    let body_less = body.is_end_stream() && !is_upgrade;
    let replayable = body_less && is_idempotent(&parts.method);

    let mut request = Request::new(RequestBody::Incoming(body));
    *request.method_mut() = parts.method;
    // Origin form: the connection already says which instance this is.
    *request.uri_mut() = Uri::from(path_and_query);
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = parts.headers;

    let options = &shared.options;
    // One clock read serves the deadline and the pool's idle check.
    let now = tokio::time::Instant::now();
    let deadline = now + options.response_timeout;
    let mut target = target;
    let mut connect_retried = !body_less;
    let mut fresh_only = false;
    let mut unsent = 0u32;
    loop {
        let backend = target.lease.backend();
        let reused = if fresh_only {
            None
        } else {
            backend
                .pool
                .checkout(now.into_std(), options.idle_pool_timeout)
        };
        let (mut sender, idle_for) = match reused {
            Some(reused) => (reused.sender, Some(reused.idle_for)),
            None => {
                let connect = pool::connect(&shared.client, backend.addr, options.connect_timeout);
                match tokio::time::timeout_at(deadline, connect).await {
                    Err(_) => return gateway_timeout(&target, options.response_timeout),
                    Ok(Ok(sender)) => (sender, None),
                    Ok(Err(error)) => {
                        if !connect_retried {
                            connect_retried = true;
                            let next = {
                                let table = shared.routes.inner.load();
                                table.choose_retry(
                                    &target.app,
                                    target.release,
                                    target.preview,
                                    backend,
                                )
                            };
                            if let Some(next) = next {
                                debug!(app = %target.app, instance = %backend.id, retry = %next.lease.backend().id,
                                    "instance refused the connection; retrying on another instance");
                                target = next;
                                if host_is_instance {
                                    let host = authority_value(target.lease.backend());
                                    request.headers_mut().insert(HOST, host);
                                }
                                fresh_only = false;
                                continue;
                            }
                        }
                        return bad_gateway(&target, error.describe());
                    }
                }
            }
        };
        let copy = match idle_for {
            Some(idle_for) if replayable && idle_for >= STALE_AFTER => Some(copy_of(&request)),
            _ => None,
        };
        match tokio::time::timeout_at(deadline, sender.try_send_request(request)).await {
            Err(_) => return gateway_timeout(&target, options.response_timeout),
            Ok(Ok(response)) => return respond(target, response, client_upgrade, sender),
            Ok(Err(mut error)) => {
                if let Some(back) = error.take_message() {
                    // Nothing was written: the pooled connection had closed. Use another one.
                    if idle_for.is_some() {
                        request = back;
                        unsent += 1;
                        fresh_only = unsent >= MAX_UNSENT;
                        continue;
                    }
                } else if let Some(copy) = copy {
                    debug!(instance = %target.lease.backend().id, error = %error.error(),
                        "stale pooled connection failed; retrying on a new connection");
                    request = copy;
                    fresh_only = true;
                    continue;
                }
                return bad_gateway(&target, failure(&error.into_error()));
            }
        }
    }
}

/// Methods whose repetition has no extra effect (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A body-less copy of a request, for a replay.
fn copy_of(request: &Request<RequestBody>) -> Request<RequestBody> {
    let mut copy = Request::new(RequestBody::Empty);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = Version::HTTP_11;
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn authority_value(backend: &Backend) -> HeaderValue {
    // An authority is always a valid header value.
    HeaderValue::from_str(backend.authority.as_str())
        .unwrap_or_else(|_| HeaderValue::from_static("localhost"))
}

fn respond(
    target: Target,
    mut response: Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
    connection: Sender,
) -> Response<ResponseBody> {
    let Target { mut lease, .. } = target;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // The connection now belongs to the tunnel (or to nobody): never back to the pool.
        drop(connection);
        let Some(client_upgrade) = client_upgrade else {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, ResponseBody::empty());
        };
        let instance_upgrade = hyper::upgrade::on(&mut response);
        lease.become_stream();
        tokio::spawn(tunnel(client_upgrade, instance_upgrade, lease));
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, ResponseBody::empty());
    }
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    if parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"))
    {
        lease.become_stream();
    }
    Response::from_parts(parts, ResponseBody::upstream(body, lease, connection))
}

/// Copies bytes both ways between an upgraded client connection and the instance, counted as a stream until
/// either side closes.
async fn tunnel(client: OnUpgrade, instance: OnUpgrade, lease: crate::backend::Lease) {
    match tokio::try_join!(client, instance) {
        Ok((client, instance)) => {
            let mut client = TokioIo::new(client);
            let mut instance = TokioIo::new(instance);
            if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut instance).await {
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
fn failure(error: &hyper::Error) -> String {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    format!("failed before sending a response: {cause}")
}

fn bad_gateway(target: &Target, what: String) -> Response<ResponseBody> {
    debug!(app = %target.app, instance = %target.lease.backend().id, %what, "bad gateway");
    page(
        StatusCode::BAD_GATEWAY,
        &format!("{} {what}", describe(target)),
    )
}

fn gateway_timeout(target: &Target, timeout: Duration) -> Response<ResponseBody> {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        &format!(
            "{} sent no response headers within {timeout:?}",
            describe(target)
        ),
    )
}
