//! A release's image process → the pods its ReplicaSet runs on Kubernetes (`serve --kubernetes`):
//! the recorded image ID (never the tag), the release's env and resolved secrets, the port, the
//! lock-down and limits, slipway's probes and grace period — what `container_instance.rs` gives
//! Docker, for `slipway-kube`. Pure, so the mapping is tested without a cluster.

use slipway_core::release::Release;
use slipway_core::spec::{ContainerSpec, ProcessSpec};
use slipway_kube::{Key, PodTemplate};
use std::collections::BTreeMap;

/// The pods of `process` in `release`. `secrets` are the resolved values.
pub fn build(
    release: &Release,
    process: &str,
    spec: &ProcessSpec,
    container: &ContainerSpec,
    secrets: BTreeMap<String, String>,
) -> Result<PodTemplate, String> {
    let image = container.image_id.clone().ok_or_else(|| {
        format!(
            "v{} records no image ID for {process} ({}); deploy again so it is resolved",
            release.version, container.image
        )
    })?;
    if let Some(network) = &container.network {
        return Err(format!(
            "{process} of v{} joins the Docker network {network}; on Kubernetes pods share the \
             cluster's network: remove `network` from [processes.{process}]",
            release.version
        ));
    }
    Ok(PodTemplate {
        key: Key {
            app: release.app.clone(),
            release: release.version,
            process: process.to_owned(),
        },
        image,
        command: container.command.clone(),
        env: release.spec.environment(),
        secrets,
        secrets_as_env: container.secrets_as_env,
        port: (process == "web").then_some(container.port),
        readiness: spec.readiness.clone(),
        liveness: spec.liveness.clone(),
        startup: spec.startup.clone(),
        grace: spec.grace,
        no_new_privileges: container.no_new_privileges,
        drop_all_capabilities: container.cap_drop_all,
        cap_add: container.cap_add.clone(),
        read_only: container.read_only,
        user: container.user.clone(),
        memory_bytes: container.memory_bytes,
        nano_cpus: container.nano_cpus,
        placement: release.spec.kubernetes.clone(),
    })
}

/// Why a process without an image cannot run on Kubernetes, with the fix.
pub fn needs_an_image(release: &Release, process: &str) -> String {
    format!(
        "{process} of {} v{} is a command (`cmd`), and on Kubernetes every process runs an image: \
         set `image = \"...\"` (and `port`) in [processes.{process}] of slipway.toml, or deploy \
         with --image; see docs/kubernetes.md",
        release.app, release.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn release() -> Release {
        crate::test_release::release(
            "shop",
            4,
            "[env]\nLOG_LEVEL = \"debug\"\n[processes.web]\nimage = \"shop\"\nport = 9000\n",
        )
    }

    #[test]
    fn pods_run_the_recorded_image_id_with_the_release_env() {
        let release = release();
        let web = &release.spec.processes["web"];
        let mut container = web.container.clone().unwrap();
        container.image_id = Some(ID.into());
        let secrets = BTreeMap::from([("TOKEN".to_owned(), "t".to_owned())]);
        let t = build(&release, "web", web, &container, secrets).unwrap();
        assert_eq!(t.image, ID);
        assert_eq!(t.port, Some(9000));
        assert_eq!(t.env["LOG_LEVEL"], "debug");
        assert_eq!(t.key.release, 4);
        let worker = build(&release, "worker", web, &container, BTreeMap::new()).unwrap();
        assert_eq!(worker.port, None);
    }

    #[test]
    fn an_unresolved_image_or_a_docker_network_is_an_error() {
        let release = release();
        let web = &release.spec.processes["web"];
        let container = web.container.clone().unwrap();
        let err = build(&release, "web", web, &container, BTreeMap::new()).unwrap_err();
        assert!(err.contains("no image ID"), "{err}");
        let mut container = container;
        container.image_id = Some(ID.into());
        container.network = Some("backend".into());
        let err = build(&release, "web", web, &container, BTreeMap::new()).unwrap_err();
        assert!(err.contains("remove `network`"), "{err}");
        assert!(needs_an_image(&release, "worker").contains("image = "));
    }
}
