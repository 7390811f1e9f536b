//! An instance's container, from create to remove: run (create, hand over secrets, start, read back
//! the address), inspect, wait for its end, stop with a grace period.

use crate::address;
use crate::create::create_body;
use crate::engine::Engine;
use crate::error::{DockerError, has_status};
use crate::exit::ContainerExit;
use crate::health::Health;
use crate::image::ImageId;
use crate::labels::{self, InstanceLabels};
use crate::secrets::SecretFiles;
use crate::spec::ContainerSpec;
use crate::user::{self, Ids};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
    StopContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

/// A freshly started instance.
#[derive(Clone, Debug)]
pub struct RunningContainer {
    pub id: String,
    pub name: String,
    pub image: ImageId,
    /// Where it answers: `127.0.0.1:<engine-chosen port>`, or its address on a named network. `None`
    /// without a port, or if it already exited (its wait then says how).
    pub address: Option<SocketAddr>,
}

/// A snapshot of one container.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    /// `None` when the labels are not slipway's (or were tampered with).
    pub labels: Option<InstanceLabels>,
    /// The engine's word: created, running, exited, dead, …
    pub state: String,
    pub running: bool,
    /// How it ended, once it is not running.
    pub exit: Option<ContainerExit>,
    /// The image's HEALTHCHECK status, if it has one.
    pub health: Option<Health>,
    pub address: Option<SocketAddr>,
}

impl Engine {
    /// Creates and starts the container for `spec`: named `slipway-<instance>`, labelled, locked down,
    /// its port published on 127.0.0.1, its secrets in place before its process starts. On any
    /// failure nothing is left behind.
    pub async fn run_instance(
        &self,
        spec: &ContainerSpec,
    ) -> Result<RunningContainer, DockerError> {
        spec.validate().map_err(DockerError::InvalidSpec)?;
        let name = spec.labels.container_name();
        let image = self.resolve_image(spec.image.as_str()).await?;
        // Checked before touching the secrets folder, which belongs to that container if it exists.
        match self.docker.inspect_container(&name, None).await {
            Ok(_) => return Err(DockerError::NameInUse { name }),
            Err(err) if has_status(&err, 404) => {}
            Err(err) => return Err(self.error(&format!("inspect container {name}"), err)),
        }
        let secrets = if spec.secrets.is_empty() || spec.secrets_as_env {
            None
        } else {
            Some(SecretFiles::prepare(self.secrets_root(), &name)?)
        };
        let body = create_body(spec, self.owner(), secrets.as_ref().map(SecretFiles::dir));
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            platform: String::new(),
        };
        let id = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(err) => {
                SecretFiles::remove(self.secrets_root(), &name);
                return Err(if has_status(&err, 409) {
                    DockerError::NameInUse { name }
                } else {
                    self.error(&format!("create container {name}"), err)
                });
            }
        };
        let started = async {
            if let Some(files) = &secrets {
                let user = spec.security.user.as_deref().unwrap_or(&image.user);
                let ids = self.container_user(&id, &name, user).await?;
                files.write(&spec.secrets, ids)?;
            }
            self.docker
                .start_container(&id, None)
                .await
                .map_err(|err| self.error(&format!("start container {name}"), err))?;
            let info = self.inspect_instance(&id).await?;
            Ok(RunningContainer {
                id: id.clone(),
                name: name.clone(),
                image: image.id.clone(),
                address: info.address,
            })
        };
        match started.await {
            Ok(running) => Ok(running),
            Err(err) => {
                self.discard(&id, &name).await;
                Err(err)
            }
        }
    }

    /// The container's state, exit, health and address.
    pub async fn inspect_instance(&self, id: &str) -> Result<ContainerInfo, DockerError> {
        let inspect = match self.docker.inspect_container(id, None).await {
            Ok(inspect) => inspect,
            Err(err) if has_status(&err, 404) => {
                return Err(DockerError::ContainerNotFound { id: id.to_owned() });
            }
            Err(err) => return Err(self.error(&format!("inspect container {id}"), err)),
        };
        let state = inspect.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let config = inspect.config.unwrap_or_default();
        let container_labels = config.labels.unwrap_or_default();
        let network = inspect
            .host_config
            .and_then(|host| host.network_mode)
            .filter(|mode| !matches!(mode.as_str(), "default" | "bridge" | ""));
        let address = labels::port(&container_labels).and_then(|port| {
            address::from_inspect(inspect.network_settings.as_ref(), port, network.as_deref())
        });
        Ok(ContainerInfo {
            id: inspect.id.unwrap_or_else(|| id.to_owned()),
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            labels: InstanceLabels::from_map(&container_labels).ok(),
            state: state
                .status
                .map(|status| status.to_string())
                .unwrap_or_default(),
            running,
            exit: (!running).then(|| ContainerExit::from_state(&state)),
            health: Health::from_engine(state.health.as_ref()),
            address,
        })
    }

    /// Resolves when the container is no longer running, with how it ended (exit code, OOM kill).
    /// The caller decides about restarts; see `ContainerExit`'s message for events.
    pub async fn wait_exit(&self, id: &str) -> Result<ContainerExit, DockerError> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut waiting = self.docker.wait_container(id, Some(options));
        match waiting.next().await {
            // bollard turns a non-zero exit into an error; it is still just an exit.
            Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {}
            Some(Err(err)) if has_status(&err, 404) => {
                return Err(DockerError::ContainerNotFound { id: id.to_owned() });
            }
            Some(Err(err)) => return Err(self.error(&format!("wait for container {id}"), err)),
            None => {}
        }
        let info = self.inspect_instance(id).await?;
        info.exit.ok_or_else(|| DockerError::Engine {
            action: format!("wait for container {id}"),
            message: "the wait ended but the container is still running".into(),
        })
    }

    /// `docker stop` (SIGTERM, or the image's STOPSIGNAL; SIGKILL after `grace`, rounded up to whole
    /// seconds), then removes the container and its secrets. Call it after the proxy drained the
    /// instance. Returns how it ended; an already stopped container is just removed, and one that is
    /// gone already is [`DockerError::ContainerNotFound`] (for a retiring instance: done).
    pub async fn stop_instance(
        &self,
        id: &str,
        grace: Duration,
    ) -> Result<ContainerExit, DockerError> {
        let seconds = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0))
            .unwrap_or(i32::MAX);
        let options = StopContainerOptions {
            t: Some(seconds),
            signal: None,
        };
        match self.patient(grace).stop_container(id, Some(options)).await {
            Ok(()) => {}
            Err(err) if has_status(&err, 304) => {}
            Err(err) if has_status(&err, 404) => {
                return Err(DockerError::ContainerNotFound { id: id.to_owned() });
            }
            Err(err) => return Err(self.error(&format!("stop container {id}"), err)),
        }
        let info = self.inspect_instance(id).await?;
        self.remove(id, &info.name).await?;
        Ok(info.exit.unwrap_or(ContainerExit {
            code: -1,
            oom_killed: false,
            error: None,
        }))
    }

    /// Kills and removes a container at once (leftovers, failed starts), with its secrets.
    pub async fn remove_instance(&self, id: &str) -> Result<(), DockerError> {
        let name = match self.inspect_instance(id).await {
            Ok(info) => info.name,
            Err(DockerError::ContainerNotFound { .. }) => return Ok(()),
            Err(err) => return Err(err),
        };
        self.remove(id, &name).await
    }

    async fn remove(&self, id: &str, name: &str) -> Result<(), DockerError> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        let removed = match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // Gone already, or being removed by someone else: either way it is going.
            Err(err) if has_status(&err, 404) || has_status(&err, 409) => Ok(()),
            Err(err) => Err(self.error(&format!("remove container {name}"), err)),
        };
        if !name.is_empty() {
            SecretFiles::remove(self.secrets_root(), name);
        }
        removed
    }

    /// Best-effort cleanup after a failed start; the original error is what the caller reports.
    async fn discard(&self, id: &str, name: &str) {
        if let Err(err) = self.remove(id, name).await {
            tracing::warn!(
                container = name,
                "cannot remove after a failed start: {err}"
            );
        }
    }

    /// The uid/gid the container will run as, reading its `/etc/passwd` and `/etc/group` (from the
    /// created, not yet started, container) when the user is a name.
    async fn container_user(&self, id: &str, name: &str, user: &str) -> Result<Ids, DockerError> {
        let (passwd, group) = if user::needs_passwd(user) {
            (
                self.read_file(id, "/etc/passwd").await?,
                self.read_file(id, "/etc/group").await?,
            )
        } else {
            (None, None)
        };
        user::resolve(user, passwd.as_deref(), group.as_deref()).map_err(|reason| {
            DockerError::Secrets {
                instance: name.to_owned(),
                reason,
            }
        })
    }

    /// A small text file from a container's filesystem; `None` if it does not exist.
    async fn read_file(&self, id: &str, path: &str) -> Result<Option<String>, DockerError> {
        let options = DownloadFromContainerOptions { path: path.into() };
        let mut archive = Vec::new();
        let mut stream = self.docker.download_from_container(id, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(err) if has_status(&err, 404) => return Ok(None),
                Err(err) => return Err(self.error(&format!("read {path} in {id}"), err)),
            }
        }
        let mut entries = tar::Archive::new(&archive[..]);
        let first = entries.entries().ok().and_then(|mut e| e.next()?.ok());
        let Some(mut entry) = first else {
            return Ok(None);
        };
        let mut text = String::new();
        Ok(entry.read_to_string(&mut text).ok().map(|_| text))
    }
}
