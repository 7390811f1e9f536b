//! What the proxy answers itself, before a request is routed to an app: a pending ACME HTTP-01 challenge
//! (on any listener, whatever the app says), and the redirect of plain HTTP to HTTPS for apps that ask
//! for it. The fast path hands such requests to the hyper path (`wants_hyper`), which answers them here.

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};

use crate::acme_challenges::{self, AcmeChallenges};
use crate::body::ResponseBody;
use crate::route_handle::RouteHandle;
use crate::route_table::{CompiledTable, host_without_port};

/// True when the fast path must leave this request to [`answer`] (redirects to HTTPS: plain HTTP only).
pub(crate) fn wants_hyper(table: &CompiledTable, tls: bool, host: &str, path: &str) -> bool {
    path.starts_with(acme_challenges::PREFIX)
        || (!tls
            && table.any_redirect
            && table.app_for(host, path).is_some_and(|a| a.redirect_https))
}

/// The proxy's own answer to this request, if it has one.
pub(crate) fn answer(
    challenges: &AcmeChallenges,
    routes: &RouteHandle,
    tls: bool,
    host: Option<&HeaderValue>,
    path_and_query: &str,
) -> Option<Response<ResponseBody>> {
    let path = path_and_query.split('?').next().unwrap_or("");
    if path.starts_with(acme_challenges::PREFIX) {
        // Not one of ours: the app's own ACME client's, perhaps; never redirected.
        return challenges.answer(path).map(|key_authorization| {
            reply(
                StatusCode::OK,
                &[(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                )],
                key_authorization,
            )
        });
    }
    if tls {
        return None;
    }
    let host = host.and_then(|h| h.to_str().ok())?;
    let table = routes.inner.load();
    if !table.any_redirect
        || !table
            .app_for(host_without_port(host), path)
            .is_some_and(|app| app.redirect_https)
    {
        return None;
    }
    // The default HTTPS port: the redirect names the host without the plain listener's port.
    let location = format!("https://{}{}", host_without_port(host), path_and_query);
    let location = HeaderValue::from_str(&location).ok()?;
    Some(reply(
        StatusCode::PERMANENT_REDIRECT,
        &[(LOCATION, location)],
        String::new(),
    ))
}

/// `Strict-Transport-Security` for a response over TLS.
pub(crate) fn hsts(max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
}

fn reply(
    status: StatusCode,
    headers: &[(http::HeaderName, HeaderValue)],
    body: String,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body.into()));
    *response.status_mut() = status;
    for (name, value) in headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}
