//! The flag routes of the admin API (unix socket, or TCP with the admin token), used by `slipway flags`.
//! Collection-wide routes live beside `/flags/{key}` rather than under it (`/flag-set`, `/flag-history`,
//! `/flag-keys`), so that no flag name is ever mistaken for an action.

use crate::clock::now_ms;
use crate::error::Error;
use crate::flags::{Edit, Origin, import, ramps, stored};
use crate::http::Api;
use crate::http::caller::Caller;
use crate::http::extract::{Json, Path, Query};
use crate::http::route_table::{Door, Routes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use slipway_api::Accepted;
use slipway_api::flags::{
    FlagEdit, FlagImport, FlagKeyCreate, FlagKeyCreated, FlagKeyView, FlagList, FlagRampRequest,
    FlagRevert, FlagSummary, FlagView,
};
use slipway_flags::{Flag, FlagSet, FlagState};
use utoipa::IntoParams;

type Answer = Result<Response, Response>;

pub fn routes() -> Routes<Api> {
    Routes::new(Door::Api)
        .get("/v1/apps/{app}/flags", list)
        .get("/v1/apps/{app}/flags/{key}", view)
        .post("/v1/apps/{app}/flags/{key}", edit)
        .post("/v1/apps/{app}/flags/{key}/revert", revert)
        .post("/v1/apps/{app}/flags/{key}/ramp", ramp)
        .get("/v1/apps/{app}/flag-set", export)
        .post("/v1/apps/{app}/flag-set", import_file)
        .get("/v1/apps/{app}/flag-history", history)
        .get("/v1/apps/{app}/flag-keys", keys)
        .post("/v1/apps/{app}/flag-keys", create_key)
        .delete("/v1/apps/{app}/flag-keys/{name}", revoke_key)
}

/// `GET /v1/apps/{app}/flags`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Flags serving everyone alike for longer than this are stale.
    stale_after_ms: Option<i64>,
}

async fn list(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(q): Query<ListQuery>,
) -> Answer {
    let served = api.flags.app(&app);
    let running = api.flags.store().active_flag_ramps().map_err(internal)?;
    let now = now_ms() as i64;
    let flags = served
        .set
        .flags()
        .map(|(key, flag)| {
            let changed_at = served.changed_at.get(key).copied().unwrap_or(now);
            let ramp = running
                .iter()
                .find(|r| r.app == app && r.flag == key)
                .and_then(ramps::view)
                .map(|v| {
                    format!(
                        "{}% get {} (step {}/{}, {})",
                        v.percent,
                        v.variant,
                        v.step + 1,
                        v.steps.len(),
                        v.status
                    )
                });
            let stale = q.stale_after_ms.is_some_and(|after| {
                flag.serves_everyone_alike() && ramp.is_none() && now - changed_at > after
            });
            FlagSummary {
                key: key.to_string(),
                state: match flag.state {
                    FlagState::Enabled => "ENABLED".into(),
                    FlagState::Disabled => "DISABLED".into(),
                },
                killed: flag.killed,
                kind: flag
                    .variant_type()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                default_variant: flag.default_variant.clone(),
                variants: flag.variants.keys().cloned().collect(),
                targeting: flag.active_targeting().is_some(),
                changed_at,
                stale,
                ramp,
            }
        })
        .collect();
    let problems = served
        .set
        .targeting_errors()
        .map(|(key, e)| {
            format!("flag {key}: targeting does not compile ({e}); it answers PARSE_ERROR")
        })
        .collect();
    Ok(Json(FlagList {
        app,
        generation: served.generation,
        flags,
        problems,
    })
    .into_response())
}

async fn view(State(api): State<Api>, Path((app, key)): Path<(String, String)>) -> Answer {
    let served = api.flags.app(&app);
    let flag = served.set.get(&key).ok_or_else(|| not_found(&app, &key))?;
    let ramp = api
        .flags
        .store()
        .latest_flag_ramp(&app, &key)
        .map_err(internal)?
        .as_ref()
        .and_then(ramps::view);
    Ok(Json(FlagView {
        app,
        definition: stored::flag_json(flag),
        changed_at: served.changed_at.get(&key).copied().unwrap_or_default(),
        key,
        ramp,
    })
    .into_response())
}

async fn edit(
    State(api): State<Api>,
    Path((app, key)): Path<(String, String)>,
    caller: Caller,
    Json(req): Json<FlagEdit>,
) -> Answer {
    let change = Edit {
        who: caller.who(&req.who),
        action: req.action.clone(),
        reason: req.reason.clone(),
        origin: Origin::Operator,
    };
    let done = api.flags.change(
        &app,
        &change,
        |set| apply(set, &app, &key, &req),
        |_| Ok(()),
    )?;
    Ok(Json(done).into_response())
}

/// The new set after one `FlagEdit` (the dashboard's flag actions use it too).
pub(crate) fn apply(set: &FlagSet, app: &str, key: &str, req: &FlagEdit) -> Result<FlagSet, Error> {
    let bad = |e: slipway_flags::DefinitionError| Error::bad_request(e.to_string());
    let mut next = set.clone();
    let existing = || {
        set.get(key)
            .cloned()
            .ok_or_else(|| not_found_refusal(app, key))
    };
    match req.action.as_str() {
        "set" => {
            let mut flag = match &req.definition {
                Some(definition) => stored::flag_from_json(definition)
                    .map_err(|e| Error::bad_request(format!("flag {key}: {e}")))?,
                None => existing()?,
            };
            if let Some(variant) = &req.default_variant {
                flag.default_variant = Some(variant.clone());
            }
            if let Some(rule) = &req.targeting {
                flag.targeting = Some(rule.clone());
            }
            next.insert(key, flag).map_err(bad)?;
        }
        "enable" => {
            existing()?;
            next.update(key, |f| {
                f.state = FlagState::Enabled;
                f.revive();
            })
            .map_err(bad)?;
        }
        "disable" => {
            existing()?;
            next.update(key, |f| f.state = FlagState::Disabled)
                .map_err(bad)?;
        }
        "kill" => {
            existing()?;
            next.update(key, Flag::kill).map_err(bad)?;
        }
        "delete" => {
            existing()?;
            next.remove(key);
        }
        other => {
            return Err(Error::bad_request(format!(
                "unknown flag action {other:?} (set, enable, disable, kill, delete)"
            )));
        }
    }
    Ok(next)
}

async fn import_file(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(req): Json<FlagImport>,
) -> Answer {
    let file = import::read(&req.document, "the file")?;
    let edit = Edit {
        who: caller.who(&req.who),
        action: "import".into(),
        reason: None,
        origin: Origin::Operator,
    };
    Ok(Json(api.flags.import(&app, &file, req.merge, &edit)?).into_response())
}

async fn export(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    Ok(Json(api.flags.app(&app).set.to_flagd_value()).into_response())
}

/// `GET /v1/apps/{app}/flag-history`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Only the changes of this flag.
    flag: Option<String>,
    /// At most this many, newest first; default 100, at most 1000.
    limit: Option<usize>,
}

async fn history(
    State(api): State<Api>,
    Path(app): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Answer {
    let list = api
        .flags
        .store()
        .flag_audit(&app, q.flag.as_deref(), q.limit.unwrap_or(100).min(1000))
        .map_err(internal)?;
    Ok(Json(list).into_response())
}

async fn revert(
    State(api): State<Api>,
    Path((app, key)): Path<(String, String)>,
    caller: Caller,
    Json(req): Json<FlagRevert>,
) -> Answer {
    let entry = api
        .flags
        .store()
        .transaction(|tx| tx.flag_audit_entry(&app, &key, req.to))
        .map_err(internal)?
        .ok_or_else(|| {
            Error::not_found(format!(
                "flag {key} of {app} has no change #{}; see `slipway flags history {key}`",
                req.to
            ))
        })?;
    let edit = Edit {
        who: caller.who(&req.who),
        action: "revert".into(),
        reason: Some(format!(
            "back to #{} ({} by {})",
            req.to, entry.action, entry.who
        )),
        origin: Origin::Operator,
    };
    let done = api.flags.change(
        &app,
        &edit,
        |set| {
            let unreadable =
                |e: String| Error::internal(format!("change #{} no longer reads: {e}", req.to));
            let mut next = set.clone();
            match (key.as_str(), &entry.after) {
                (stored::SET_PARTS, after) => {
                    let parts: Value = match after {
                        Some(text) => {
                            serde_json::from_str(text).map_err(|e| unreadable(e.to_string()))?
                        }
                        None => json!({}),
                    };
                    let from =
                        FlagSet::from_flagd_value(&parts).map_err(|e| unreadable(e.to_string()))?;
                    next = stored::with_parts_of(set, &from).map_err(unreadable)?;
                }
                (_, Some(text)) => {
                    let flag = stored::flag_from_text(text).map_err(unreadable)?;
                    next.insert(&key, flag)
                        .map_err(|e| unreadable(e.to_string()))?;
                }
                (_, None) => {
                    next.remove(&key);
                }
            }
            Ok(next)
        },
        |_| Ok(()),
    )?;
    Ok(Json(done).into_response())
}

async fn ramp(
    State(api): State<Api>,
    Path((app, key)): Path<(String, String)>,
    caller: Caller,
    Json(mut req): Json<FlagRampRequest>,
) -> Answer {
    req.who = caller.who(&req.who);
    if req.stop {
        api.flags.stop_ramp(&app, &key, &req.who)?;
        return Ok(Json(Accepted::YES).into_response());
    }
    let done = api
        .flags
        .start_ramp(&app, &key, &req, &api.controller)
        .await?;
    Ok(Json(done).into_response())
}

async fn create_key(
    State(api): State<Api>,
    Path(app): Path<String>,
    caller: Caller,
    Json(req): Json<FlagKeyCreate>,
) -> Answer {
    let rate = req
        .rate_per_sec
        .unwrap_or(crate::flags::keys::DEFAULT_RATE_PER_SEC);
    let key = api
        .flags
        .create_key(&app, &req.name, rate, &caller.who(&req.who))?;
    Ok(Json(FlagKeyCreated {
        app,
        name: req.name,
        key,
        rate_per_sec: rate,
    })
    .into_response())
}

async fn keys(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    let list: Vec<FlagKeyView> = api
        .flags
        .store()
        .flag_keys(Some(&app))
        .map_err(internal)?
        .into_iter()
        .map(|k| FlagKeyView {
            name: k.name,
            rate_per_sec: k.rate_per_sec,
            created_at: k.created_at,
            created_by: k.created_by,
        })
        .collect();
    Ok(Json(list).into_response())
}

async fn revoke_key(State(api): State<Api>, Path((app, name)): Path<(String, String)>) -> Answer {
    api.flags.revoke_key(&app, &name)?;
    Ok(Json(Accepted::YES).into_response())
}

fn not_found_refusal(app: &str, key: &str) -> Error {
    Error::not_found(format!(
        "{app} has no flag {key}; see `slipway flags list` (create one with `slipway flags set {key} --definition FILE` or `slipway flags import`)"
    ))
}

fn not_found(app: &str, key: &str) -> Response {
    not_found_refusal(app, key).into()
}

fn internal(e: slipway_store::StoreError) -> Response {
    Error::internal(e.to_string()).into()
}
