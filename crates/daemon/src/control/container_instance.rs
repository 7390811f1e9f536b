//! A release's image process → what the container supervisor runs for one instance: the recorded
//! image ID (never the tag), the release's env and resolved secrets, the port, the lock-down and the
//! limits, and slipway's probes and grace period. Pure, so the mapping is tested without an engine.

use slipway_core::release::Release;
use slipway_core::spec::{ContainerSpec, ProcessSpec, StopSignal};
use slipway_docker::{ContainerInstance, ImageId, InstanceLabels, Limits, Network, Security};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The instance `id` of `process` in `release`. `secrets` are the resolved values.
pub fn build(
    release: &Release,
    process: &str,
    spec: &ProcessSpec,
    container: &ContainerSpec,
    id: &str,
    secrets: BTreeMap<String, String>,
    log_path: PathBuf,
) -> Result<ContainerInstance, String> {
    let recorded = container.image_id.as_deref().ok_or_else(|| {
        format!(
            "v{} records no image ID for {process} ({}); deploy again so it is resolved",
            release.version, container.image
        )
    })?;
    let image = ImageId::parse(recorded)?;
    let web = process == "web";
    let network = match &container.network {
        Some(name) => Network::Named(name.clone()),
        None => Network::Loopback { host_port: None },
    };
    Ok(ContainerInstance {
        spec: slipway_docker::ContainerSpec {
            labels: InstanceLabels {
                app: release.app.clone(),
                release: release.version,
                process: process.to_owned(),
                instance: id.to_owned(),
            },
            image,
            command: container.command.clone(),
            entrypoint: None,
            env: release.spec.environment(),
            secrets,
            secrets_as_env: container.secrets_as_env,
            port: web.then_some(container.port),
            network,
            security: Security {
                no_new_privileges: container.no_new_privileges,
                drop_all_capabilities: container.cap_drop_all,
                cap_add: container.cap_add.clone(),
                read_only: container.read_only,
                user: container.user.clone(),
            },
            limits: Limits {
                memory_bytes: container.memory_bytes,
                nano_cpus: container.nano_cpus,
            },
            // The default keeps the image's own STOPSIGNAL, which its authors chose.
            stop_signal: (spec.stop_signal != StopSignal::default())
                .then(|| spec.stop_signal.name().to_owned()),
        },
        readiness: spec.readiness.clone(),
        liveness: spec.liveness.clone(),
        startup: spec.startup.clone(),
        grace: spec.grace,
        log_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn release(container: ContainerSpec) -> Release {
        let text =
            "app = \"shop\"\n[env]\nLOG_LEVEL = \"debug\"\n[processes.web]\nimage = \"shop\"\n";
        let mut spec =
            slipway_config::parse(text, std::path::Path::new("/a/slipway.toml")).unwrap();
        let web = spec.processes.get_mut("web").unwrap();
        web.container = Some(container);
        Release {
            app: "shop".into(),
            version: 4,
            label: None,
            artifact: "sha256:a".into(),
            spec,
            created_at: 0,
            created_by: "t".into(),
            message: None,
            rollback_of: None,
            status: slipway_core::release::ReleaseStatus::Pending,
            reason: None,
        }
    }

    #[test]
    fn the_recorded_image_id_runs_not_the_tag() {
        let mut container = ContainerSpec::new("shop:latest", 9000);
        container.image_id = Some(ID.into());
        container.memory_bytes = Some(64 << 20);
        container.cap_add = vec!["NET_BIND_SERVICE".into()];
        let release = release(container.clone());
        let web = &release.spec.processes["web"];
        let secrets = BTreeMap::from([("TOKEN".to_owned(), "t".to_owned())]);
        let built = build(
            &release,
            "web",
            web,
            &container,
            "shop-v4-web-1",
            secrets,
            "/l".into(),
        )
        .unwrap();
        assert_eq!(built.spec.image.as_str(), ID);
        assert_eq!(built.spec.port, Some(9000));
        assert_eq!(built.spec.labels.release, 4);
        assert_eq!(built.spec.env["LOG_LEVEL"], "debug");
        assert_eq!(built.spec.secrets["TOKEN"], "t");
        assert!(!built.spec.secrets_as_env);
        assert!(built.spec.security.drop_all_capabilities);
        assert_eq!(built.spec.limits.memory_bytes, Some(64 << 20));
        assert_eq!(built.spec.network, Network::Loopback { host_port: None });
        assert_eq!(
            built.spec.stop_signal, None,
            "the image's STOPSIGNAL is kept"
        );
        assert_eq!(built.grace, web.grace);
        // A worker gets no port.
        let worker = build(
            &release,
            "worker",
            web,
            &container,
            "w",
            BTreeMap::new(),
            "/l".into(),
        )
        .unwrap();
        assert_eq!(worker.spec.port, None);
    }

    #[test]
    fn an_unresolved_image_is_an_error_not_a_tag_run() {
        let container = ContainerSpec::new("shop:latest", 8080);
        let release = release(container.clone());
        let web = &release.spec.processes["web"];
        let err = build(
            &release,
            "web",
            web,
            &container,
            "x",
            BTreeMap::new(),
            "/l".into(),
        )
        .unwrap_err();
        assert!(err.contains("no image ID"), "{err}");
    }
}
