//! The per-request path: route, pick, rewrite headers, forward over the pooled client, stream the response
//! back.
//!
//! The route table guard is held only for the synchronous lookup-and-count step (see `route_handle`), and
//! nothing here takes a lock. A body-less request whose instance refused the connection is retried once on
//! another instance: the request never reached the first one, so this is always safe, and it is what keeps
//! a crashed instance from failing requests before the controller has removed it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::body::{RequestBody, ResponseBody};
use crate::headers::{self, X_SLIPWAY_RELEASE};
use crate::options::ProxyOptions;
use crate::pages::page;
use crate::route_handle::RouteHandle;
use crate::route_table::{Choice, Target, host_without_port, parse_release};

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub(crate) routes: RouteHandle,
    pub(crate) client: Client<HttpConnector, RequestBody>,
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
    if !parts.headers.contains_key(HOST)
        && let Some(host) = host_value
    {
        // HTTP/2 carries the host in :authority; instances speak HTTP/1.1 and expect Host.
        parts.headers.insert(HOST, host);
    }
    let path_and_query = std::mem::take(&mut parts.uri)
        .into_parts()
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));

    // Keep what a retry needs only when a retry is possible (no body to replay).
    let mut retry = (body.is_end_stream() && !is_upgrade).then(|| {
        (
            parts.method.clone(),
            path_and_query.clone(),
            parts.headers.clone(),
        )
    });
    let mut request = outbound(
        parts.method,
        path_and_query,
        parts.headers,
        RequestBody::Incoming(body),
        &target,
    );

    let deadline = tokio::time::Instant::now() + shared.options.response_timeout;
    let mut target = target;
    loop {
        match tokio::time::timeout_at(deadline, shared.client.request(request)).await {
            Err(_) => return gateway_timeout(&target, shared.options.response_timeout),
            Ok(Ok(response)) => return respond(target, response, client_upgrade),
            Ok(Err(error)) => {
                if error.is_connect()
                    && let Some((method, path_and_query, headers)) = retry.take()
                {
                    let next = {
                        let table = shared.routes.inner.load();
                        table.choose_retry(
                            &target.app,
                            target.release,
                            target.preview,
                            target.lease.backend(),
                        )
                    };
                    if let Some(next) = next {
                        debug!(app = %target.app, instance = %target.lease.backend().id, retry = %next.lease.backend().id,
                            "instance refused the connection; retrying on another instance");
                        target = next;
                        request =
                            outbound(method, path_and_query, headers, RequestBody::Empty, &target);
                        continue;
                    }
                }
                return bad_gateway(&target, &error);
            }
        }
    }
}

/// The request as sent to `target`'s instance: absolute URI to its address (the pool's key), HTTP/1.1.
fn outbound(
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
    body: RequestBody,
    target: &Target,
) -> Request<RequestBody> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(target.lease.backend().authority.clone());
    uri.path_and_query = Some(path_and_query);
    let mut request = Request::new(body);
    *request.method_mut() = method;
    // Scheme, authority and path are all present, so this cannot fail.
    *request.uri_mut() = Uri::from_parts(uri).unwrap_or_default();
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    request
}

fn respond(
    target: Target,
    mut response: Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
) -> Response<ResponseBody> {
    let Target { mut lease, .. } = target;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
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
    Response::from_parts(parts, ResponseBody::upstream(body, lease))
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

fn bad_gateway(
    target: &Target,
    error: &hyper_util::client::legacy::Error,
) -> Response<ResponseBody> {
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    let refused = std::iter::successors(std::error::Error::source(error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    let what = if error.is_connect() {
        if refused || cause.is_empty() {
            "refused the connection".to_owned()
        } else {
            format!("could not be connected to: {cause}")
        }
    } else if cause.is_empty() {
        format!("failed before sending a response: {error}")
    } else {
        format!("failed before sending a response: {cause}")
    };
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
