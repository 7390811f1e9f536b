//! The API's extractors: axum's `Json`, `Path` and `Query`, except that a request they refuse is
//! answered like every other refusal of the API, with an [`slipway_api::ApiError`] body
//! (`{"kind": "bad_request", "error": "..."}`), not axum's plain-text one. The status stays axum's:
//! 400 for a body that is not JSON or a query or path that does not parse, 415 for a body that is
//! not `Content-Type: application/json`, 422 for JSON that does not fit the request's type, 413 for
//! a body over the limit. The OpenAPI document (`openapi.rs`) lists them for every route that reads
//! a body or a query.
//!
//! `Json` is also the API's JSON answer, as axum's is.

use crate::http::reply::error;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON request body, or a JSON answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Json<T>, Response> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_refusal(rejection)),
        }
    }
}

/// An optional body: none when the request has no `Content-Type`; refused like [`Json`] when it says
/// JSON and is not, or says something else.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Option<Json<T>>, Response> {
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(value) => Ok(value.map(|axum::Json(value)| Json(value))),
            Err(rejection) => Err(json_refusal(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_refusal(rejection: JsonRejection) -> Response {
    error(rejection.status(), rejection.body_text())
}

/// The route's path parameters.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_refusal(rejection)),
        }
    }
}

fn path_refusal(rejection: PathRejection) -> Response {
    error(rejection.status(), rejection.body_text())
}

/// The query string's parameters.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Query<T>, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_refusal(rejection)),
        }
    }
}

fn query_refusal(rejection: QueryRejection) -> Response {
    error(rejection.status(), rejection.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use axum::routing::post;
    use http_body_util::BodyExt;
    use slipway_api::{ApiError, ErrorKind};
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Weight {
        #[allow(dead_code)]
        weight: u32,
    }

    #[derive(serde::Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: Option<usize>,
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/v1/apps/{app}/ramp",
                post(
                    |Path(_): Path<String>, Query(_): Query<Limit>, Json(_): Json<Weight>| async {
                        "taken"
                    },
                ),
            )
            .route(
                "/v1/apps/{app}/promote",
                post(|body: Option<Json<Weight>>| async move {
                    if body.is_some() {
                        "with a body"
                    } else {
                        "without"
                    }
                }),
            )
    }

    async fn send(uri: &str, content_type: Option<&str>, body: &str) -> (StatusCode, Vec<u8>) {
        let mut req = axum::http::Request::post(uri);
        if let Some(t) = content_type {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let response = app()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if status.is_client_error() {
            assert!(json, "{status}: {}", String::from_utf8_lossy(&bytes));
        }
        (status, bytes.to_vec())
    }

    fn refusal(bytes: &[u8]) -> ApiError {
        serde_json::from_slice(bytes).expect("an ApiError body")
    }

    #[tokio::test]
    async fn refused_bodies_answer_with_the_api_error_and_axum_status() {
        let json = Some("application/json");
        let (status, body) = send("/v1/apps/shop/ramp", json, r#"{"weight": 5}"#).await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"taken"[..]));

        for (content_type, body, want) in [
            (json, "{not json", StatusCode::BAD_REQUEST),
            (
                json,
                r#"{"weight": "five"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json, r#"{"weight": -1}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (
                Some("text/plain"),
                r#"{"weight": 5}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (None, r#"{"weight": 5}"#, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ] {
            let (status, bytes) = send("/v1/apps/shop/ramp", content_type, body).await;
            assert_eq!(status, want, "{content_type:?} {body}");
            let e = refusal(&bytes);
            assert_eq!(e.kind, Some(ErrorKind::BadRequest));
            assert!(!e.error.is_empty());
        }
    }

    #[tokio::test]
    async fn refused_queries_and_paths_answer_with_the_api_error() {
        let json = Some("application/json");
        let (status, bytes) = send("/v1/apps/shop/ramp?limit=-1", json, r#"{"weight": 5}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&bytes).kind, Some(ErrorKind::BadRequest));
        // Not UTF-8 once percent-decoded.
        let (status, bytes) = send("/v1/apps/%FF/ramp", json, r#"{"weight": 5}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&bytes).kind, Some(ErrorKind::BadRequest));
    }

    #[tokio::test]
    async fn an_optional_body_may_be_left_out_but_not_malformed() {
        let json = Some("application/json");
        assert_eq!(
            send("/v1/apps/shop/promote", None, "").await,
            (StatusCode::OK, b"without".to_vec())
        );
        assert_eq!(
            send("/v1/apps/shop/promote", json, r#"{"weight": 1}"#).await,
            (StatusCode::OK, b"with a body".to_vec())
        );
        let (status, bytes) = send("/v1/apps/shop/promote", json, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&bytes).kind, Some(ErrorKind::BadRequest));
        let (status, _) = send("/v1/apps/shop/promote", Some("text/plain"), "x").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
