//! `GET /v1/apps/{app}/series`: the dashboard's per-release time series, asked of the controller.

use super::{Answer, Api, error};
use crate::http::extract::{Json, Path};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slipway_api::ReleaseSeries;

/// `GET /v1/apps/{app}/series`.
pub async fn api(State(api): State<Api>, Path(app): Path<String>) -> Answer {
    match fetch(&api, &app).await? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no app named {app} has been deployed to this daemon"),
        )),
    }
}

/// The app's series from the controller (`None`: no such app).
pub async fn fetch(api: &Api, app: &str) -> Result<Option<Vec<ReleaseSeries>>, Response> {
    let app = app.to_string();
    api.controller
        .ask(|reply| crate::control::controller::Command::Series { app, reply })
        .await
        .map_err(Response::from)
}
