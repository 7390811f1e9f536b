//! What one ReplicaSet runs — a process of a release — as Kubernetes objects: the ReplicaSet (its pods
//! from the recorded image ID, slipway's probes as the kubelet's, the lock-down and limits), the
//! ConfigMap of the release's env (immutable, like the release) its pods take their env from, and the
//! Secret they mount as files. Pure, so the mapping is tested without a cluster.
//!
//! The secret values are only in the Secret (never in the pod template, the log, or an error).

use crate::names::{self, CONTAINER, Key};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, LocalObjectReference,
    ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    Secret, SecretKeySelector, SecretVolumeSource, SecurityContext, TCPSocketAction, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use slipway_core::spec::{KubernetesSpec, ProbeCheck, ProbeSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where secret files are mounted, as in a container on Docker.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Everything the pods of one (app, release, process) share. Built by the controller from the
/// release; one instance is one pod of it.
#[derive(Clone)]
pub struct PodTemplate {
    pub key: Key,
    /// What the release recorded, never a tag: `repository@sha256:…` (pulled from its registry) or
    /// an image ID `sha256:…` (run only on nodes that hold it).
    pub image: String,
    /// Replaces the image's `CMD` (its `ENTRYPOINT` stays).
    pub command: Option<Vec<String>>,
    /// The release's env (without secrets).
    pub env: BTreeMap<String, String>,
    /// Resolved secret values: a Secret, mounted as files (or as env with `secrets_as_env`).
    pub secrets: BTreeMap<String, String>,
    pub secrets_as_env: bool,
    /// The port the process listens on (web only), exported as `PORT`.
    pub port: Option<u16>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub startup: Option<ProbeSpec>,
    pub grace: Duration,
    pub no_new_privileges: bool,
    pub drop_all_capabilities: bool,
    pub cap_add: Vec<String>,
    pub read_only: bool,
    /// `uid[:gid]`; Kubernetes cannot run a user by name.
    pub user: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    /// The app's `[kubernetes]` table: node selector, tolerations, service account, pull secrets,
    /// requests.
    pub placement: KubernetesSpec,
}

impl std::fmt::Debug for PodTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodTemplate")
            .field("key", &self.key)
            .field("image", &self.image)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The objects for a template, owned by `owner`, starting at `replicas` pods.
pub struct Objects {
    pub replica_set: ReplicaSet,
    /// The release's env, named like the ReplicaSet; `None` when it has none.
    pub config: Option<ConfigMap>,
    /// `None` when the release has no secrets.
    pub secret: Option<Secret>,
}

impl PodTemplate {
    pub fn objects(&self, owner: &str, replicas: i32) -> Result<Objects, String> {
        let name = self.key.object_name(owner);
        let selector = self.key.selector(owner);
        let pod_spec = self.pod_spec(&name)?;
        // The release hash names this exact pod template, with the env its ConfigMap gives it: two
        // templates of one key never share pods.
        let hash = names::short_hash(
            serde_json::to_string(&(&pod_spec, &self.env))
                .map_err(|e| e.to_string())?
                .as_bytes(),
        );
        let mut labels = selector.clone();
        labels.insert(names::RELEASE_HASH.to_owned(), hash);
        let mut object_labels = labels.clone();
        object_labels.insert(names::MANAGED_BY.to_owned(), "slipway".to_owned());
        let replica_set = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(object_labels.clone()),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(object_labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(pod_spec),
                }),
                ..Default::default()
            },
            status: None,
        };
        let config = (!self.env.is_empty()).then(|| ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(object_labels.clone()),
                ..Default::default()
            },
            data: Some(self.env.clone()),
            // A release's config never changes (a change is a new release); the kubelet need not watch it.
            immutable: Some(true),
            ..Default::default()
        });
        let secret = (!self.secrets.is_empty()).then(|| Secret {
            metadata: ObjectMeta {
                name: Some(name),
                labels: Some(object_labels),
                ..Default::default()
            },
            string_data: Some(self.secrets.clone()),
            type_: Some("Opaque".to_owned()),
            ..Default::default()
        });
        Ok(Objects {
            replica_set,
            config,
            secret,
        })
    }

    /// `name`: the ReplicaSet's, which its ConfigMap and Secret share.
    pub(crate) fn pod_spec(&self, name: &str) -> Result<PodSpec, String> {
        let secret_name = name;
        // The release's env from its ConfigMap; what `env` sets below wins over it (Kubernetes' rule).
        let env_from = (!self.env.is_empty()).then(|| {
            vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: name.to_owned(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        });
        let mut env: Vec<EnvVar> = Vec::new();
        if let Some(port) = self.port {
            env.push(plain("PORT", &port.to_string()));
        }
        // Set last, so a release's env cannot spoof them.
        env.push(plain("SLIPWAY_APP", &self.key.app));
        env.push(plain("SLIPWAY_RELEASE", &format!("v{}", self.key.release)));
        env.push(plain("SLIPWAY_PROCESS", &self.key.process));
        env.push(EnvVar {
            name: "SLIPWAY_INSTANCE".to_owned(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut volumes = Vec::new();
        let mut mounts = Vec::new();
        let (run_as_user, run_as_group) = match &self.user {
            None => (None, None),
            Some(user) => numeric_user(user)?,
        };
        // The kubelet writes secret files as root. With a known user, its group gets them
        // (fsGroup) and only that group may read; without one, the image's USER (which the kubelet
        // cannot know) must read them, so every user of the container may, as Kubernetes' default.
        let fs_group = run_as_group.or(run_as_user);
        let secret_mode = if fs_group.is_some() { 0o440 } else { 0o444 };
        if !self.secrets.is_empty() {
            if self.secrets_as_env {
                for key in self.secrets.keys() {
                    env.push(EnvVar {
                        name: key.clone(),
                        value_from: Some(EnvVarSource {
                            secret_key_ref: Some(SecretKeySelector {
                                name: secret_name.to_owned(),
                                key: key.clone(),
                                optional: Some(false),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            } else {
                for key in self.secrets.keys() {
                    env.push(plain(
                        &format!("{key}_FILE"),
                        &format!("{SECRETS_DIR}/{key}"),
                    ));
                }
                volumes.push(Volume {
                    name: "secrets".to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(secret_name.to_owned()),
                        default_mode: Some(secret_mode),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                mounts.push(VolumeMount {
                    name: "secrets".to_owned(),
                    mount_path: SECRETS_DIR.to_owned(),
                    read_only: Some(true),
                    ..Default::default()
                });
            }
        }
        if self.read_only {
            volumes.push(Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..Default::default()
            });
        }
        let placement = &self.placement;
        let mut requests = BTreeMap::new();
        if let Some(bytes) = placement.memory_request {
            requests.insert("memory".to_owned(), Quantity(bytes.to_string()));
        }
        if let Some(nano) = placement.cpu_request {
            requests.insert(
                "cpu".to_owned(),
                Quantity(format!("{}m", (nano / 1_000_000).max(1))),
            );
        }
        let mut limits = BTreeMap::new();
        if let Some(bytes) = self.memory_bytes {
            limits.insert("memory".to_owned(), Quantity(bytes.to_string()));
        }
        if let Some(nano) = self.nano_cpus {
            limits.insert(
                "cpu".to_owned(),
                Quantity(format!("{}m", (nano / 1_000_000).max(1))),
            );
        }
        let readiness = match (&self.readiness, self.port) {
            (Some(probe), _) => Some(probe.clone()),
            // As for processes and containers: a web instance is ready once its port accepts.
            (None, Some(_)) => Some(slipway_runtime::probe::default_web_readiness()),
            (None, None) => None,
        };
        let container = Container {
            name: CONTAINER.to_owned(),
            image: Some(self.image.clone()),
            image_pull_policy: Some(pull_policy(&self.image).to_owned()),
            args: self.command.clone(),
            env_from,
            env: Some(env),
            ports: self.port.map(|port| {
                vec![ContainerPort {
                    container_port: i32::from(port),
                    name: Some("http".to_owned()),
                    protocol: Some("TCP".to_owned()),
                    ..Default::default()
                }]
            }),
            readiness_probe: readiness
                .as_ref()
                .map(|p| probe(p, self.port, false))
                .transpose()?,
            liveness_probe: self
                .liveness
                .as_ref()
                .map(|p| probe(p, self.port, true))
                .transpose()?,
            startup_probe: self
                .startup
                .as_ref()
                .map(|p| probe(p, self.port, true))
                .transpose()?,
            resources: (!limits.is_empty() || !requests.is_empty()).then(|| ResourceRequirements {
                limits: (!limits.is_empty()).then_some(limits),
                requests: (!requests.is_empty()).then_some(requests),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(!self.no_new_privileges),
                capabilities: Some(Capabilities {
                    drop: self.drop_all_capabilities.then(|| vec!["ALL".to_owned()]),
                    add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
                }),
                read_only_root_filesystem: Some(self.read_only),
                run_as_user,
                run_as_group,
                ..Default::default()
            }),
            volume_mounts: (!mounts.is_empty()).then_some(mounts),
            termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
            ..Default::default()
        };
        let secret_files = !self.secrets.is_empty() && !self.secrets_as_env;
        Ok(PodSpec {
            containers: vec![container],
            security_context: (secret_files && fs_group.is_some()).then(|| PodSecurityContext {
                fs_group,
                ..Default::default()
            }),
            volumes: (!volumes.is_empty()).then_some(volumes),
            restart_policy: Some("Always".to_owned()),
            termination_grace_period_seconds: Some(seconds(self.grace).into()),
            // The app needs no API access and no Service env of its namespace.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            service_account_name: placement.service_account.clone(),
            node_selector: (!placement.node_selector.is_empty())
                .then(|| placement.node_selector.clone()),
            tolerations: (!placement.tolerations.is_empty()).then(|| {
                placement
                    .tolerations
                    .iter()
                    .map(|t| Toleration {
                        key: t.key.clone(),
                        operator: Some(if t.exists { "Exists" } else { "Equal" }.to_owned()),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                        ..Default::default()
                    })
                    .collect()
            }),
            image_pull_secrets: (!placement.image_pull_secrets.is_empty()).then(|| {
                placement
                    .image_pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            ..Default::default()
        })
    }
}

fn plain(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..Default::default()
    }
}

/// Whole seconds, rounded up (the kubelet counts in seconds), at least 1.
fn seconds(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.clamp(1, i32::MAX as u64) as i32
}

fn numeric_user(user: &str) -> Result<(Option<i64>, Option<i64>), String> {
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let number = |text: &str| {
        text.parse::<i64>().map_err(|_| {
            format!(
                "user = \"{user}\": on Kubernetes a user is a number (`user = \"1000:1000\"`), not a name"
            )
        })
    };
    Ok((Some(number(uid)?), gid.map(number).transpose()?))
}

/// slipway's probe as the kubelet's. The kubelet counts in whole seconds: a 500 ms period becomes 1 s.
fn probe(spec: &ProbeSpec, port: Option<u16>, single_success: bool) -> Result<Probe, String> {
    let port_of = || {
        port.map(|p| IntOrString::Int(i32::from(p))).ok_or_else(|| {
            "an http or tcp probe needs a port: only the web process has one".to_owned()
        })
    };
    let mut probe = Probe {
        period_seconds: Some(seconds(spec.period)),
        timeout_seconds: Some(seconds(spec.timeout)),
        initial_delay_seconds: Some(spec.initial_delay.as_secs() as i32),
        // Liveness and startup probes must succeed once (the API refuses more).
        success_threshold: Some(if single_success {
            1
        } else {
            spec.success_threshold.max(1) as i32
        }),
        failure_threshold: Some(spec.failure_threshold.max(1) as i32),
        ..Default::default()
    };
    match &spec.check {
        ProbeCheck::Http { path } => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port: port_of()?,
                ..Default::default()
            })
        }
        ProbeCheck::Tcp => {
            probe.tcp_socket = Some(TCPSocketAction {
                port: port_of()?,
                ..Default::default()
            })
        }
        ProbeCheck::Exec { cmd } => {
            probe.exec = Some(ExecAction {
                command: Some(vec!["sh".into(), "-c".into(), cmd.clone()]),
            })
        }
    }
    Ok(probe)
}

/// A digest names one image for good, so a node pulls it once, if it lacks it; an image ID cannot
/// be pulled at all: it is on the node, or the pod says it is missing.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        "IfNotPresent"
    } else {
        "Never"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> PodTemplate {
        PodTemplate {
            key: Key {
                app: "shop".into(),
                release: 3,
                process: "web".into(),
            },
            image: "sha256:2222".into(),
            command: None,
            env: BTreeMap::from([("LOG_LEVEL".into(), "debug".into())]),
            secrets: BTreeMap::from([("TOKEN".into(), "hunter2".into())]),
            secrets_as_env: false,
            port: Some(8080),
            readiness: Some(ProbeSpec {
                check: ProbeCheck::Http {
                    path: "/health".into(),
                },
                period: Duration::from_millis(500),
                timeout: Duration::from_secs(2),
                initial_delay: Duration::ZERO,
                success_threshold: 2,
                failure_threshold: 3,
            }),
            liveness: None,
            startup: None,
            grace: Duration::from_millis(2500),
            no_new_privileges: true,
            drop_all_capabilities: true,
            cap_add: vec![],
            read_only: false,
            user: Some("1000:1001".into()),
            memory_bytes: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            placement: KubernetesSpec::default(),
        }
    }

    fn container(objects: &Objects) -> Container {
        let spec = &objects.replica_set.spec;
        spec.template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .clone()
    }

    #[test]
    fn pods_run_the_recorded_image_id_with_the_release_env_and_probes() {
        let objects = template().objects("slipway-o", 2).unwrap();
        let rs = &objects.replica_set;
        assert_eq!(rs.spec.replicas, Some(2));
        let c = container(&objects);
        assert_eq!(c.image.as_deref(), Some("sha256:2222"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Never"));
        let mut pinned = template();
        pinned.image = format!("ghcr.io/team/shop@sha256:{}", "a".repeat(64));
        let c = container(&pinned.objects("slipway-o", 2).unwrap());
        assert_eq!(c.image, Some(pinned.image.clone()));
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let env = c.env.unwrap();
        let value = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            value("LOG_LEVEL"),
            None,
            "the release's env is its ConfigMap's"
        );
        let config = objects.config.as_ref().unwrap();
        assert_eq!(config.data.as_ref().unwrap()["LOG_LEVEL"], "debug");
        assert_eq!(config.immutable, Some(true));
        assert_eq!(config.metadata.name, rs.metadata.name);
        let from = c.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .clone()
            .unwrap();
        assert_eq!(Some(from.name), rs.metadata.name.clone());
        assert_eq!(value("PORT").as_deref(), Some("8080"));
        assert_eq!(value("TOKEN_FILE").as_deref(), Some("/run/secrets/TOKEN"));
        assert_eq!(value("TOKEN"), None, "secrets are files, not env");
        let readiness = c.readiness_probe.unwrap();
        assert_eq!(readiness.period_seconds, Some(1), "500 ms rounds up");
        assert_eq!(readiness.success_threshold, Some(2));
        assert_eq!(readiness.http_get.unwrap().port, IntOrString::Int(8080));
        let security = c.security_context.unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_user, Some(1000));
        assert_eq!(security.run_as_group, Some(1001));
        let limits = c.resources.unwrap().limits.unwrap();
        assert_eq!(limits["cpu"], Quantity("500m".into()));
        let pod = rs.spec.template.as_ref().unwrap();
        assert_eq!(
            pod.spec.as_ref().unwrap().termination_grace_period_seconds,
            Some(3)
        );
    }

    #[test]
    fn secret_values_are_only_in_the_secret() {
        let objects = template().objects("slipway-o", 1).unwrap();
        let rs = serde_json::to_string(&objects.replica_set).unwrap();
        assert!(!rs.contains("hunter2"));
        assert!(!format!("{:?}", template()).contains("hunter2"));
        let secret = objects.secret.unwrap();
        assert_eq!(secret.string_data.unwrap()["TOKEN"], "hunter2");
    }

    /// The kubelet writes secret files as root: the process's user must still read them.
    #[test]
    fn secret_files_are_readable_by_the_process_s_user() {
        let mode_and_group = |t: &PodTemplate| {
            let spec = t.pod_spec("n").unwrap();
            let mode = spec.volumes.as_ref().unwrap()[0]
                .secret
                .as_ref()
                .unwrap()
                .default_mode;
            (mode, spec.security_context.and_then(|s| s.fs_group))
        };
        // A known user (1000:1001): its group owns them, and only it may read.
        assert_eq!(mode_and_group(&template()), (Some(0o440), Some(1001)));
        // The image's USER, which the kubelet cannot know: every user of the container may.
        let image_user = PodTemplate {
            user: None,
            ..template()
        };
        assert_eq!(mode_and_group(&image_user), (Some(0o444), None));
    }

    #[test]
    fn the_selector_carries_the_release_hash_of_the_template() {
        let a = template().objects("o", 1).unwrap().replica_set;
        let mut changed = template();
        changed.image = "sha256:3333".into();
        let b = changed.objects("o", 1).unwrap().replica_set;
        let hash = |rs: &ReplicaSet| {
            rs.spec.selector.match_labels.as_ref().unwrap()[names::RELEASE_HASH].clone()
        };
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(a.metadata.name, b.metadata.name);
        // The env is in the ConfigMap, not the pod spec: it still changes the hash.
        let mut changed = template();
        changed.env.insert("LOG_LEVEL".into(), "info".into());
        assert_ne!(
            hash(&a),
            hash(&changed.objects("o", 1).unwrap().replica_set)
        );
        // No env, no ConfigMap and no envFrom.
        let mut bare = template();
        bare.env.clear();
        let objects = bare.objects("o", 1).unwrap();
        assert!(objects.config.is_none());
        assert!(container(&objects).env_from.is_none());
    }

    #[test]
    fn a_web_process_without_readiness_is_ready_once_its_port_accepts() {
        let mut t = template();
        t.readiness = None;
        let c = container(&t.objects("o", 1).unwrap());
        assert!(c.readiness_probe.unwrap().tcp_socket.is_some());
        t.port = None;
        let c = container(&t.objects("o", 1).unwrap());
        assert!(c.readiness_probe.is_none());
    }

    #[test]
    fn the_kubernetes_table_places_the_pods() {
        let mut t = template();
        t.placement = KubernetesSpec {
            node_selector: BTreeMap::from([("disk".into(), "ssd".into())]),
            tolerations: vec![slipway_core::spec::Toleration {
                key: None,
                value: None,
                exists: true,
                effect: Some("NoSchedule".into()),
            }],
            service_account: Some("shop".into()),
            image_pull_secrets: vec!["registry".into()],
            memory_request: Some(32 << 20),
            cpu_request: Some(100_000_000),
            ..KubernetesSpec::default()
        };
        let objects = t.objects("o", 1).unwrap();
        let pod = objects.replica_set.spec.template.unwrap().spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["disk"], "ssd");
        let toleration = &pod.tolerations.unwrap()[0];
        assert_eq!(toleration.operator.as_deref(), Some("Exists"));
        assert_eq!(pod.service_account_name.as_deref(), Some("shop"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "registry");
        let resources = pod.containers[0].resources.clone().unwrap();
        assert_eq!(resources.requests.unwrap()["cpu"], Quantity("100m".into()));
        assert_eq!(
            resources.limits.unwrap()["memory"],
            Quantity((64 << 20).to_string())
        );
    }

    #[test]
    fn a_user_name_is_refused_with_the_fix() {
        let mut t = template();
        t.user = Some("app".into());
        let err = t.objects("o", 1).err().unwrap();
        assert!(err.contains("1000:1000"), "{err}");
    }
}
