//! slipway inside the cluster, as manifests for `kubectl apply -f -` (`slipway kube install`): the
//! Namespace, what `rbac.rs` prints with the Lease's rights (ServiceAccount, the least Role, its
//! binding), a Deployment of two `slipway serve --kubernetes --lease` controllers — one leads, the
//! other stands by with no proxy and takes over with the state the leader copied into Secrets —, a
//! PodDisruptionBudget, and Services for the API and the proxy that select the leader's pod only
//! (the leader labels it: `own_pod.rs`). Pure text; crates/cli/tests/kubernetes.rs applies it with
//! `--dry-run=server` (every object checked against the API server's schemas), checks the account's
//! rights, and runs it.

use crate::names::ROLE;
use crate::rbac;

/// The name of every object it makes (ServiceAccount, Role, Deployment, Lease, budget); the
/// Services are `slipway-api` and `slipway-proxy`.
pub const NAME: &str = "slipway";
/// Where the proxy listens in the pod, and the proxy Service's target.
pub const PROXY_PORT: u16 = 8080;
/// Where the TCP API (and the dashboard) listen in the pod.
pub const API_PORT: u16 = 7070;
/// Where the pod's emptyDir is mounted (the image's `SLIPWAY_STATE_DIR`). An emptyDir is enough:
/// the state a new leader starts from is the copy in the Lease's Secrets.
pub const VOLUME_DIR: &str = "/var/lib/slipway";
/// The state dir: in the volume, not the volume itself, which the kubelet makes world-writable
/// (mode 2777) and `serve` refuses; the daemon makes this one 0700.
pub const STATE_DIR: &str = "/var/lib/slipway/state";
/// The Secret (optional) whose `token` key becomes the API's token (`SLIPWAY_TOKEN`).
pub const TOKEN_SECRET: &str = "slipway-api-token";
/// Controllers: one leads, one stands by.
pub const REPLICAS: u32 = 2;

/// The manifests for slipway running `image` in `namespace`; with `gateway`, its Role has what apps
/// with `[kubernetes] gateway` or `service` need too (as `slipway kube rbac --gateway`).
pub fn manifests(namespace: &str, image: &str, gateway: bool) -> String {
    let labels = "app.kubernetes.io/name: slipway\n      app.kubernetes.io/component: controller";
    let rbac = rbac::manifests_with_lease(namespace, NAME, gateway, Some(NAME), &[]);
    format!(
        "# slipway inside the cluster, in the namespace {namespace} (`slipway kube install`).\n\
         # Apply: slipway kube install --namespace {namespace} --image IMAGE | kubectl apply -f -\n\
         # The controllers run in namespace {namespace} and run their apps' pods there too.\n\
         # TWO controllers lead by the Lease {NAME}: one leads, the other stands by (its API answers 503\n\
         # naming the leader; it has no proxy). The leader copies its state (releases, rollouts, flags,\n\
         # audit) into the Secrets {NAME}-state-* after each change; when its pod goes (a new image, a node\n\
         # drain, a crash), the standby takes the Lease, starts from that copy and adopts the apps' pods,\n\
         # which keep running throughout. The leader labels its pod {ROLE}=leader, and the Services below\n\
         # select that label: they reach the leader only.\n\
         # Uninstalling: deleting the Deployment leaves the apps' pods running (a controller that stops\n\
         # hands them to the next); `kubectl delete namespace {namespace}` removes everything.\n\
         # `slipway deploy` (SLIPWAY_SERVER: the slipway-api Service) sends the app folder to the leader,\n\
         # which freezes it into the release in its state dir: no volume is needed for it.\n\
         apiVersion: v1\n\
         kind: Namespace\n\
         metadata:\n  name: {namespace}\n\
         ---\n\
         {rbac}\
         ---\n\
         apiVersion: apps/v1\n\
         kind: Deployment\n\
         metadata:\n  name: {NAME}\n  namespace: {namespace}\n  labels:\n    app.kubernetes.io/name: slipway\n    app.kubernetes.io/component: controller\n\
         spec:\n\
         \x20 replicas: {REPLICAS}\n\
         \x20 # A new pod starts (as a standby) before an old one stops: a leader that stops hands over to a\n\
         \x20 # controller that is already there.\n\
         \x20 strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n\
         \x20 selector:\n    matchLabels:\n      {labels}\n\
         \x20 template:\n\
         \x20   metadata:\n      labels:\n        {pod_labels}\n\
         \x20   spec:\n\
         \x20     serviceAccountName: {NAME}\n\
         \x20     enableServiceLinks: false\n\
         \x20     # A leader that stops copies its state once more, releases the Lease and leaves the apps' pods\n\
         \x20     # to the standby; its proxy finishes the requests in flight first (up to 60 s).\n\
         \x20     terminationGracePeriodSeconds: 120\n\
         \x20     # On two nodes where there are: losing one node loses one controller.\n\
         \x20     affinity:\n        podAntiAffinity:\n          preferredDuringSchedulingIgnoredDuringExecution:\n            - weight: 100\n              podAffinityTerm:\n                topologyKey: kubernetes.io/hostname\n                labelSelector:\n                  matchLabels:\n                    {affinity_labels}\n\
         \x20     securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n        runAsGroup: 10001\n        fsGroup: 10001\n        seccompProfile:\n          type: RuntimeDefault\n\
         \x20     containers:\n\
         \x20       - name: slipway\n\
         \x20         # An image whose entrypoint is slipway built with `--features kubernetes`.\n\
         \x20         image: {image}\n\
         \x20         args:\n{args}\
         \x20         env:\n\
         \x20           # Its own pod, which it labels {ROLE}=leader|standby (`serve --pod`).\n\
         \x20           - name: SLIPWAY_POD_NAME\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name\n\
         \x20           # The TCP API's token, from the Secret {TOKEN_SECRET} (key `token`). Without it each\n\
         \x20           # controller makes its own in its state dir, which a takeover would change: make the Secret.\n\
         \x20           - name: SLIPWAY_TOKEN\n              valueFrom:\n                secretKeyRef:\n                  name: {TOKEN_SECRET}\n                  key: token\n                  optional: true\n\
         \x20           # Images named with their registry (ghcr.io/team/shop:v2) or by digest need no engine;\n\
         \x20           # short names (shop:v2) resolve to IDs on a Docker engine holding them: point this at one, e.g.\n\
         \x20           # - name: DOCKER_HOST\n\
         \x20           #   value: tcp://docker.build.svc:2375\n\
         \x20         ports:\n            - name: proxy\n              containerPort: {PROXY_PORT}\n            - name: api\n              containerPort: {API_PORT}\n\
         \x20         # Every API route needs a token; a TCP check says the daemon listens (a standby too: the\n\
         \x20         # Services tell them apart by the leader label, not by readiness).\n\
         \x20         readinessProbe:\n            tcpSocket:\n              port: api\n            periodSeconds: 5\n\
         \x20         livenessProbe:\n            tcpSocket:\n              port: api\n            periodSeconds: 10\n            failureThreshold: 6\n\
         \x20         resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n\
         \x20         securityContext:\n            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [ALL]\n\
         \x20         volumeMounts:\n            - name: state\n              mountPath: {VOLUME_DIR}\n\
         \x20     # The state dir is a working copy: the state a new leader starts from is in the cluster.\n\
         \x20     volumes:\n        - name: state\n          emptyDir: {{}}\n\
         ---\n\
         # A node drain evicts one controller at a time.\n\
         apiVersion: policy/v1\n\
         kind: PodDisruptionBudget\n\
         metadata:\n  name: {NAME}\n  namespace: {namespace}\n\
         spec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      {labels}\n\
         ---\n\
         # The apps' entry: the leader's proxy, which routes by weight to the pods' IPs. Point an Ingress,\n\
         # a gateway or a LoadBalancer at it.\n\
         apiVersion: v1\n\
         kind: Service\n\
         metadata:\n  name: {NAME}-proxy\n  namespace: {namespace}\n\
         spec:\n  selector:\n    {svc_labels}\n    {ROLE}: leader\n  ports:\n    - name: http\n      port: 80\n      targetPort: proxy\n\
         ---\n\
         # The leader's API and dashboard (/ui/), every request with a token: SLIPWAY_SERVER=http://{NAME}-api.{namespace}:{API_PORT}\n\
         apiVersion: v1\n\
         kind: Service\n\
         metadata:\n  name: {NAME}-api\n  namespace: {namespace}\n\
         spec:\n  selector:\n    {svc_labels}\n    {ROLE}: leader\n  ports:\n    - name: api\n      port: {API_PORT}\n      targetPort: api\n",
        pod_labels = labels.replace("\n      ", "\n        "),
        svc_labels = labels.replace("\n      ", "\n    "),
        affinity_labels = labels.replace("\n      ", "\n                    "),
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
        "--lease",
        NAME,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
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
                "Deployment",
                "PodDisruptionBudget",
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
        let rbac = |gateway| rbac::manifests_with_lease("shop", NAME, gateway, Some(NAME), &[]);
        assert!(text.contains(&rbac(false)));
        assert!(!text.contains("httproutes"));
        let text = manifests("shop", "slipway:1", true);
        assert!(text.contains(&rbac(true)));
    }

    #[test]
    fn two_controllers_by_a_lease_rolled_one_at_a_time_as_its_account() {
        let docs = documents(&manifests("shop", "registry.example/slipway:0.9", false));
        let deployment: Deployment =
            serde_json::from_value(find(&docs, "Deployment", NAME).clone()).unwrap();
        let spec = deployment.spec;
        assert_eq!(spec.replicas, Some(2));
        let strategy = spec.strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let rolling = strategy.rolling_update.unwrap();
        // A new controller is there before an old one goes.
        assert_eq!(
            serde_json::to_value(&rolling.max_unavailable).unwrap(),
            serde_json::json!(0)
        );
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
        assert!(args.ends_with("--lease slipway"), "{args}");
        // The template's labels are what the selector selects; the Services add the leader's.
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(spec.selector.match_labels.clone().unwrap(), labels);
        let mut leader = labels.clone();
        leader.insert(ROLE.to_owned(), "leader".to_owned());
        for name in ["slipway-api", "slipway-proxy"] {
            let service: Service =
                serde_json::from_value(find(&docs, "Service", name).clone()).unwrap();
            assert_eq!(service.spec.unwrap().selector.unwrap(), leader);
        }
        let budget = &find(&docs, "PodDisruptionBudget", NAME)["spec"];
        assert_eq!(budget["maxUnavailable"], 1);
        assert_eq!(
            budget["selector"]["matchLabels"],
            serde_json::to_value(&labels).unwrap()
        );
        // The state dir is an emptyDir, mounted where serve keeps it.
        let mount = &container.volume_mounts.clone().unwrap()[0];
        assert_eq!(mount.mount_path, VOLUME_DIR);
        assert!(
            args.contains(&format!("--state-dir {VOLUME_DIR}/")),
            "{args}"
        );
        let volume = &pod.volumes.unwrap()[0];
        assert!(volume.empty_dir.is_some(), "{volume:?}");
        let env = container.env.clone().unwrap();
        // Its own pod's name, for the leader label.
        let own = env.iter().find(|e| e.name == "SLIPWAY_POD_NAME").unwrap();
        let field = own.value_from.clone().unwrap().field_ref.unwrap();
        assert_eq!(field.field_path, "metadata.name");
        // The token from an optional Secret; nothing secret in the manifests.
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
    fn the_output_says_how_the_two_share_the_work() {
        let text = manifests("shop", "slipway:1", false);
        assert!(text.contains("one leads, the other stands by"));
        assert!(text.contains("select that label"));
        assert!(text.contains("kubectl delete namespace shop"));
        assert!(text.contains("sends the app folder to the leader"));
    }
}
