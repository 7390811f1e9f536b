//! The engine's create-container request for a [`ContainerSpec`], as a pure function: every secure
//! default and every override is decided here, where a unit test can see it.

use crate::spec::{ContainerSpec, Network, SECRETS_DIR};
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use std::collections::HashMap;
use std::path::Path;

/// Scratch space on a read-only root filesystem. `noexec`: nothing downloaded at run time gets run.
const TMP_TMPFS: &str = "rw,noexec,nosuid,size=64m";
/// The engine keeps a bounded log per container (json-file, rotated), which is what `logs` reads.
const LOG_MAX_SIZE: &str = "10m";
const LOG_MAX_FILES: &str = "3";

/// The create request. `secrets_source` is the host folder (on a tmpfs) holding this instance's secret
/// files, mounted read-only at `/run/secrets`; `None` when there are none or they go in the env.
pub fn create_body(
    spec: &ContainerSpec,
    owner: &str,
    secrets_source: Option<&Path>,
) -> ContainerCreateBody {
    let port_key = spec.port.map(|port| format!("{port}/tcp"));
    let mut host = HostConfig {
        // slipway restarts crashed instances itself, with backoff and a reason in its events.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".into(), LOG_MAX_SIZE.into()),
                ("max-file".into(), LOG_MAX_FILES.into()),
            ])),
        }),
        ..HostConfig::default()
    };

    match &spec.network {
        Network::Loopback { host_port } => {
            if let Some(key) = &port_key {
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    // Empty: the engine picks a free port.
                    host_port: Some(host_port.map(|p| p.to_string()).unwrap_or_default()),
                };
                host.port_bindings = Some(HashMap::from([(key.clone(), Some(vec![binding]))]));
            }
        }
        Network::Named(name) => host.network_mode = Some(name.clone()),
    }

    let security = &spec.security;
    if security.no_new_privileges {
        host.security_opt = Some(vec!["no-new-privileges:true".into()]);
    }
    if security.drop_all_capabilities {
        host.cap_drop = Some(vec!["ALL".into()]);
    }
    if !security.cap_add.is_empty() {
        host.cap_add = Some(security.cap_add.clone());
    }
    if security.read_only {
        host.readonly_rootfs = Some(true);
        host.tmpfs = Some(HashMap::from([("/tmp".into(), TMP_TMPFS.into())]));
    }
    if let Some(memory) = spec.limits.memory_bytes {
        host.memory = Some(memory);
        host.memory_swap = Some(memory);
    }
    host.nano_cpus = spec.limits.nano_cpus;

    if let Some(source) = secrets_source {
        host.mounts = Some(vec![Mount {
            target: Some(SECRETS_DIR.into()),
            source: Some(source.display().to_string()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Mount::default()
        }]);
    }

    ContainerCreateBody {
        image: Some(spec.image.as_str().to_owned()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(env(spec)),
        user: security.user.clone(),
        labels: Some(spec.labels.to_map(owner, spec.port)),
        exposed_ports: port_key.map(|key| vec![key]),
        stop_signal: spec.stop_signal.clone(),
        host_config: Some(host),
        ..ContainerCreateBody::default()
    }
}

/// `NAME=value` lines: the release env, then (unless secrets are files) the secrets, then `PORT` and
/// the identity, set last so a release cannot spoof them.
fn env(spec: &ContainerSpec) -> Vec<String> {
    let mut env = spec.env.clone();
    for (name, value) in &spec.secrets {
        if spec.secrets_as_env {
            env.insert(name.clone(), value.clone());
        } else {
            // The `_FILE` convention of many official images; never overrides what the release set.
            env.entry(format!("{name}_FILE"))
                .or_insert_with(|| format!("{SECRETS_DIR}/{name}"));
        }
    }
    if let Some(port) = spec.port {
        env.insert("PORT".into(), port.to_string());
    }
    let labels = &spec.labels;
    env.insert("SLIPWAY_INSTANCE".into(), labels.instance.clone());
    env.insert("SLIPWAY_APP".into(), labels.app.clone());
    env.insert("SLIPWAY_RELEASE".into(), format!("v{}", labels.release));
    env.insert("SLIPWAY_PROCESS".into(), labels.process.clone());
    env.into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageId;
    use crate::labels::InstanceLabels;
    use crate::spec::{Limits, Security};
    use std::collections::BTreeMap;

    const IMAGE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn spec() -> ContainerSpec {
        ContainerSpec {
            labels: InstanceLabels {
                app: "shop".into(),
                release: 3,
                process: "web".into(),
                instance: "shop-v3-web-1".into(),
            },
            image: ImageId::parse(IMAGE).unwrap(),
            command: None,
            entrypoint: None,
            env: BTreeMap::from([("LOG_LEVEL".into(), "info".into())]),
            secrets: BTreeMap::from([("DATABASE_URL".into(), "postgres://s3cret".into())]),
            secrets_as_env: false,
            port: Some(8080),
            network: Network::default(),
            security: Security::default(),
            limits: Limits::default(),
            stop_signal: None,
        }
    }

    fn host(body: &ContainerCreateBody) -> &HostConfig {
        body.host_config.as_ref().unwrap()
    }

    #[test]
    fn defaults_are_locked_down() {
        let body = create_body(&spec(), "d1", None);
        let host = host(&body);
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges:true".to_owned()][..])
        );
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(host.cap_add, None);
        assert_eq!(host.readonly_rootfs, None);
        assert_eq!(body.user, None, "the image's USER is kept");
        assert_eq!(
            host.restart_policy.as_ref().unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(body.image.as_deref(), Some(IMAGE), "runs by ID");
    }

    #[test]
    fn each_default_can_be_overridden() {
        let mut spec = spec();
        spec.security = Security {
            no_new_privileges: false,
            drop_all_capabilities: false,
            cap_add: vec!["NET_BIND_SERVICE".into()],
            read_only: true,
            user: Some("1000:1000".into()),
        };
        spec.limits = Limits {
            memory_bytes: Some(256 << 20),
            nano_cpus: Some(500_000_000),
        };
        let body = create_body(&spec, "d1", None);
        let host = host(&body);
        assert_eq!(host.security_opt, None);
        assert_eq!(host.cap_drop, None);
        assert_eq!(
            host.cap_add.as_deref(),
            Some(&["NET_BIND_SERVICE".to_owned()][..])
        );
        assert_eq!(host.readonly_rootfs, Some(true));
        assert!(host.tmpfs.as_ref().unwrap()["/tmp"].contains("noexec"));
        assert_eq!(host.memory, Some(256 << 20));
        assert_eq!(
            host.memory_swap,
            Some(256 << 20),
            "no swap beyond the limit"
        );
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.stop_signal, None, "the image's STOPSIGNAL is kept");
        spec.stop_signal = Some("SIGINT".into());
        assert_eq!(
            create_body(&spec, "d1", None).stop_signal.as_deref(),
            Some("SIGINT")
        );
    }

    #[test]
    fn the_port_is_published_on_loopback_only() {
        let body = create_body(&spec(), "d1", None);
        let bindings = host(&body).port_bindings.as_ref().unwrap();
        let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some(""), "engine-chosen");
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_owned()]));
        let env = body.env.unwrap();
        assert!(env.contains(&"PORT=8080".to_owned()));

        let mut pinned = spec();
        pinned.network = Network::Loopback {
            host_port: Some(41000),
        };
        let body = create_body(&pinned, "d1", None);
        let bindings = host(&body).port_bindings.as_ref().unwrap();
        assert_eq!(
            bindings["8080/tcp"].as_ref().unwrap()[0]
                .host_port
                .as_deref(),
            Some("41000")
        );
    }

    #[test]
    fn a_named_network_publishes_nothing() {
        let mut spec = spec();
        spec.network = Network::Named("backend".into());
        let body = create_body(&spec, "d1", None);
        assert_eq!(host(&body).network_mode.as_deref(), Some("backend"));
        assert_eq!(host(&body).port_bindings, None);
    }

    #[test]
    fn secrets_are_files_not_env_unless_asked() {
        let body = create_body(&spec(), "d1", Some(Path::new("/dev/shm/s/slipway-x")));
        let env = body.env.clone().unwrap();
        assert!(env.iter().all(|line| !line.contains("s3cret")), "{env:?}");
        assert!(env.contains(&"DATABASE_URL_FILE=/run/secrets/DATABASE_URL".to_owned()));
        let mount = &host(&body).mounts.as_ref().unwrap()[0];
        assert_eq!(mount.target.as_deref(), Some("/run/secrets"));
        assert_eq!(mount.source.as_deref(), Some("/dev/shm/s/slipway-x"));
        assert_eq!(mount.read_only, Some(true));

        let mut as_env = spec();
        as_env.secrets_as_env = true;
        let env = create_body(&as_env, "d1", None).env.unwrap();
        assert!(env.contains(&"DATABASE_URL=postgres://s3cret".to_owned()));
    }

    #[test]
    fn identity_and_port_cannot_be_spoofed_by_the_release() {
        let mut spec = spec();
        spec.env.insert("PORT".into(), "1".into());
        spec.env.insert("SLIPWAY_INSTANCE".into(), "other".into());
        let env = create_body(&spec, "d1", None).env.unwrap();
        assert!(env.contains(&"PORT=8080".to_owned()));
        assert!(env.contains(&"SLIPWAY_INSTANCE=shop-v3-web-1".to_owned()));
        assert!(env.contains(&"SLIPWAY_RELEASE=v3".to_owned()));
        assert!(env.contains(&"LOG_LEVEL=info".to_owned()));
    }

    #[test]
    fn labels_name_the_instance_and_owner() {
        let labels = create_body(&spec(), "d1", None).labels.unwrap();
        assert_eq!(labels["slipway.app"], "shop");
        assert_eq!(labels["slipway.release"], "v3");
        assert_eq!(labels["slipway.process"], "web");
        assert_eq!(labels["slipway.instance"], "shop-v3-web-1");
        assert_eq!(labels["slipway.owner"], "d1");
        assert_eq!(labels["slipway.port"], "8080");
    }
}
