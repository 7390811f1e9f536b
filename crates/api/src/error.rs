//! A refused request, as the daemon answers it and the CLI reads it: a kind (what sort of failure,
//! which decides the HTTP status) and a message for a human (what happened and what to do).

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// What sort of failure: the one thing a program acts on. The HTTP status follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong: fix it and ask again.
    BadRequest,
    /// Not allowed with the state as it is now (a deploy in progress, a lock held): retry later.
    Conflict,
    /// No such app, release, job or flag.
    NotFound,
    /// The daemon failed: its log says more.
    Internal,
    /// The daemon cannot take it now (it is shutting down): ask again when it is back.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status this kind is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::NotFound => 404,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }

    /// The kind an HTTP status stands for, for answers from a daemon that sent no `kind`.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            404 => ErrorKind::NotFound,
            409 | 423 | 429 => ErrorKind::Conflict,
            400..=499 => ErrorKind::BadRequest,
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// The body of every error answer: `{"kind": "conflict", "error": "app shop is being deployed by ..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Absent in answers that are not the daemon's own (a proxy in between, an older daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    pub error: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind: Some(kind),
            error: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_status() {
        for kind in [
            ErrorKind::BadRequest,
            ErrorKind::Conflict,
            ErrorKind::NotFound,
            ErrorKind::Internal,
            ErrorKind::Unavailable,
        ] {
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
        }
    }

    #[test]
    fn the_kind_is_spelled_in_snake_case_and_may_be_missing() {
        let e = ApiError::new(ErrorKind::NotFound, "no app shop");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"kind":"not_found","error":"no app shop"}"#);
        let old: ApiError = serde_json::from_str(r#"{"error":"x"}"#).unwrap();
        assert_eq!(old.kind, None);
    }
}
