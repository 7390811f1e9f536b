//! The daemon's one error type: what went wrong, typed by kind (the wire's [`ErrorKind`]) so callers
//! decide on the kind and only the HTTP layer turns it into a status code (`http::reply`).
//!
//! Every layer returns it; the message is for a human and says what happened and what to do. It never
//! holds a secret: messages are built from names, versions and store errors, never from values.

pub use slipway_api::ErrorKind;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadRequest, message)
    }

    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// The first line, for a one-line reason (a release's failure, an event).
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<slipway_store::StoreError> for Error {
    fn from(e: slipway_store::StoreError) -> Error {
        Error::internal(e.to_string())
    }
}

impl From<Error> for slipway_api::ApiError {
    fn from(e: Error) -> slipway_api::ApiError {
        slipway_api::ApiError::new(e.kind, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_reason() {
        let e = Error::conflict("a deploy is running\nwait for it");
        assert_eq!(e.first_line(), "a deploy is running");
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(e.to_string(), "a deploy is running\nwait for it");
    }
}
