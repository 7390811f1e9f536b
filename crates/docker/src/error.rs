//! What can go wrong on the Docker runtime, said for humans: what happened and what to do about it.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Build errors quote this many of the build's last output lines.
const QUOTED_BUILD_LINES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answers: nothing listens on the socket, the socket is missing, or it did not answer in
    /// time. Returned quickly (a connect timeout of a few seconds), never after a hang.
    #[error(
        "cannot reach the Docker engine at {host}: {reason}. Is dockerd running? slipway talks to \
         $DOCKER_HOST, else unix:///var/run/docker.sock: start the engine (e.g. `systemctl start docker`) \
         or point DOCKER_HOST at its socket"
    )]
    EngineUnreachable { host: String, reason: String },

    /// slipway never pulls behind the user's back: a release runs an image that is already on the engine.
    #[error(
        "image {reference} is not on the Docker engine at {host}: pull it first (`docker pull \
         {reference}`), or let slipway build it (`slipway deploy --build`)"
    )]
    ImageNotFound { reference: String, host: String },

    /// A release's recorded image ID is gone from the engine (removed outside slipway).
    #[error(
        "image {id} of this release is no longer on the Docker engine at {host} (removed outside \
         slipway?): deploy its source again, or load the image back (`docker load`)"
    )]
    ReleaseImageGone { id: String, host: String },

    #[error("container {id} does not exist (any more)")]
    ContainerNotFound { id: String },

    #[error(
        "a container named {name} already exists: an instance with this id is already running or was \
         left behind; adopt it, or remove it (`docker rm -f {name}`)"
    )]
    NameInUse { name: String },

    #[error("{}", describe_build_failure(context, message, output))]
    BuildFailed {
        context: PathBuf,
        message: String,
        /// The build's output, for the user to read; the message quotes its end.
        output: Vec<String>,
    },

    #[error("cannot read the build context {path}: {reason}")]
    BuildContext { path: PathBuf, reason: String },

    #[error("cannot hand secrets to {instance}: {reason}")]
    Secrets { instance: String, reason: String },

    #[error("invalid container spec: {0}")]
    InvalidSpec(String),

    /// Any other refusal of the engine, with the engine's own words.
    #[error("the Docker engine could not {action}: {message}")]
    Engine { action: String, message: String },
}

fn describe_build_failure(context: &std::path::Path, message: &str, output: &[String]) -> String {
    let mut text = format!(
        "docker build of {} failed: {}",
        context.display(),
        message.trim()
    );
    let start = output.len().saturating_sub(QUOTED_BUILD_LINES);
    if !output[start..].is_empty() {
        text.push_str("\nlast build output:");
        for line in &output[start..] {
            let _ = write!(text, "\n  {line}");
        }
    }
    text
}

/// What a bollard error means for us. Connection-level failures (refused, reset, timed out, socket
/// gone) mean the engine is unreachable, whatever the request was: the caller shows one clear message
/// (and keeps the stable release serving) instead of an HTTP client's internals.
pub(crate) fn classify(host: &str, action: &str, err: bollard::errors::Error) -> DockerError {
    use bollard::errors::Error as B;
    match err {
        B::IOError { .. }
        | B::HyperLegacyError { .. }
        | B::RequestTimeoutError
        | B::SocketNotFoundError(_)
        | B::HttpClientError { .. }
        | B::HyperResponseError { .. } => DockerError::EngineUnreachable {
            host: host.to_owned(),
            reason: format!("{action}: {err}"),
        },
        B::DockerResponseServerError { message, .. } => DockerError::Engine {
            action: action.to_owned(),
            message,
        },
        other => DockerError::Engine {
            action: action.to_owned(),
            message: other.to_string(),
        },
    }
}

/// The engine answered with this HTTP status (404: no such object, 409: conflict, 304: nothing to do).
pub(crate) fn has_status(err: &bollard::errors::Error, status: u16) -> bool {
    matches!(err, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_mean_unreachable() {
        let err = classify(
            "unix:///x.sock",
            "list containers",
            bollard::errors::Error::RequestTimeoutError,
        );
        assert!(
            matches!(err, DockerError::EngineUnreachable { .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("unix:///x.sock"), "{message}");
        assert!(message.contains("DOCKER_HOST"), "{message}");
    }

    #[test]
    fn engine_refusals_keep_the_engine_words() {
        let err = classify(
            "unix:///x.sock",
            "start container slipway-a",
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "driver failed programming external connectivity".into(),
            },
        );
        assert_eq!(
            err.to_string(),
            "the Docker engine could not start container slipway-a: driver failed programming external connectivity"
        );
    }

    #[test]
    fn build_failures_quote_the_end_of_the_output() {
        let output: Vec<String> = (1..=20).map(|n| format!("line {n}")).collect();
        let err = DockerError::BuildFailed {
            context: PathBuf::from("/app"),
            message: "The command '/bin/sh -c make' returned a non-zero code: 2\n".into(),
            output,
        };
        let text = err.to_string();
        assert!(text.starts_with("docker build of /app failed: The command"));
        assert!(text.contains("line 20") && text.contains("line 9"));
        assert!(!text.contains("line 8\n"), "{text}");
    }
}
