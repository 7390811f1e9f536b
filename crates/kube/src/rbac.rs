//! The least a daemon needs in its namespace, as manifests for `kubectl apply -f -` (`slipway kube
//! rbac`): a ServiceAccount, a Role with exactly the verbs `pod_supervisor.rs`, `pod_logs.rs` and
//! `job_runner.rs` use (and, with `--gateway`, `route_writer.rs`), and the RoleBinding. Kept here,
//! beside the calls, so the two change together;
//! crates/cli/tests/kubernetes.rs runs a daemon with only this and checks it is enough.

/// (API group, resources, verbs) the daemon calls, and nothing else.
pub const RULES: &[(&str, &[&str], &[&str])] = &[
    // The watch, the deletion-cost mark on a retiring pod, its output; a release's one-off command
    // (release phase, cron run) is a pod of its own, made and deleted (`job_runner.rs`).
    (
        "",
        &["pods"],
        &["list", "watch", "patch", "create", "delete"],
    ),
    ("", &["pods/log"], &["get"]),
    // A release process's ReplicaSet: made, read back when it exists, scaled, listed at start, deleted.
    (
        "apps",
        &["replicasets"],
        &["create", "get", "list", "patch", "delete"],
    ),
    // Its secrets: made (or updated), tied to the ReplicaSet, deleted with it.
    ("", &["secrets"], &["create", "patch", "delete"]),
    // Its env's ConfigMap: made, tied to the ReplicaSet, deleted with it.
    ("", &["configmaps"], &["create", "patch", "delete"]),
];

/// What apps with `[kubernetes] gateway` or `service` add (`route_writer.rs`), with `--gateway`.
/// A server-side apply is a patch, and a create when the object is new.
pub const GATEWAY_RULES: &[(&str, &[&str], &[&str])] = &[
    // The app's own HTTPRoute: applied, and read for the gateway's status before a release that
    // left it loses its pods (`unrouted.rs`).
    (
        "gateway.networking.k8s.io",
        &["httproutes"],
        &["get", "create", "patch"],
    ),
    // A Service per routed release (applied, swept once after a restart, deleted when the route no
    // longer names it); the stable Service read once, to learn whose it is, and its selector applied.
    (
        "",
        &["services"],
        &["get", "list", "create", "patch", "delete"],
    ),
];

/// What `serve --lease NAME` adds (`leader_election.rs`, `state_secrets.rs`): reading and
/// renewing its own Lease and state Secrets, by name. `create` cannot be limited to names (the
/// name is in the body, not the URL, so RBAC never sees it): creating leases is granted to any name,
/// as creating secrets already is.
fn lease_rules(lease: &str) -> String {
    let secrets: Vec<String> = crate::state_chunks::all_names(lease);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    format!(
        "  - apiGroups: [\"coordination.k8s.io\"]\n    resources: [\"leases\"]\n    verbs: [\"create\"]\n\
         \x20 - apiGroups: [\"coordination.k8s.io\"]\n    resources: [\"leases\"]\n    resourceNames: [\"{lease}\"]\n    verbs: [\"get\", \"update\"]\n\
         \x20 - apiGroups: [\"\"]\n    resources: [\"secrets\"]\n    resourceNames: [{}]\n    verbs: [\"get\", \"update\"]\n",
        quoted(&secrets)
    )
}

/// The manifests for a daemon running as `service_account` in `namespace`; with `gateway`, the
/// rights apps with `[kubernetes] gateway` or `service` need too.
pub fn manifests(namespace: &str, service_account: &str, gateway: bool) -> String {
    manifests_with_lease(namespace, service_account, gateway, None, &[])
}

/// As [`manifests`], and with `lease`, what `serve --lease` needs for that Lease; with
/// `pull_secrets`, reading those image pull secrets (by name only).
pub fn manifests_with_lease(
    namespace: &str,
    service_account: &str,
    gateway: bool,
    lease: Option<&str>,
    pull_secrets: &[String],
) -> String {
    let mut rules = app_rules(gateway, pull_secrets);
    if let Some(lease) = lease {
        rules.push_str(&lease_rules(lease));
    }
    format!(
        "# The least slipway needs to run image processes as pods in {namespace}\n\
         # (`slipway serve --kubernetes --namespace {namespace}`). Apply: kubectl apply -f -\n\
         apiVersion: v1\n\
         kind: ServiceAccount\n\
         metadata:\n  name: {service_account}\n  namespace: {namespace}\n\
         ---\n{}",
        role_and_binding(namespace, service_account, namespace, &rules)
    )
}

/// A Role named like the account in `namespace` with `rules`, bound to the account, which lives in
/// `account_namespace`.
fn role_and_binding(
    namespace: &str,
    service_account: &str,
    account_namespace: &str,
    rules: &str,
) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: Role\n\
         metadata:\n  name: {service_account}\n  namespace: {namespace}\n\
         rules:\n{rules}\
         ---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: RoleBinding\n\
         metadata:\n  name: {service_account}\n  namespace: {namespace}\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {service_account}\n\
         subjects:\n  - kind: ServiceAccount\n    name: {service_account}\n    namespace: {account_namespace}\n"
    )
}

/// The rules of the Role in every namespace the daemon runs pods in. The image pull secrets are read
/// (by name: RBAC can limit a `get`) when a registry wants a login to say which digest a tag names.
fn app_rules(gateway: bool, pull_secrets: &[String]) -> String {
    let mut rules = String::new();
    let extra: &[_] = if gateway { GATEWAY_RULES } else { &[] };
    for (group, resources, verbs) in RULES.iter().chain(extra) {
        rules.push_str(&format!(
            "  - apiGroups: [\"{group}\"]\n    resources: [{}]\n    verbs: [{}]\n",
            quoted(resources),
            quoted(verbs)
        ));
    }
    if !pull_secrets.is_empty() {
        let names: Vec<&str> = pull_secrets.iter().map(String::as_str).collect();
        rules.push_str(&format!(
            "  - apiGroups: [\"\"]\n    resources: [\"secrets\"]\n    resourceNames: [{}]\n    verbs: [\"get\"]\n",
            quoted(&names)
        ));
    }
    rules
}

/// For an app with `[kubernetes] namespace = "<app_namespace>"`: the same Role (without the
/// lease's rights) in that namespace, bound to the daemon's account in its own `namespace`.
pub fn app_namespace(
    namespace: &str,
    service_account: &str,
    gateway: bool,
    pull_secrets: &[String],
    app_namespace: &str,
) -> String {
    format!(
        "# What slipway ({service_account} in {namespace}) needs to run apps' pods in {app_namespace}.\n{}",
        role_and_binding(
            app_namespace,
            service_account,
            namespace,
            &app_rules(gateway, pull_secrets)
        )
    )
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_lists_every_rule_and_binds_the_account() {
        let text = manifests("shop", "slipway", false);
        assert!(text.contains("kind: Role\n"));
        assert!(text.contains("resources: [\"replicasets\"]"));
        assert!(text.contains("verbs: [\"list\", \"watch\", \"patch\", \"create\", \"delete\"]"));
        assert!(text.contains(
            "subjects:\n  - kind: ServiceAccount\n    name: slipway\n    namespace: shop"
        ));
        assert_eq!(text.matches("---").count(), 2);
        assert!(!text.contains("httproutes") && !text.contains("services"));
    }

    #[test]
    fn with_a_lease_the_role_may_renew_it_and_its_state_secrets_by_name_only() {
        let text = manifests_with_lease("shop", "slipway", false, Some("slipway"), &[]);
        assert!(text.contains(
            "resources: [\"leases\"]\n    resourceNames: [\"slipway\"]\n    verbs: [\"get\", \"update\"]"
        ));
        assert!(text.contains("resourceNames: [\"slipway-state\", \"slipway-state-a-0\""));
        assert!(!manifests("shop", "slipway", false).contains("leases"));
    }

    #[test]
    fn an_app_namespace_gets_the_role_bound_to_the_daemon_s_account() {
        let text = app_namespace("slipway", "slipway", false, &[], "shop-prod");
        assert!(text.contains("kind: Role\nmetadata:\n  name: slipway\n  namespace: shop-prod\n"));
        assert!(text.contains("resources: [\"replicasets\"]"));
        assert!(text.contains(
            "subjects:\n  - kind: ServiceAccount\n    name: slipway\n    namespace: slipway"
        ));
        assert!(!text.contains("leases") && !text.contains("kind: ServiceAccount\nmetadata"));
        assert_eq!(text.matches("---").count(), 1);
    }

    #[test]
    fn pull_secrets_are_readable_by_name_only() {
        let text = manifests_with_lease("shop", "slipway", false, None, &["ghcr".into()]);
        assert!(text.contains(
            "resources: [\"secrets\"]\n    resourceNames: [\"ghcr\"]\n    verbs: [\"get\"]"
        ));
        assert!(!manifests("shop", "slipway", false).contains("resourceNames"));
    }

    #[test]
    fn with_gateway_the_role_may_apply_routes_and_services() {
        let text = manifests("shop", "slipway", true);
        assert!(text.contains(
            "  - apiGroups: [\"gateway.networking.k8s.io\"]\n    resources: [\"httproutes\"]\n    verbs: [\"get\", \"create\", \"patch\"]"
        ));
        assert!(text.contains("resources: [\"services\"]"));
    }
}
