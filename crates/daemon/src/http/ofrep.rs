//! OFREP, the OpenFeature Remote Evaluation Protocol, on the daemon's TCP API listener:
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: one flag (200, or 404 FLAG_NOT_FOUND, 400 with the code);
//! - `POST /ofrep/v1/evaluate/flags`: every flag of the app, with an `ETag` (`If-None-Match` → 304) and
//!   `eventStreams` pointing at
//! - `GET /ofrep/v1/events`: server-sent events, one `refetchEvaluation` message per change;
//! - `GET /ofrep/v1/configuration`: what this server supports.
//!
//! Every request needs an evaluation key (`X-API-Key: KEY` or `Authorization: Bearer KEY`): none → 401,
//! one that is not an evaluation key (an admin token, a revoked key) → 403, over its rate → 429 with
//! `Retry-After` in seconds. The key picks the app. Bad input is a 400 that says what is wrong, never a
//! 500. These routes sit outside the admin token check, and the admin routes never accept these keys.

use crate::flags::{EvaluationKey, Flags};
use crate::http::route_table::{Door, Routes};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Map, Value, json};
use slipway_flags::{ErrorCode, Evaluation, EvaluationContext, EvaluationError};
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// How long an idle browser tab may keep the event stream (OFREP's `inactivityDelaySec`).
const INACTIVITY_DELAY_SEC: u64 = 120;

/// Before the state is given, so the role table's test can list them.
pub(crate) fn routes() -> Routes<Arc<Flags>> {
    Routes::new(Door::Ofrep)
        .post("/ofrep/v1/evaluate/flags/{key}", single)
        .post("/ofrep/v1/evaluate/flags", bulk)
        .get("/ofrep/v1/events", events)
        .get("/ofrep/v1/configuration", configuration)
}

pub fn router(flags: Arc<Flags>) -> Router {
    routes().into_router().with_state(flags)
}

async fn single(
    State(flags): State<Arc<Flags>>,
    Path(key): Path<String>,
    request: Request,
) -> Response {
    // The request taken apart by hand: the `HeaderMap` extractor would copy every header.
    let (parts, body) = request.into_parts();
    let caller = match authorize(&flags, &parts.headers) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (context, _) = match read_context(&body, false) {
        Ok(c) => c,
        Err(e) => return failure(StatusCode::BAD_REQUEST, Some(&key), &e),
    };
    let app = flags.app(&caller.app);
    let evaluation = app.set.evaluate(&key, &context, now_unix());
    match &evaluation.error {
        Some(e) if e.code == ErrorCode::FlagNotFound => {
            failure(StatusCode::NOT_FOUND, Some(&key), e)
        }
        Some(e) => failure(StatusCode::BAD_REQUEST, Some(&key), e),
        None => json_response(StatusCode::OK, &Success::of(&key, &evaluation)),
    }
}

async fn bulk(State(flags): State<Arc<Flags>>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match authorize(&flags, &headers) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let (context, context_hash) = match read_context(&body, true) {
        Ok(c) => c,
        Err(e) => return failure(StatusCode::BAD_REQUEST, None, &e),
    };
    let app = flags.app(&caller.app);
    // The answer depends on the flags and on the context, so both make the tag.
    let etag = format!("\"g{}-{context_hash:016x}\"", app.generation);
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let now = now_unix();
    let results: Vec<Value> = app
        .set
        .evaluate_all(&context, now)
        .map(|(key, evaluation)| match &evaluation.error {
            Some(e) => json!({"key": key, "errorCode": e.code.as_str(), "errorDetails": e.message}),
            None => serde_json::to_value(Success::of(key, &evaluation)).unwrap_or(Value::Null),
        })
        .collect();
    let streams = json!([{
        "type": "sse",
        "url": events_url(&headers),
        "inactivityDelaySec": INACTIVITY_DELAY_SEC,
    }]);
    let mut response = json_response(
        StatusCode::OK,
        &json!({"flags": results, "eventStreams": streams}),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// One `refetchEvaluation` message per change to the caller's app. A client that reconnects with a
/// `Last-Event-ID` older than the current generation gets one at once, for the change it missed.
async fn events(State(flags): State<Arc<Flags>>, headers: HeaderMap) -> Response {
    let caller = match authorize(&flags, &headers) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let app = caller.app.clone();
    let current = flags.app(&app);
    let missed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|id| id != current.generation.to_string());
    let pending = missed.then(|| refetch(current.generation, now_unix()));
    let receiver = flags.subscribe();
    let closing = flags.closing.clone();
    let stream = futures_util::stream::unfold(
        (receiver, pending, flags, app, closing),
        |(mut receiver, pending, flags, app, closing)| async move {
            if let Some(event) = pending {
                return Some((
                    Ok::<_, Infallible>(event),
                    (receiver, None, flags, app, closing),
                ));
            }
            loop {
                let next = tokio::select! {
                    _ = closing.cancelled() => return None,
                    next = receiver.recv() => next,
                };
                let event = match next {
                    Ok(changed) if changed.app == app => {
                        refetch(changed.generation, changed.at_ms / 1000)
                    }
                    Ok(_) => continue,
                    // Fell behind: one message for where things are now is all a client needs.
                    Err(RecvError::Lagged(_)) => refetch(flags.app(&app).generation, now_unix()),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, None, flags, app, closing)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn configuration(State(flags): State<Arc<Flags>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&flags, &headers) {
        return r.into_response();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "name": "slipway",
            "capabilities": {
                "cacheInvalidation": {"polling": {"enabled": true, "minPollingIntervalMs": 1000}},
                "flagEvaluation": {"supportedTypes": ["boolean", "string", "int", "float", "object"]},
            }
        }),
    )
}

fn refetch(generation: i64, last_modified: i64) -> Event {
    let data = json!({
        "type": "refetchEvaluation",
        "etag": format!("\"g{generation}\""),
        "lastModified": last_modified,
    });
    Event::default()
        .id(generation.to_string())
        .event("message")
        .data(data.to_string())
}

/// Why a request gets no evaluation.
enum Refused {
    NoKey,
    NotAKey,
    OverRate { key: String, seconds: u64 },
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NoKey => plain_error(
                StatusCode::UNAUTHORIZED,
                "an evaluation key is required: send X-API-Key: KEY or Authorization: Bearer KEY \
                 (make one with `slipway flags key create NAME`)",
            ),
            Refused::NotAKey => plain_error(
                StatusCode::FORBIDDEN,
                "this is not an evaluation key of any app (revoked, mistyped, or an admin token, \
                 which cannot evaluate)",
            ),
            Refused::OverRate { key, seconds } => {
                let mut response = plain_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("evaluation key {key} is over its rate limit; retry in {seconds}s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
        }
    }
}

/// The caller's key, or why it is refused.
fn authorize(flags: &Flags, headers: &HeaderMap) -> Result<Arc<EvaluationKey>, Refused> {
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| {
            let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|k| !k.is_empty())
        .ok_or(Refused::NoKey)?;
    let key = flags.key(presented).ok_or(Refused::NotAKey)?;
    if let Err(wait) = key.limiter.check() {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(Refused::OverRate {
            key: key.name.clone(),
            seconds: seconds.max(1),
        });
    }
    Ok(key)
}

/// Requests larger than this are refused: a context is a handful of attributes.
const MAX_BODY: usize = 1 << 20;

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        let error = EvaluationError {
            code: ErrorCode::InvalidContext,
            message: format!("the request body could not be read, or is over {MAX_BODY} bytes"),
        };
        failure(StatusCode::BAD_REQUEST, None, &error)
    })
}

#[derive(serde::Deserialize)]
struct EvaluationRequest {
    #[serde(default)]
    context: Value,
}

/// The request's evaluation context and, when `tag` is asked for, a hash of it for the bulk answer's
/// ETag. An empty body is an empty context (some clients send none).
fn read_context(body: &[u8], tag: bool) -> Result<(EvaluationContext, u64), EvaluationError> {
    let invalid = |message: String| EvaluationError {
        code: ErrorCode::InvalidContext,
        message,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((EvaluationContext::new(), 0));
    }
    let request: EvaluationRequest = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the request body must be JSON like {{\"context\": {{...}}}}: {e}"
        ))
    })?;
    let attributes = match request.context {
        Value::Null => Map::new(),
        Value::Object(attributes) => attributes,
        other => return Err(EvaluationContext::from_json(&other).unwrap_err()),
    };
    let hash = if tag {
        let mut hasher = std::hash::DefaultHasher::new();
        serde_json::to_string(&attributes)
            .unwrap_or_default()
            .hash(&mut hasher);
        hasher.finish()
    } else {
        0
    };
    Ok((EvaluationContext::from_object(attributes)?, hash))
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// Absolute, as OFREP wants, on the host and port the client used.
fn events_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1");
    format!("http://{host}/ofrep/v1/events")
}

#[derive(Serialize)]
struct Success<'a> {
    key: &'a str,
    /// Absent when the caller's own default applies (OFREP's code-default answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    metadata: Map<String, Value>,
}

impl<'a> Success<'a> {
    fn of(key: &'a str, evaluation: &'a Evaluation<'a>) -> Success<'a> {
        Success {
            key,
            value: evaluation.value.map(|v| v.to_json()),
            reason: evaluation.reason.as_str(),
            variant: evaluation.variant,
            metadata: evaluation
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        }
    }
}

fn failure(status: StatusCode, key: Option<&str>, error: &EvaluationError) -> Response {
    let mut body = json!({"errorCode": error.code.as_str(), "errorDetails": error.message});
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    json_response(status, &body)
}

fn plain_error(status: StatusCode, details: &str) -> Response {
    json_response(status, &json!({ "errorDetails": details }))
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    (status, Json(body)).into_response()
}

fn now_unix() -> i64 {
    (crate::clock::now_ms() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_read_or_refused_with_invalid_context() {
        let (context, hash) = read_context(b"", true).unwrap();
        assert!(context.attributes().is_empty());
        assert_eq!(hash, 0);
        let (context, _) = read_context(
            br#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#,
            true,
        )
        .unwrap();
        assert_eq!(context.targeting_key(), Some("u1"));
        for bad in [
            &b"{"[..],
            b"[1]",
            br#"{"context": 7}"#,
            br#"{"context": {"targetingKey": 7}}"#,
        ] {
            let error = read_context(bad, true).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidContext, "{error}");
        }
        let a = read_context(br#"{"context": {"a": 1}}"#, true).unwrap().1;
        let b = read_context(br#"{"context": {"a": 2}}"#, true).unwrap().1;
        assert_ne!(a, b);
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"g3-00\""),
        );
        assert!(if_none_match(&headers, "\"g3-00\""));
        assert!(!if_none_match(&headers, "\"g4-00\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&headers, "\"g4-00\""));
    }
}
