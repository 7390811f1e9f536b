//! One SSE stream per page. Once a second it re-renders the page's live fragments and sends those that
//! changed (`frag`: a JSON object of element id → HTML); the app page's stream also tails the app's logs
//! (`logreset`, then `log` lines); the flags page's has its flags and their recent changes. When the session ends it says `expired` and closes. EventSource
//! reconnects by itself, and a reconnect starts from a full set of fragments.

use super::session::Session;
use super::{Ui, app_page, flags_page, overview};
use crate::clock::now_ms;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

const EVERY: Duration = Duration::from_secs(1);

type Tx = mpsc::Sender<Result<Event, Infallible>>;

/// Fragments that differ from what this stream sent last, as one `frag` event.
fn changed(
    parts: Vec<(&'static str, Markup)>,
    last: &mut HashMap<&'static str, String>,
) -> Option<Event> {
    let mut fresh = serde_json::Map::new();
    for (id, markup) in parts {
        let html = markup.into_string();
        if last.get(id) != Some(&html) {
            fresh.insert(id.to_string(), serde_json::Value::String(html.clone()));
            last.insert(id, html);
        }
    }
    (!fresh.is_empty()).then(|| {
        Event::default()
            .event("frag")
            .data(serde_json::Value::Object(fresh).to_string())
    })
}

/// The session, still live and with its current role; `None` once it expired or its token was revoked.
fn still_valid(ui: &Ui, id: &str) -> Option<Session> {
    let mut s = ui.sessions.get(id, now_ms())?;
    s.role = ui.auth.role_of(&s.name)?;
    Some(s)
}

fn sse(rx: mpsc::Receiver<Result<Event, Infallible>>) -> Response {
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn open(ui: &Ui, headers: &HeaderMap) -> Result<String, (StatusCode, &'static str)> {
    // EventSource cannot follow a login redirect: a plain 401 ends it, and the page reloads to the login.
    ui.session(headers)
        .map(|(id, _)| id)
        .map_err(|_| (StatusCode::UNAUTHORIZED, "log in again"))
}

async fn expired(tx: &Tx) {
    let _ = tx
        .send(Ok(Event::default().event("expired").data("session ended")))
        .await;
}

pub async fn overview(State(ui): State<Ui>, headers: HeaderMap) -> Response {
    let id = match open(&ui, &headers) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut last = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            if still_valid(&ui, &id).is_none() {
                return expired(&tx).await;
            }
            let list = overview::gather(&ui).await;
            if let Some(e) = changed(vec![("apps", overview::apps(&list))], &mut last)
                && tx.send(Ok(e)).await.is_err()
            {
                return;
            }
        }
    });
    sse(rx)
}

pub async fn app(State(ui): State<Ui>, Path(app): Path<String>, headers: HeaderMap) -> Response {
    let id = match open(&ui, &headers) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    if app.contains('/') || app.contains("..") {
        return (StatusCode::BAD_REQUEST, "bad app name").into_response();
    }
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        // The log tail: the last lines first, then new ones as they are written.
        let dir = ui.api.logs_dir.join(&app);
        let filter = crate::log_reader::LogFilter::default();
        let (text, offsets) = {
            let (dir, filter) = (dir.clone(), filter.clone());
            tokio::task::spawn_blocking(move || crate::log_reader::read(&dir, &filter, 100))
                .await
                .unwrap_or_default()
        };
        let _ = tx
            .send(Ok(Event::default().event("logreset").data("reset")))
            .await;
        if !text.is_empty() {
            let _ = tx
                .send(Ok(Event::default().event("log").data(text.trim_end())))
                .await;
        }
        let (log_tx, mut log_rx) = mpsc::channel::<String>(256);
        tokio::spawn(crate::log_reader::follow(dir, filter, offsets, log_tx));

        let mut last = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if tx.is_closed() {
                        return;
                    }
                    let Some(session) = still_valid(&ui, &id) else {
                        return expired(&tx).await;
                    };
                    let Some(data) = app_page::gather(&ui, &app).await else {
                        continue;
                    };
                    if let Some(e) = changed(app_page::fragments(&data, &session), &mut last)
                        && tx.send(Ok(e)).await.is_err()
                    {
                        return;
                    }
                }
                Some(line) = log_rx.recv() => {
                    // Lines written together go out together.
                    let mut batch = line;
                    while batch.len() < 64 * 1024 {
                        match log_rx.try_recv() {
                            Ok(more) => batch.push_str(&more),
                            Err(_) => break,
                        }
                    }
                    if tx.send(Ok(Event::default().event("log").data(batch.trim_end()))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    sse(rx)
}

pub async fn flags(State(ui): State<Ui>, Path(app): Path<String>, headers: HeaderMap) -> Response {
    let id = match open(&ui, &headers) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut last = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let Some(session) = still_valid(&ui, &id) else {
                return expired(&tx).await;
            };
            let data = flags_page::gather(&ui, &app).await;
            if let Some(e) = changed(flags_page::fragments(&data, &session), &mut last)
                && tx.send(Ok(e)).await.is_err()
            {
                return;
            }
        }
    });
    sse(rx)
}
