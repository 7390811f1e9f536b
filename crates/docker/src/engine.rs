//! The connection to one Docker engine, and who we are on it.
//!
//! Every container and image slipway creates carries the `slipway.owner` label with this engine
//! handle's owner, so two daemons (or parallel tests) sharing one engine never adopt, stop or prune
//! each other's things.

use crate::error::{DockerError, classify};
use bollard::Docker;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the engine is when neither the config nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// A missing or wedged engine must be a prompt, clear error, not a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds every request until the engine starts answering. Streams (logs, wait, build output) are not
/// cut by it: the engine sends their headers at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach the engine and label what we create on it.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`; `None`: `$DOCKER_HOST`, else
    /// [`DEFAULT_HOST`].
    pub host: Option<String>,
    /// The `slipway.owner` label value: one per daemon (e.g. derived from its state dir). Letters,
    /// digits, `.`, `_` and `-`.
    pub owner: String,
    /// A folder on a tmpfs (e.g. under `/dev/shm` or `/run`) where each container's secret files are
    /// written before it starts; bind-mounted read-only as `/run/secrets`. Created if missing.
    pub secrets_root: PathBuf,
}

/// A connected engine. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    host: String,
    owner: String,
    secrets_root: PathBuf,
}

impl Engine {
    /// Connects and checks, within a few seconds, that an engine answers (negotiating the API version,
    /// so older engines such as Debian 12's 20.10 work). Fails with [`DockerError::EngineUnreachable`].
    pub async fn connect(config: EngineConfig) -> Result<Engine, DockerError> {
        let host = config
            .host
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .filter(|host| !host.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        if !is_label_safe(&config.owner) {
            return Err(DockerError::InvalidSpec(format!(
                "owner {:?}: use letters, digits, '.', '_' and '-'",
                config.owner
            )));
        }
        let unreachable = |reason: String| DockerError::EngineUnreachable {
            host: host.clone(),
            reason,
        };
        // bollard would only fail on the first request; a missing socket deserves its own words.
        if let Some(path) = host.strip_prefix("unix://")
            && !Path::new(path).exists()
        {
            return Err(unreachable(format!("there is no socket at {path}")));
        }
        let docker = Docker::connect_with_host(&host)
            .map_err(|err| unreachable(err.to_string()))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(err)) => return Err(unreachable(err.to_string())),
            Ok(Ok(docker)) => docker,
        };
        Ok(Engine {
            docker,
            host,
            owner: config.owner,
            secrets_root: config.secrets_root,
        })
    }

    /// The engine's address, as used (for messages and `slipway status`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `slipway.owner` label this handle puts on, and filters by.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub(crate) fn secrets_root(&self) -> &Path {
        &self.secrets_root
    }

    /// The engine's words for a failed request, or "unreachable" when the connection itself failed.
    pub(crate) fn error(&self, action: &str, err: bollard::errors::Error) -> DockerError {
        classify(&self.host, action, err)
    }

    /// The same connection with a longer request timeout, for requests that legitimately take long
    /// before answering (`docker stop` waits out the grace period).
    pub(crate) fn patient(&self, at_least: Duration) -> Docker {
        self.docker.clone().with_timeout(at_least + REQUEST_TIMEOUT)
    }
}

/// Label values we filter on must not need quoting.
pub(crate) fn is_label_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
