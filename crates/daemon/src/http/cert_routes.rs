//! `GET /v1/certs` (viewer): every TLS host's certificate, issuer, expiry, next renewal and last error;
//! `POST /v1/certs/{host}/renew` (deployer): a new certificate now (ACME) or the files read again;
//! `POST /v1/certs/{host}/revoke` (admin): a new certificate, then the CA revokes the one replaced.

use crate::http::caller::Caller;
use crate::http::extract::{Json as Body, Path};
use crate::http::route_table::{Door, Routes};
use crate::http::{Answer, Api};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use slipway_api::{RenewStarted, RevokeCert, RevokeStarted};

use crate::tls::revocation::Reason;

pub(crate) fn routes() -> Routes<Api> {
    Routes::new(Door::Api)
        .get("/v1/certs", list)
        .post("/v1/certs/{host}/renew", renew)
        .post("/v1/certs/{host}/revoke", revoke)
}

async fn list(State(api): State<Api>) -> Answer {
    Ok(Json(api.tls.status()).into_response())
}

async fn renew(State(api): State<Api>, Path(host): Path<String>, caller: Caller) -> Answer {
    api.tls.renew(&host)?;
    let who = caller
        .tcp_who()
        .unwrap_or_else(|| "the local socket".to_string());
    tracing::info!(%host, "certificate renewal asked for by {who}");
    Ok((StatusCode::ACCEPTED, Json(RenewStarted { host })).into_response())
}

async fn revoke(
    State(api): State<Api>,
    Path(host): Path<String>,
    caller: Caller,
    body: Option<Body<RevokeCert>>,
) -> Answer {
    // No body: no reason given (`unspecified`).
    let reason = body.and_then(|Body(b)| b.reason);
    let reason = Reason::parse(reason.as_deref())?;
    let serial = api.tls.revoke(&host, reason)?;
    let who = caller
        .tcp_who()
        .unwrap_or_else(|| "the local socket".to_string());
    tracing::info!(%host, %serial, reason = reason.name(), "certificate revocation asked for by {who}");
    let started = RevokeStarted {
        host: host.to_ascii_lowercase(),
        serial,
        reason: reason.name().to_owned(),
    };
    Ok((StatusCode::ACCEPTED, Json(started)).into_response())
}
