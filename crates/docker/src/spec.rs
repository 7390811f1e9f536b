//! What to run for one instance: the image (by ID), its command, env and secrets, how it is reached,
//! and how tightly it is locked down. Built by the controller from a release's process spec; the
//! defaults are the seeds' container-security table, each one overridable.

use crate::image::ImageId;
use crate::labels::InstanceLabels;
use std::collections::BTreeMap;

/// Where secret files appear inside the container.
pub const SECRETS_DIR: &str = "/run/secrets";

#[derive(Clone, Debug)]
pub struct ContainerSpec {
    pub labels: InstanceLabels,
    /// Run by ID (`sha256:…`), never by tag: a tag moved after the release was recorded changes nothing.
    pub image: ImageId,
    /// Replaces the image's `CMD` (its `ENTRYPOINT` is kept); `None` runs the image as built. Passed as
    /// argv, without a shell: most minimal images have none.
    pub command: Option<Vec<String>>,
    /// Replaces the image's `ENTRYPOINT`; `None` keeps it. Only a one-off command sets it (its shell).
    pub entrypoint: Option<Vec<String>>,
    /// The release's env. `PORT` and the `SLIPWAY_*` identity are set over it.
    pub env: BTreeMap<String, String>,
    /// Resolved secret values by name. Written as files `/run/secrets/<NAME>` (tmpfs, 0400, owned by
    /// the container's user) and announced as `<NAME>_FILE=/run/secrets/<NAME>` in the env, unless
    /// `secrets_as_env`.
    pub secrets: BTreeMap<String, String>,
    /// Pass secrets as plain env vars instead (visible in `docker inspect`): only when asked for.
    pub secrets_as_env: bool,
    /// The port the process listens on inside the container, exported as `PORT`; `None` for
    /// processes that take no traffic.
    pub port: Option<u16>,
    pub network: Network,
    pub security: Security,
    pub limits: Limits,
    /// The signal `docker stop` sends first (`SIGINT`, ...); `None` keeps the image's `STOPSIGNAL`
    /// (SIGTERM unless it says otherwise).
    pub stop_signal: Option<String>,
}

/// How the instance is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// The engine's default bridge; `port` is published on 127.0.0.1, on `host_port` or, when `None`,
    /// a port the engine picks (read back after start). Asking again for the port a crashed
    /// container had keeps its address for the proxy.
    Loopback { host_port: Option<u16> },
    /// A user-defined network (or `none`, `host`): nothing is published; the instance is reached at
    /// its address on that network.
    Named(String),
}

impl Default for Network {
    fn default() -> Network {
        Network::Loopback { host_port: None }
    }
}

/// Lock-down settings. `Default` is the secure choice for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// `no-new-privileges`: setuid binaries cannot raise privileges.
    pub no_new_privileges: bool,
    /// `cap-drop ALL`, then add back `cap_add` (e.g. `NET_BIND_SERVICE`).
    pub drop_all_capabilities: bool,
    pub cap_add: Vec<String>,
    /// Read-only root filesystem, with a tmpfs on `/tmp` so the app still has scratch space.
    pub read_only: bool,
    /// Run as this user (`uid[:gid]` or a name); `None` keeps the image's `USER`.
    pub user: Option<String>,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            no_new_privileges: true,
            drop_all_capabilities: true,
            cap_add: Vec::new(),
            read_only: false,
            user: None,
        }
    }
}

/// Resource limits; `None` leaves the engine's default (unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Hard memory limit; swap is not allowed beyond it, so hitting it is an OOM kill, not a slowdown.
    pub memory_bytes: Option<i64>,
    /// CPU quota in billionths of a CPU (`cpus = 0.5` → 500 000 000).
    pub nano_cpus: Option<i64>,
}

impl ContainerSpec {
    /// Checks what the engine would reject with a less helpful message, or what would break the
    /// secrets' file names.
    pub fn validate(&self) -> Result<(), String> {
        if !crate::engine::is_label_safe(&self.labels.instance) {
            return Err(format!(
                "instance id {:?}: use letters, digits, '.', '_' and '-'",
                self.labels.instance
            ));
        }
        for name in self.secrets.keys() {
            let ok = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(format!(
                    "secret name {name:?} cannot be a file name: use letters, digits, '.', '_' and '-'"
                ));
            }
        }
        for cap in &self.security.cap_add {
            if cap.is_empty() || !cap.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "capability {cap:?}: use a name like NET_BIND_SERVICE"
                ));
            }
        }
        if let Network::Named(name) = &self.network
            && name.trim().is_empty()
        {
            return Err("network name is empty".into());
        }
        Ok(())
    }
}
