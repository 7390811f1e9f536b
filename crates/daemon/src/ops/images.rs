//! Images at deploy: `--build` and `--image` applied, then every image process's reference resolved to
//! the image ID the release records (on Kubernetes, an image named with its registry to
//! `repository@digest`, which the nodes pull: `registry.rs`). A release never runs a tag: rollback, retry, `scale` and `config
//! set` reuse the recorded IDs, so they run exactly the bits that were deployed. Before such a reuse,
//! the IDs are checked to still be on the engine. An unreachable engine or a missing image is a deploy
//! error within seconds, before anything is recorded or started: the stable release keeps serving.

use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_core::spec::AppSpec;
use slipway_docker::{BuildRequest, DockerError};

/// What `--image` / `--build` asked for.
#[derive(Debug, Default, Clone)]
pub struct ImageOverride {
    pub image: Option<String>,
    pub build: bool,
}

/// What resolution did, for the release's events.
pub struct Resolved {
    pub notes: Vec<String>,
}

impl Deployer {
    /// Applies `over` to `spec` and records each image process's image ID in it.
    pub(crate) async fn resolve_images(
        &self,
        spec: &mut AppSpec,
        over: &ImageOverride,
    ) -> Result<Resolved, Error> {
        let mut notes = Vec::new();
        if over.image.is_some() || over.build {
            let flag = if over.build { "--build" } else { "--image" };
            if over.image.is_some() && over.build {
                return Err(Error::bad_request(
                    "--image and --build both name web's image: use one",
                ));
            }
            let Some(web) = spec.processes.get("web").and_then(|w| w.container.as_ref()) else {
                return Err(Error::bad_request(format!(
                    "{flag} replaces web's image, but [processes.web] runs a command: add image = \"{}:latest\" \
                     (with its port, limits...) to [processes.web] in slipway.toml",
                    spec.app
                )));
            };
            let configured = web.image.clone();
            let (reference, id) = match &over.image {
                Some(image) => (image.trim().to_owned(), None),
                None => {
                    let built = self.build_image(spec).await?;
                    notes.push(format!(
                        "built {} ({}) from {}",
                        built.tag,
                        built.id,
                        spec.artifact.path.join("Dockerfile").display()
                    ));
                    (built.tag, Some(built.id.to_string()))
                }
            };
            // Every process that runs the same image as web (a worker from the app's image) follows it.
            for container in spec
                .processes
                .values_mut()
                .filter_map(|p| p.container.as_mut())
                .filter(|c| c.image == configured)
            {
                container.image = reference.clone();
                container.image_id = id.clone();
            }
        }
        if !spec.uses_containers() {
            return Ok(Resolved { notes });
        }
        let mut engine = None;
        let placement = spec.kubernetes.clone();
        for (name, process) in spec.processes.iter_mut() {
            let Some(container) = process.container.as_mut() else {
                continue;
            };
            if container.image_id.is_some() {
                continue;
            }
            if self.on_kubernetes
                && let Some(pinned) = self.pin_at_registry(&container.image, &placement).await?
            {
                notes.push(format!("{name} runs {} = {pinned}", container.image));
                container.image_id = Some(pinned);
                continue;
            }
            if engine.is_none() {
                engine = Some(self.docker.engine().await.map_err(refusal)?);
            }
            let Some(engine) = &engine else { continue };
            let resolved = engine
                .resolve_image(&container.image)
                .await
                .map_err(refusal)?;
            notes.push(format!("{name} runs {} = {}", container.image, resolved.id));
            container.image_id = Some(resolved.id.to_string());
        }
        Ok(Resolved { notes })
    }

    /// On Kubernetes, an image named with its registry (`ghcr.io/team/shop:v2`) or by digest runs as
    /// `repository@digest`, which every node pulls: the digest as written, or the one the registry
    /// says the tag names now. `None`: a short name (`shop:v2`), an image of the engine here, as on
    /// Docker (its ID then runs, on nodes that hold it).
    async fn pin_at_registry(
        &self,
        image: &str,
        placement: &slipway_core::spec::KubernetesSpec,
    ) -> Result<Option<String>, Error> {
        let reference = slipway_core::image_ref::ImageRef::parse(image)
            .map_err(|problem| Error::bad_request(format!("image \"{image}\" {problem}")))?;
        if let Some(digest) = &reference.digest {
            return Ok(Some(reference.pinned(digest)));
        }
        if reference.domain.is_none() {
            return Ok(None);
        }
        let http = crate::http_client::new();
        let mut asked = crate::registry::digest(&http, &reference, None).await;
        // Asked anonymously first: the pull secrets are read only for a registry that wants a login.
        if let Err(crate::registry::RegistryError::NeedsCredentials { .. }) = &asked
            && let Some((username, password)) = self.registry_login(placement, &reference).await?
        {
            asked = crate::registry::digest(&http, &reference, Some((&username, &password))).await;
        }
        let digest = asked.map_err(|err| match err {
            crate::registry::RegistryError::Unreachable { .. } => Error::conflict(err.to_string()),
            _ => Error::bad_request(err.to_string()),
        })?;
        Ok(Some(reference.pinned(&digest)))
    }

    /// The login the app's `[kubernetes] image_pull_secrets` hold for `reference`'s registry.
    #[cfg(feature = "kubernetes")]
    async fn registry_login(
        &self,
        placement: &slipway_core::spec::KubernetesSpec,
        reference: &slipway_core::image_ref::ImageRef,
    ) -> Result<Option<(String, String)>, Error> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        if placement.image_pull_secrets.is_empty() {
            return Ok(None);
        }
        let login = cluster
            .registry_login(
                placement.namespace.as_deref(),
                &placement.image_pull_secrets,
                reference.registry(),
            )
            .await
            .map_err(Error::bad_request)?;
        Ok(login.map(|l| (l.username, l.password)))
    }

    #[cfg(not(feature = "kubernetes"))]
    async fn registry_login(
        &self,
        _placement: &slipway_core::spec::KubernetesSpec,
        _reference: &slipway_core::image_ref::ImageRef,
    ) -> Result<Option<(String, String)>, Error> {
        Ok(None)
    }

    /// Before a recorded spec runs again (rollback, retry): its images must still be on the engine.
    /// (Images pinned by digest are the nodes' to pull from their registry.)
    pub(crate) async fn check_images(&self, spec: &AppSpec, version: u64) -> Result<(), Error> {
        let mut ids = spec.image_ids();
        ids.retain(|id| !id.contains('@'));
        if ids.is_empty() {
            return Ok(());
        }
        let engine = self.docker.engine().await.map_err(refusal)?;
        for id in ids {
            engine.resolve_image(&id).await.map_err(|err| match err {
                DockerError::ReleaseImageGone { .. } => {
                    Error::conflict(format!("v{version} cannot run again: {err}"))
                }
                other => refusal(other),
            })?;
        }
        Ok(())
    }

    async fn build_image(&self, spec: &AppSpec) -> Result<slipway_docker::BuiltImage, Error> {
        let engine = self.docker.engine().await.map_err(refusal)?;
        let request = BuildRequest {
            context_dir: spec.artifact.path.clone(),
            dockerfile: "Dockerfile".into(),
            repository: spec.app.clone(),
            app: spec.app.clone(),
        };
        engine.build(&request).await.map_err(refusal)
    }
}

/// The engine's problems are the deploy's: said as they are, nothing recorded. An unreachable engine
/// conflicts with what the release needs, like a held lock: try again once it answers.
fn refusal(err: DockerError) -> Error {
    match err {
        DockerError::EngineUnreachable { .. } => Error::conflict(err.to_string()),
        DockerError::ImageNotFound { .. }
        | DockerError::ReleaseImageGone { .. }
        | DockerError::BuildFailed { .. }
        | DockerError::BuildContext { .. }
        | DockerError::InvalidSpec(_) => Error::bad_request(err.to_string()),
        other => Error::internal(other.to_string()),
    }
}
