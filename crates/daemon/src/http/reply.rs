//! How the API answers: JSON bodies, and the one place where an error's kind becomes an HTTP status.

use crate::error::Error;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slipway_api::{ApiError, ErrorKind};

/// A handler's answer: either way a response, the error side built by [`error`] or from an [`Error`].
pub(crate) type Answer = Result<Response, Response>;

/// An error answer with this status; its kind follows from the status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = ErrorKind::from_status(status.as_u16());
    (status, Json(ApiError::new(kind, message))).into_response()
}

pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<Error> for Response {
    fn from(e: Error) -> Response {
        (status_of(e.kind), Json(ApiError::from(e))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_answers_with_its_status_and_says_its_kind() {
        for (e, status) in [
            (Error::bad_request("x"), 400),
            (Error::conflict("x"), 409),
            (Error::not_found("x"), 404),
            (Error::internal("x"), 500),
        ] {
            let kind = e.kind;
            let response = Response::from(e);
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(ErrorKind::from_status(status), kind);
        }
    }
}
