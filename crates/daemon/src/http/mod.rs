//! The HTTP API, served on the local unix socket (no token: the socket is mode 0600) and, when
//! `slipway serve --api ADDR` asks for it, on TCP where every request needs `Authorization: Bearer <token>`.
//!
//! The top layer: it may call into `ops`, `flags` and `control`, never the other way round.

pub mod auth;
pub(crate) mod backup_routes;
pub(crate) mod caller;
pub(crate) mod cert_routes;
pub(crate) mod dashboard;
pub mod doorkeeper;
pub(crate) mod extract;
pub(crate) mod flag_admin;
pub(crate) mod ofrep;
pub mod openapi;
pub(crate) mod reply;
pub mod route_table;
pub(crate) mod series_routes;
pub mod throttle;
pub mod tls_api;
pub(crate) mod token_routes;
pub mod tokens;
pub(crate) mod upload_routes;

use crate::control::controller::{Command, ControllerHandle};
use crate::http::auth::Role;
use crate::http::caller::Caller;
use crate::http::doorkeeper::{ClientAddr, Doorkeeper, Refusal};
use crate::http::extract::{Json, Path, Query};
use crate::http::route_table::{Access, Door, Needs, Routes};
use crate::ops::deploy::Deployer;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub(crate) use reply::{Answer, error};
use serde::Deserialize;
use slipway_api::{
    AbortRequest, Accepted, AppStatus, DeployRequest, DrillReport, DrillRequest, GateAnswer,
    GateRequest, Health, PromoteRequest, ReleaseSummary, RetryRequest, RollbackRequest,
    RolloutView, SetWeightRequest,
};
use slipway_core::rollout::Signal;
use slipway_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use utoipa::IntoParams;

#[derive(Clone)]
pub struct Api {
    pub deployer: Arc<Deployer>,
    pub cron: Arc<crate::ops::cron::Cron>,
    pub controller: ControllerHandle,
    pub store: Arc<Store>,
    pub logs_dir: PathBuf,
    pub flags: Arc<crate::flags::Flags>,
    pub backups: Arc<crate::ops::backup::Backups>,
    /// Where `POST /v1/upgrade` asks `serve` to hand over to the binary on disk.
    pub upgrades: tokio::sync::mpsc::Sender<crate::upgrade::Request>,
    pub tls: Arc<crate::tls::Tls>,
}

/// The API's routes, before the state is given (so the role table's test can list them).
pub(crate) fn api_routes() -> Routes<Api> {
    Routes::new(Door::Api)
        .get("/v1/health", health)
        .post("/v1/upgrade", upgrade)
        .get("/v1/openapi.json", openapi::serve)
        .post("/v1/deploy", deploy)
        .get("/v1/apps", apps)
        .get("/v1/apps/{app}", app_status)
        .get("/v1/apps/{app}/releases", releases)
        .get("/v1/apps/{app}/rollouts", rollouts)
        .get("/v1/apps/{app}/events", events)
        .get("/v1/apps/{app}/logs", logs)
        .post("/v1/apps/{app}/promote", promote)
        .post("/v1/apps/{app}/pause", pause)
        .post("/v1/apps/{app}/resume", resume)
        .post("/v1/apps/{app}/ramp", set_weight)
        .post("/v1/apps/{app}/retry", retry)
        .post("/v1/apps/{app}/drill", drill)
        .get("/v1/apps/{app}/drills", drills)
        .post("/v1/apps/{app}/gate", gate)
        .post("/v1/apps/{app}/scale", scale)
        .post("/v1/apps/{app}/maintenance", maintenance_on)
        .delete("/v1/apps/{app}/maintenance", maintenance_off)
        .get("/v1/apps/{app}/config", config_view)
        .post("/v1/apps/{app}/config", config_change)
        .get("/v1/apps/{app}/cron", cron_list)
        .post("/v1/apps/{app}/cron/{job}/run", cron_run)
        .get("/metrics", metrics)
        .post("/v1/apps/{app}/abort", abort)
        .post("/v1/apps/{app}/rollback", rollback)
        .get("/v1/apps/{app}/series", series_routes::api)
        .merge(crate::http::token_routes::routes())
        .merge(crate::http::flag_admin::routes())
        .merge(crate::http::backup_routes::routes())
        .merge(crate::http::upload_routes::routes())
        .merge(crate::http::cert_routes::routes())
}

pub fn router(api: Api) -> Router {
    api_routes().into_router().with_state(api)
}

async fn health() -> Json<Health> {
    Json(Health {
        ok: true,
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// Answers once the new daemon serves (or the upgrade was refused, this daemon serving on).
async fn upgrade(State(api): State<Api>) -> Answer {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let refused = |why: String| error(StatusCode::SERVICE_UNAVAILABLE, why);
    api.upgrades
        .try_send(crate::upgrade::Request { reply: Some(reply) })
        .map_err(|_| {
            refused("an upgrade is already under way, or the daemon is stopping".into())
        })?;
    match answer.await {
        Ok(Ok(done)) => Ok(Json(slipway_api::Upgraded {
            from_pid: done.from_pid,
            pid: done.pid,
            version: done.version,
        })
        .into_response()),
        Ok(Err(why)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, why)),
        Err(_) => Err(refused("the daemon stopped before the upgrade".into())),
    }
}

/// Token check for the TCP listener: who the caller is (by their token, compared in constant time,
/// under the brute-force limits of `throttle.rs`) and whether their role allows the route, as
/// `route_table.rs` says. The caller's identity goes on with the request, for handlers that record who
/// did what.
pub async fn require_token(
    State(keeper): State<Arc<Doorkeeper>>,
    mut req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let from = ClientAddr::from_extensions(req.extensions());
    let identity = match keeper.identify(from, given, "api").await {
        Ok(identity) => identity,
        Err(refusal) => return refused(refusal),
    };
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let needed = match route_table::needs(Door::Api, req.method(), matched) {
        Needs::Entry(Access::Role(role)) => role,
        Needs::Entry(Access::Public) | Needs::NoRoute | Needs::OtherMethod => Role::Viewer,
        Needs::Entry(Access::EvaluationKey) | Needs::Unlisted => {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "{} {} is not in the daemon's role table, so no one may call it",
                    req.method(),
                    req.uri().path()
                ),
            );
        }
    };
    if identity.role < needed {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "token {} has the role {}; {} {} needs {}",
                identity.name,
                identity.role.as_str(),
                req.method(),
                req.uri().path(),
                needed.as_str()
            ),
        );
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// 401 for a missing or wrong token, 429 with `Retry-After` for an address that is locked out.
fn refused(refusal: Refusal) -> Response {
    match refusal.retry_after_secs() {
        Some(secs) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong tokens from this address: try again in {secs} s"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        None => error(
            StatusCode::UNAUTHORIZED,
            "a valid token is required: set SLIPWAY_TOKEN (the daemon's token is in <state-dir>/api-token)",
        ),
    }
}

async fn deploy(
    State(api): State<Api>,
    caller: Caller,
    Json(mut req): Json<DeployRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    // Its own task: a client that disconnects must not cut a release phase (a migration) in half.
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.deploy(req).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    // A new release may name new hosts: their certificates are looked for now, not at the next pass.
    api.tls.look_now();
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

async fn rollback(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut req): Json<RollbackRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.rollback(&app, req).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    // A new release may name new hosts: their certificates are looked for now, not at the next pass.
    api.tls.look_now();
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

pub(crate) async fn statuses(api: &Api, app: Option<String>) -> Result<Vec<AppStatus>, Response> {
    api.controller
        .ask(|reply| Command::Status { app, reply })
        .await
        .map_err(Response::from)
}

async fn apps(State(api): State<Api>) -> Answer {
    Ok(Json(statuses(&api, None).await?).into_response())
}

async fn app_status(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    let mut all = statuses(&api, Some(app.clone())).await?;
    match all.pop() {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no app named {app} has been deployed to this daemon"),
        )),
    }
}

async fn releases(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    let list = api
        .store
        .releases(&app)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list.iter().map(ReleaseSummary::from).collect::<Vec<_>>()).into_response())
}

async fn rollouts(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    let list = api
        .store
        .rollouts(&app, 100)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let views: Vec<RolloutView> = list
        .into_iter()
        .map(|r| RolloutView {
            id: r.id,
            from: r.from,
            to: r.to,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome.map(|o| o.as_str().to_string()),
            reason: r.reason,
        })
        .collect();
    Ok(Json(views).into_response())
}

/// `GET /v1/apps/{app}/events`: a cursor over the journal.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Only events with a greater id (the last id seen): follow the journal like a cursor. Default 0.
    after: Option<i64>,
    /// At most this many, oldest first; default 200, at most 1000.
    limit: Option<usize>,
    /// The newest this many events instead (oldest first): where a follower starts without reading
    /// the whole journal.
    tail: Option<usize>,
}

async fn events(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Answer {
    let list = match q.tail {
        Some(tail) => api.store.latest_events(&app, tail.min(1000)).map(|mut l| {
            l.reverse();
            l
        }),
        None => api.store.events(
            Some(&app),
            q.after.unwrap_or(0),
            q.limit.unwrap_or(200).min(1000),
        ),
    }
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(list).into_response())
}

/// Over TCP, a steering request that carries no `who` is recorded in the app's events with the token's
/// name before it runs (the same `audit` events the dashboard writes).
fn audit(api: &Api, app: &str, action: &str, caller: &Caller) {
    if let Some(who) = caller.tcp_who() {
        let _ = api.store.add_event(
            app,
            None,
            "audit",
            &format!("{action} requested by {who}"),
            crate::clock::now_ms() as i64,
        );
    }
}

pub(crate) async fn signal(api: &Api, app: String, signal: Signal) -> Answer {
    api.controller
        .ask(|reply| Command::Signal { app, signal, reply })
        .await??;
    Ok(Json(Accepted::YES).into_response())
}

async fn promote(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    body: Option<Json<PromoteRequest>>,
) -> Answer {
    let full = body.is_some_and(|b| b.0.full);
    audit(
        &api,
        &app,
        if full { "promote --full" } else { "promote" },
        &caller,
    );
    signal(
        &api,
        app,
        if full {
            Signal::PromoteFull
        } else {
            Signal::Promote
        },
    )
    .await
}

async fn pause(State(api): State<Api>, Path(app): Path<String>, caller: Caller) -> Answer {
    audit(&api, &app, "pause", &caller);
    signal(&api, app, Signal::Pause).await
}

async fn resume(State(api): State<Api>, Path(app): Path<String>, caller: Caller) -> Answer {
    audit(&api, &app, "resume", &caller);
    signal(&api, app, Signal::Resume).await
}

async fn set_weight(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(req): Json<SetWeightRequest>,
) -> Answer {
    if req.weight > 100 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("ramp {}: a weight is 0 to 100 (percent)", req.weight),
        ));
    }
    audit(&api, &app, &format!("ramp to {} %", req.weight), &caller);
    signal(&api, app, Signal::SetWeight(req.weight)).await
}

async fn metrics(State(api): State<Api>) -> Answer {
    let text = api
        .controller
        .ask(|reply| Command::Metrics { reply })
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The longest window a gate judges (`slipway gate --for`).
const MAX_GATE_MS: u64 = 24 * 60 * 60 * 1000;
async fn gate(
    State(api): State<Api>,
    Path(app): Path<String>,
    Json(req): Json<GateRequest>,
) -> Answer {
    if req.error_rate.is_none() && req.latency.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "a gate needs --error-rate and/or --latency-pNN",
        ));
    }
    // A gate holds its request until it decides: a window beyond a day is a mistake, not a gate.
    if req.for_ms > MAX_GATE_MS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "a gate judges for at most 24h: give --for a shorter window, e.g. --for 10m",
        ));
    }
    let template = crate::control::analysis_session::gate_template(
        req.error_rate,
        req.latency
            .map(|(p, ms)| (p, std::time::Duration::from_millis(ms))),
    );
    let for_ms = req.for_ms;
    let j = api
        .controller
        .ask(|reply| Command::Gate {
            app,
            template,
            for_ms,
            reply,
        })
        .await??;
    Ok(Json(GateAnswer {
        verdict: j.verdict.as_str().to_string(),
        detail: j.detail,
    })
    .into_response())
}

async fn retry(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut req): Json<RetryRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.retry(&app, req).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// `slipway drill`: the stable release again as a canary failed on purpose, for the analysis to catch.
async fn drill(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut req): Json<DrillRequest>,
) -> Answer {
    audit(&api, &app, "drill", &caller);
    req.who = caller.who(&req.who);
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.drill(&app, req).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// `GET /v1/apps/{app}/drills`: which reports.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DrillsQuery {
    /// The newest this many; default 20, at most 100.
    limit: Option<usize>,
}

/// What the app's drills found, newest first (each recorded once its canary is gone).
async fn drills(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(q): Query<DrillsQuery>,
) -> Answer {
    let reports = api
        .store
        .drills(&app, q.limit.unwrap_or(20))
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let reports: Vec<DrillReport> = reports
        .into_iter()
        .filter_map(|r| serde_json::from_value(r).ok())
        .collect();
    Ok(Json(reports).into_response())
}

async fn abort(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    body: Option<Json<AbortRequest>>,
) -> Answer {
    audit(&api, &app, "abort", &caller);
    let by = caller
        .tcp_who()
        .unwrap_or_else(|| "the operator".to_string());
    let reason = match body.and_then(|b| b.0.reason) {
        Some(reason) if caller.0.is_some() => format!("{reason} (aborted by {by})"),
        Some(reason) => reason,
        None => format!("aborted by {by}"),
    };
    signal(&api, app, Signal::Abort { reason }).await
}

/// `GET /v1/apps/{app}/logs`: which lines.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogsQuery {
    /// Only the lines of this release.
    release: Option<u64>,
    /// Only the lines of this process type (`web`, `worker`…).
    process: Option<String>,
    /// Only lines from this time on: RFC 3339 UTC, e.g. `2026-11-30T10:00:00Z`.
    since: Option<String>,
    /// Keep the answer open and send new lines as they are written (the body never ends).
    follow: Option<bool>,
    /// The last this many lines; default 100.
    tail: Option<usize>,
}

async fn logs(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Answer {
    if app.contains('/') || app.contains("..") {
        return Err(error(StatusCode::BAD_REQUEST, "bad app name"));
    }
    let dir = api.logs_dir.join(&app);
    let tail = q.tail.unwrap_or(100);
    let filter = crate::log_reader::LogFilter {
        release: q.release,
        process: q.process,
        // `Z` and fractions are left out so that a plain prefix comparison with the lines works.
        since: q.since.map(|s| s.trim_end_matches('Z').to_string()),
    };
    let read_dir = dir.clone();
    let read_filter = filter.clone();
    let (text, offsets) =
        tokio::task::spawn_blocking(move || crate::log_reader::read(&read_dir, &read_filter, tail))
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !q.follow.unwrap_or(false) {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(256);
    let _ = tx.send(text).await;
    tokio::spawn(crate::log_reader::follow(dir, filter, offsets, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::io::Error>(line), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn scale(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut req): Json<slipway_api::ScaleRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.scale(&app, req).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

async fn maintenance_on(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut req): Json<slipway_api::MaintenanceRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    api.deployer.maintenance_on(&app, req).await?;
    Ok(Json(Accepted::YES).into_response())
}

async fn maintenance_off(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
) -> Answer {
    // DELETE has no body to name the local user in: the socket's owner is who can use it.
    let who = Some(caller.who(""))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "the local socket's user".into());
    api.deployer.maintenance_off(&app, &who).await?;
    Ok(Json(Accepted::YES).into_response())
}

async fn config_view(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    Ok(Json(api.deployer.config_view(&app)?).into_response())
}

async fn config_change(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(mut change): Json<slipway_api::ConfigChange>,
) -> Answer {
    change.who = caller.who(&change.who);
    let deployer = api.deployer.clone();
    let accepted = tokio::spawn(async move { deployer.config_change(&app, change).await })
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

async fn cron_list(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    Ok(Json(api.cron.view(&app)?).into_response())
}

async fn cron_run(
    State(api): State<Api>,
    Path((app, job)): Path<(String, String)>,
    caller: Caller,
    Json(req): Json<slipway_api::CronRunRequest>,
) -> Answer {
    let answer = match api.cron.run_now(&app, &job, &caller.who(&req.who))? {
        crate::ops::cron::Triggered::Started(run) => slipway_api::CronRunAnswer {
            run: Some(run),
            skipped: None,
        },
        crate::ops::cron::Triggered::Skipped(why) => slipway_api::CronRunAnswer {
            run: None,
            skipped: Some(why),
        },
    };
    Ok(Json(answer).into_response())
}
