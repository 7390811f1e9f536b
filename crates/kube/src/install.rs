//! slipway inside the cluster, as manifests for `kubectl apply -f -` (`slipway kube install`): the
//! Namespace, what `rbac.rs` prints (ServiceAccount, the least Role, its binding), a Deployment of one
//! `slipway serve --kubernetes` with its state dir on a PersistentVolumeClaim, and Services for its
//! API and its proxy. Pure text; crates/cli/tests/kubernetes.rs applies it with `--dry-run=server`
//! (every object checked against the API server's schemas) and checks the account's rights.
//!
//! One replica and `strategy: Recreate`: there is no leader election yet, and two controllers on one
//! namespace would each drive the same apps (and the claim is ReadWriteOnce).

use crate::rbac;

/// The name of every object it makes (ServiceAccount, Role, Deployment, claim); the Services are
/// `slipway-api` and `slipway-proxy`.
pub const NAME: &str = "slipway";
/// Where the proxy listens in the pod, and the proxy Service's target.
pub const PROXY_PORT: u16 = 8080;
/// Where the TCP API (and the dashboard) listen in the pod.
pub const API_PORT: u16 = 7070;
/// The state dir in the pod: the claim's mount (and the image's `SLIPWAY_STATE_DIR`).
pub const STATE_DIR: &str = "/var/lib/slipway";
/// The Secret (optional) whose `token` key becomes the API's token (`SLIPWAY_TOKEN`).
pub const TOKEN_SECRET: &str = "slipway-api-token";

/// The manifests for slipway running `image` in `namespace`; with `gateway`, its Role has what apps
/// with `[kubernetes] gateway` or `service` need too (as `slipway kube rbac --gateway`).
pub fn manifests(namespace: &str, image: &str, gateway: bool) -> String {
    let labels = "app.kubernetes.io/name: slipway\n      app.kubernetes.io/component: controller";
    let rbac = rbac::manifests(namespace, NAME, gateway);
    format!(
        "# slipway inside the cluster, in the namespace {namespace} (`slipway kube install`).\n\
         # Apply: slipway kube install --namespace {namespace} --image IMAGE | kubectl apply -f -\n\
         # The controller runs in namespace {namespace} and runs its apps' pods there too.\n\
         # ONE replica, strategy Recreate: there is no leader election yet, so a second replica (or an old\n\
         # and a new pod side by side during an update) would drive the same apps twice.\n\
         # Deleting its pod (a new image, a node drain) stops every app's pods: the daemon drains and\n\
         # removes them on SIGTERM, as on one host, and the new pod starts them again from its state dir.\n\
         # State (releases, rollouts, flags, audit) is the SQLite in its state dir, on the claim below:\n\
         # state in the cluster itself is not built yet (docs/kubernetes.md).\n\
         # `slipway deploy` sends the path of slipway.toml, not the folder: the app folder must be at\n\
         # that path inside this pod (e.g. on the state volume); uploading it is not built yet.\n\
         apiVersion: v1\n\
         kind: Namespace\n\
         metadata:\n  name: {namespace}\n\
         ---\n\
         {rbac}\
         ---\n\
         # The state dir: it outlives the pod, so a new pod has the releases and adopts the apps' pods.\n\
         # (On an emptyDir, a new pod would start empty and delete every app's pods it finds.)\n\
         # ReadWriteOnce: one node mounts it at a time, which the one replica and Recreate respect.\n\
         apiVersion: v1\n\
         kind: PersistentVolumeClaim\n\
         metadata:\n  name: {NAME}-state\n  namespace: {namespace}\n\
         spec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n\
         ---\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: {NAME}\n  namespace: {namespace}\n  labels:\n    app.kubernetes.io/name: slipway\n    app.kubernetes.io/component: controller\n\
         spec:\n\
         \x20 # One replica and Recreate: no leader election yet (see the top of this file).\n\
         \x20 replicas: 1\n\
         \x20 strategy:\n    type: Recreate\n\
         \x20 selector:\n    matchLabels:\n      {labels}\n\
         \x20 template:\n\
         \x20   metadata:\n      labels:\n        {pod_labels}\n\
         \x20   spec:\n\
         \x20     serviceAccountName: {NAME}\n\
         \x20     enableServiceLinks: false\n\
         \x20     # Shutting down drains the proxy's connections (up to 60 s), then every instance.\n\
         \x20     terminationGracePeriodSeconds: 120\n\
         \x20     securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n        runAsGroup: 10001\n        fsGroup: 10001\n        seccompProfile:\n          type: RuntimeDefault\n\
         \x20     containers:\n\
         \x20       - name: slipway\n\
         \x20         # An image whose entrypoint is slipway built with `--features kubernetes`.\n\
         \x20         image: {image}\n\
         \x20         args:\n{args}\
         \x20         env:\n\
         \x20           # The TCP API's token, from the Secret {TOKEN_SECRET} (key `token`) if there is one;\n\
         \x20           # else the daemon makes one in its state dir ({STATE_DIR}/api-token).\n\
         \x20           - name: SLIPWAY_TOKEN\n              valueFrom:\n                secretKeyRef:\n                  name: {TOKEN_SECRET}\n                  key: token\n                  optional: true\n\
         \x20           # `slipway deploy` resolves each image to its ID on a Docker engine holding the images\n\
         \x20           # (image digests are not built yet): point this at one, e.g.\n\
         \x20           # - name: DOCKER_HOST\n\
         \x20           #   value: tcp://docker.build.svc:2375\n\
         \x20         ports:\n            - name: proxy\n              containerPort: {PROXY_PORT}\n            - name: api\n              containerPort: {API_PORT}\n\
         \x20         # Every API route needs a token; a TCP check says the daemon listens.\n\
         \x20         readinessProbe:\n            tcpSocket:\n              port: api\n            periodSeconds: 5\n\
         \x20         livenessProbe:\n            tcpSocket:\n              port: api\n            periodSeconds: 10\n            failureThreshold: 6\n\
         \x20         resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n\
         \x20         securityContext:\n            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [ALL]\n\
         \x20         volumeMounts:\n            - name: state\n              mountPath: {STATE_DIR}\n\
         \x20     volumes:\n        - name: state\n          persistentVolumeClaim:\n            claimName: {NAME}-state\n\
         ---\n\
         # The apps' entry: slipway's proxy, which routes by weight to the pods' IPs. Point an Ingress,\n\
         # a gateway or a LoadBalancer at it.\n\
         apiVersion: v1\n\
         kind: Service\n\
         metadata:\n  name: {NAME}-proxy\n  namespace: {namespace}\n\
         spec:\n  selector:\n    {svc_labels}\n  ports:\n    - name: http\n      port: 80\n      targetPort: proxy\n\
         ---\n\
         # The API and the dashboard (/ui/), every request with a token: SLIPWAY_SERVER=http://{NAME}-api.{namespace}:{API_PORT}\n\
         apiVersion: v1\n\
         kind: Service\n\
         metadata:\n  name: {NAME}-api\n  namespace: {namespace}\n\
         spec:\n  selector:\n    {svc_labels}\n  ports:\n    - name: api\n      port: {API_PORT}\n      targetPort: api\n",
        pod_labels = labels.replace("\n      ", "\n        "),
        svc_labels = labels.replace("\n      ", "\n    "),
        args = serve_args(namespace)
            .iter()
            .map(|a| format!("            - \"{a}\"\n"))
            .collect::<String>(),
    )
}

/// Refuses what would not make valid manifests: a namespace that is not a DNS label (RFC 1123, as
/// Kubernetes requires), an image reference with whitespace, quotes or a `#`.
pub fn check(namespace: &str, image: &str) -> Result<(), String> {
    let label = !namespace.is_empty()
        && namespace.len() <= 63
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !namespace.starts_with('-')
        && !namespace.ends_with('-');
    if !label {
        return Err(format!(
            "--namespace {namespace:?} is not a namespace name: lowercase letters, digits and '-', \
             at most 63, starting and ending with a letter or digit"
        ));
    }
    if image.is_empty()
        || image
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'#`\\{}[]".contains(c))
    {
        return Err(format!(
            "--image {image:?} is not an image reference (e.g. registry.example/slipway:0.9)"
        ));
    }
    Ok(())
}

/// What the pod runs after the image's entrypoint (slipway).
pub fn serve_args(namespace: &str) -> Vec<String> {
    [
        "serve",
        "--kubernetes",
        "--namespace",
        namespace,
        "--state-dir",
        STATE_DIR,
        "--listen",
        &format!("0.0.0.0:{PROXY_PORT}"),
        "--api",
        &format!("0.0.0.0:{API_PORT}"),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    use serde_json::Value;

    fn documents(text: &str) -> Vec<Value> {
        serde_saphyr::from_multiple::<Value>(text).expect("valid YAML")
    }

    fn kinds(docs: &[Value]) -> Vec<&str> {
        docs.iter().map(|d| d["kind"].as_str().unwrap()).collect()
    }

    fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn every_object_is_there_in_the_namespace() {
        let docs = documents(&manifests(
            "shop-system",
            "registry.example/slipway:0.9",
            false,
        ));
        assert_eq!(
            kinds(&docs),
            [
                "Namespace",
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "PersistentVolumeClaim",
                "Deployment",
                "Service",
                "Service"
            ]
        );
        assert_eq!(docs[0]["metadata"]["name"], "shop-system");
        for d in &docs[1..] {
            assert_eq!(d["metadata"]["namespace"], "shop-system", "{d}");
        }
    }

    #[test]
    fn the_role_is_the_one_kube_rbac_prints() {
        let text = manifests("shop", "slipway:1", false);
        assert!(text.contains(&rbac::manifests("shop", NAME, false)));
        assert!(!text.contains("httproutes"));
        let text = manifests("shop", "slipway:1", true);
        assert!(text.contains(&rbac::manifests("shop", NAME, true)));
    }

    #[test]
    fn one_replica_recreated_running_serve_kubernetes_as_its_account() {
        let docs = documents(&manifests("shop", "registry.example/slipway:0.9", false));
        let deployment: Deployment =
            serde_json::from_value(find(&docs, "Deployment", NAME).clone()).unwrap();
        let spec = deployment.spec;
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some(NAME));
        let container = &pod.containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example/slipway:0.9")
        );
        assert_eq!(container.args.clone().unwrap(), serve_args("shop"));
        let args = serve_args("shop").join(" ");
        assert!(args.contains("--kubernetes --namespace shop"), "{args}");
        // The template's labels are what the selector and the Services select.
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(spec.selector.match_labels.unwrap(), labels);
        for name in ["slipway-api", "slipway-proxy"] {
            let service: Service =
                serde_json::from_value(find(&docs, "Service", name).clone()).unwrap();
            assert_eq!(service.spec.unwrap().selector.unwrap(), labels);
        }
        // The state dir is the claim, mounted where serve keeps it.
        let mount = &container.volume_mounts.clone().unwrap()[0];
        assert_eq!(mount.mount_path, STATE_DIR);
        let volume = &pod.volumes.unwrap()[0];
        let claim = volume.persistent_volume_claim.clone().unwrap().claim_name;
        let _: PersistentVolumeClaim =
            serde_json::from_value(find(&docs, "PersistentVolumeClaim", &claim).clone()).unwrap();
        // The token from an optional Secret; nothing secret in the manifests.
        let env = container.env.clone().unwrap();
        let token = env.iter().find(|e| e.name == "SLIPWAY_TOKEN").unwrap();
        let from = token.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!(
            (from.name.as_str(), from.optional),
            (TOKEN_SECRET, Some(true))
        );
    }

    #[test]
    fn the_services_reach_the_proxy_and_the_api_by_port_name() {
        let docs = documents(&manifests("shop", "slipway:1", false));
        let ports =
            &find(&docs, "Deployment", NAME)["spec"]["template"]["spec"]["containers"][0]["ports"];
        let named = |name: &str| {
            ports
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["containerPort"].as_u64().unwrap())
        };
        assert_eq!(named("proxy"), Some(u64::from(PROXY_PORT)));
        assert_eq!(named("api"), Some(u64::from(API_PORT)));
        let proxy = &find(&docs, "Service", "slipway-proxy")["spec"]["ports"][0];
        assert_eq!(
            (proxy["port"].as_u64(), proxy["targetPort"].as_str()),
            (Some(80), Some("proxy"))
        );
        let api = &find(&docs, "Service", "slipway-api")["spec"]["ports"][0];
        assert_eq!(api["targetPort"], "api");
    }

    #[test]
    fn names_that_would_break_the_yaml_are_refused() {
        assert_eq!(
            check("shop-system", "registry.example:5000/slipway@sha256:ab"),
            Ok(())
        );
        for bad in [
            "",
            "Shop",
            "-shop",
            "shop-",
            "a b",
            "shop\nkind: Pod",
            &"a".repeat(64),
        ] {
            assert!(check(bad, "slipway:1").is_err(), "{bad:?}");
        }
        for bad in ["", "slipway:1 # x", "slip\"way", "a\nb", "{x}"] {
            assert!(
                check("shop", bad).unwrap_err().contains("--image"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_output_says_why_one_replica() {
        let text = manifests("shop", "slipway:1", false);
        assert!(text.contains("no leader election yet"));
        assert!(text.contains("state in the cluster itself is not built yet"));
        assert!(text.contains("sends the path of slipway.toml"));
    }
}
