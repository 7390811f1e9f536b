//! `[kubernetes]`: how the app's pods are placed and run when the daemon runs them on Kubernetes
//! (`serve --kubernetes`); on one host the table is read, checked, and has no effect. Names are checked
//! as the API server would (DNS names, label keys and values) so a typo fails here, at file:line,
//! not at the first deploy.

use crate::limits;
use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::{GatewaySpec, KubernetesSpec, Toleration};
use toml::de::DeValue;

const KEYS: &[&str] = &[
    "namespace",
    "node_selector",
    "tolerations",
    "service_account",
    "image_pull_secrets",
    "requests",
    "gateway",
    "route",
    "service",
    "traffic_lag",
];
const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const TOLERATION: &str = "{ key = \"dedicated\", value = \"shop\", effect = \"NoSchedule\" }";

pub(crate) fn read(r: &mut Report, root: &Section, app: Option<&str>) -> KubernetesSpec {
    let mut spec = KubernetesSpec::default();
    let Some(k) = root.table(r, "kubernetes", "kubernetes") else {
        return spec;
    };
    k.check_keys(r, KEYS);
    if let Some(name) = k.text(r, "namespace", "\"shop\"") {
        if dns_label(name.get_ref()) {
            spec.namespace = Some(name.into_inner());
        } else {
            not_a_name(r, &name, "namespace");
        }
    }
    if let Some(name) = k.text(r, "service_account", "\"shop\"") {
        if dns_name(name.get_ref()) {
            spec.service_account = Some(name.into_inner());
        } else {
            not_a_name(r, &name, "service_account");
        }
    }
    if let Some(names) = k.string_list(r, "image_pull_secrets") {
        for name in names {
            if dns_name(name.get_ref()) {
                spec.image_pull_secrets.push(name.into_inner());
            } else {
                not_a_name(r, &name, "image_pull_secrets");
            }
        }
    }
    if let Some(selector) = k.table(r, "node_selector", "kubernetes.node_selector") {
        for (key, key_span, _) in selector.entries() {
            let Some(value) = selector.string(r, key) else {
                continue;
            };
            if !label_key(key) {
                r.error(
                    key_span,
                    format!("node_selector: {key:?} is not a label key"),
                )
                .label("not a label key")
                .help("a label key is `name` or `prefix/name`, e.g. \"kubernetes.io/os\"");
            } else if !label_value(value.get_ref()) {
                r.error(
                    value.span(),
                    format!("node_selector: {:?} is not a label value", value.get_ref()),
                )
                .label("not a label value")
                .help("at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit");
            } else {
                spec.node_selector
                    .insert(key.to_owned(), value.into_inner());
            }
        }
    }
    if let Some(value) = k.get("tolerations") {
        match value.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let DeValue::Table(table) = item.get_ref() else {
                        r.error(
                            item.span(),
                            format!("[kubernetes] tolerations {}: expected a table", i + 1),
                        )
                        .label("not a toleration")
                        .help(format!("write tolerations = [{TOLERATION}]"));
                        continue;
                    };
                    let name = format!("[kubernetes] toleration {}", i + 1);
                    let t = Section::named(&name, item.span(), table);
                    if let Some(toleration) = toleration(r, &t) {
                        spec.tolerations.push(toleration);
                    }
                }
            }
            _ => {
                k.wrong_type(r, "tolerations", value, "an array of tables")
                    .help(format!("write tolerations = [{TOLERATION}]"));
            }
        }
    }
    if let Some(requests) = k.table(r, "requests", "kubernetes.requests") {
        requests.check_keys(r, &["memory", "cpus"]);
        if let Some(memory) = requests.text(r, "memory", "\"128m\"") {
            match limits::parse_size("memory", memory.get_ref()) {
                Ok(bytes) if bytes > 0 => spec.memory_request = i64::try_from(bytes).ok(),
                Ok(_) => {
                    r.error(
                        memory.span(),
                        "[kubernetes.requests] memory must be more than 0",
                    )
                    .help("write memory = \"128m\"");
                }
                Err(why) => {
                    r.error(memory.span(), format!("[kubernetes.requests] {why}"))
                        .label("not a size");
                }
            }
        }
        if let Some(cpus) = requests.text(r, "cpus", "\"0.25\"") {
            match limits::parse_cpus(cpus.get_ref()) {
                Ok(nano) => spec.cpu_request = Some(nano),
                Err(why) => {
                    r.error(cpus.span(), format!("[kubernetes.requests] {why}"))
                        .label("not a number of CPUs");
                }
            }
        }
    }
    read_traffic(r, &k, app, &mut spec);
    if let Some(delay) = k.duration(r, "traffic_lag") {
        if spec.gateway.is_none() && spec.service.is_none() {
            r.warning(
                delay.span(),
                "[kubernetes] traffic_lag without gateway or service has no effect",
            )
            .label("ignored")
            .help("slipway's own proxy drains a release's pods before they go; the delay is for a gateway or a Service that routes the app");
        }
        spec.traffic_lag = Some(delay.into_inner());
    }
    spec
}

/// `gateway`, `route` and `service`: where the app's traffic is weighted, when not by slipway's proxy.
fn read_traffic(r: &mut Report, k: &Section, app: Option<&str>, spec: &mut KubernetesSpec) {
    if let Some(name) = k.text(r, "service", "\"shop\"") {
        if dns_label(name.get_ref()) {
            spec.service = Some(name.into_inner());
        } else {
            r.error(
                name.span(),
                format!(
                    "[kubernetes] service: {:?} is not a Service name",
                    name.get_ref()
                ),
            )
            .label("not a Service name")
            .help("at most 63 lowercase letters, digits and `-`, starting with a letter");
        }
    }
    let route = k.text(r, "route", "\"shop\"");
    if let Some(route) = &route
        && !dns_name(route.get_ref())
    {
        not_a_name(r, route, "route");
    }
    let Some(gateway) = k.text(r, "gateway", "\"infra/edge\"") else {
        if let Some(route) = route {
            r.error(route.span(), "[kubernetes] route without a gateway")
                .label("attached to nothing")
                .help(
                    "name the Gateway it attaches to: gateway = \"edge\" (or \"namespace/edge\")",
                );
        }
        return;
    };
    let (namespace, name) = match gateway.get_ref().split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, gateway.get_ref().as_str()),
    };
    if !namespace.is_none_or(dns_label) || !dns_name(name) {
        r.error(
            gateway.span(),
            format!(
                "[kubernetes] gateway: {:?} does not name a Gateway",
                gateway.get_ref()
            ),
        )
        .label("not a Gateway")
        .help("write the Gateway's name, or namespace/name: gateway = \"infra/edge\"");
        return;
    }
    let route = route
        .map(|r| r.into_inner())
        .or_else(|| app.map(str::to_owned))
        .unwrap_or_default();
    spec.gateway = Some(GatewaySpec {
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        route,
    });
}

fn toleration(r: &mut Report, t: &Section) -> Option<Toleration> {
    t.check_keys(r, &["key", "value", "exists", "effect"]);
    let key = t.text(r, "key", "\"dedicated\"");
    let value = t.string(r, "value");
    let exists = t.boolean(r, "exists").is_some_and(|b| *b.get_ref());
    let effect = t.text(r, "effect", "\"NoSchedule\"");
    if let Some(effect) = &effect
        && !EFFECTS.contains(&effect.get_ref().as_str())
    {
        let near = crate::suggest::closest(effect.get_ref(), EFFECTS)
            .map(|e| format!("did you mean \"{e}\"? "))
            .unwrap_or_default();
        r.error(
            effect.span(),
            format!(
                "{}: effect {:?} is not a taint effect",
                t.name(),
                effect.get_ref()
            ),
        )
        .label("unknown effect")
        .help(format!("{near}use one of {}", EFFECTS.join(", ")));
        return None;
    }
    if exists && let Some(value) = &value {
        r.error(
            value.span(),
            format!(
                "{}: a toleration with exists = true matches any value",
                t.name()
            ),
        )
        .label("ignored with exists")
        .help("remove `value`, or `exists` to match this value only");
        return None;
    }
    if key.is_none() && !exists {
        t.missing(
            r,
            "key",
            format!("name the taint's key, e.g. {TOLERATION}; or tolerate every taint with {{ exists = true }}"),
        );
        return None;
    }
    Some(Toleration {
        key: key.map(|k| k.into_inner()),
        value: value.map(|v| v.into_inner()),
        exists,
        effect: effect.map(|e| e.into_inner()),
    })
}

fn not_a_name(r: &mut Report, name: &toml::Spanned<String>, key: &str) {
    r.error(
        name.span(),
        format!(
            "[kubernetes] {key}: {:?} is not a Kubernetes name",
            name.get_ref()
        ),
    )
    .label("not a name")
    .help("lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit");
}

/// A DNS subdomain, as Kubernetes names most objects.
fn dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// A DNS label (RFC 1035), as Kubernetes names Services and namespaces.
fn dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn label_value(text: &str) -> bool {
    text.is_empty()
        || (text.len() <= 63
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text.ends_with(|c: char| c.is_ascii_alphanumeric())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn label_key(text: &str) -> bool {
    let (prefix, name) = match text.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, text),
    };
    !name.is_empty() && label_value(name) && prefix.is_none_or(dns_name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(table: &str) -> Result<slipway_core::spec::KubernetesSpec, String> {
        let text = format!(
            "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n\n[kubernetes]\n{table}\n"
        );
        crate::parse(&text, Path::new("/a/slipway.toml"))
            .map(|s| s.kubernetes)
            .map_err(|e| {
                let lines: Vec<String> = e.issues().iter().map(|i| i.to_string()).collect();
                lines.join("\n")
            })
    }

    #[test]
    fn the_table_reads_into_the_spec() {
        let spec = parse(
            "namespace = \"shop-prod\"\nservice_account = \"shop\"\nimage_pull_secrets = [\"registry\"]\n\
             node_selector = { \"kubernetes.io/os\" = \"linux\" }\n\
             tolerations = [{ key = \"dedicated\", value = \"shop\", effect = \"NoSchedule\" }, { exists = true }]\n\
             requests = { memory = \"128m\", cpus = \"0.25\" }",
        )
        .unwrap();
        assert_eq!(spec.namespace.as_deref(), Some("shop-prod"));
        assert_eq!(spec.service_account.as_deref(), Some("shop"));
        assert_eq!(spec.image_pull_secrets, ["registry"]);
        assert_eq!(spec.node_selector["kubernetes.io/os"], "linux");
        assert_eq!(spec.tolerations.len(), 2);
        assert!(spec.tolerations[1].exists && spec.tolerations[1].key.is_none());
        assert_eq!(spec.memory_request, Some(128 << 20));
        assert_eq!(spec.cpu_request, Some(250_000_000));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn the_gateway_route_and_service_read_into_the_spec() {
        let spec = parse("gateway = \"infra/edge\"\nservice = \"shop\"").unwrap();
        let gateway = spec.gateway.unwrap();
        assert_eq!(gateway.namespace.as_deref(), Some("infra"));
        assert_eq!(gateway.name, "edge");
        assert_eq!(gateway.route, "shop", "the app's name by default");
        assert_eq!(spec.service.as_deref(), Some("shop"));
        let spec = parse("gateway = \"edge\"\nroute = \"shop-canary\"").unwrap();
        let gateway = spec.gateway.unwrap();
        assert_eq!(
            (gateway.namespace, gateway.route.as_str()),
            (None, "shop-canary")
        );
        let err = parse("route = \"shop\"").unwrap_err();
        assert!(err.contains("route without a gateway"), "{err}");
        let err = parse("gateway = \"Infra/Edge\"").unwrap_err();
        assert!(err.contains("does not name a Gateway"), "{err}");
        let err = parse("service = \"1shop\"").unwrap_err();
        assert!(err.contains("not a Service name"), "{err}");
    }

    #[test]
    fn traffic_lag_reads_into_the_spec_and_is_warned_about_without_a_gateway_or_service() {
        let spec = parse("gateway = \"edge\"\ntraffic_lag = \"3s\"").unwrap();
        assert_eq!(spec.traffic_lag, Some(std::time::Duration::from_secs(3)));
        assert_eq!(parse("service = \"shop\"").unwrap().traffic_lag, None);
        let text = warnings_of(
            "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n[kubernetes]\ntraffic_lag = \"3s\"\n",
        );
        assert!(text.contains("slipway.toml:5"), "{text}");
        assert!(
            text.contains("traffic_lag without gateway or service"),
            "{text}"
        );
        let err = parse("gateway = \"edge\"\ntraffic_lag = 3").unwrap_err();
        assert!(err.contains("\"3s\""), "{err}");
    }

    #[test]
    fn a_gateway_app_is_warned_that_built_in_checks_read_slipway_s_proxy() {
        let text = "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n\
                    [analysis.golden]\nerror_rate = { max = \"1%\" }\n\
                    [kubernetes]\ngateway = \"edge\"\n";
        let text = warnings_of(text);
        assert!(text.contains("slipway.toml:7"), "{text}");
        assert!(text.contains("[analysis.golden]"), "{text}");
        assert!(text.contains("prometheus"), "{text}");
    }

    #[test]
    fn a_gateway_app_is_warned_that_its_slo_counts_slipway_s_proxy_only() {
        let text = "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n\
                    [slo]\navailability = \"99.9%\"\n\
                    [kubernetes]\ngateway = \"edge\"\n";
        let text = warnings_of(text);
        assert!(text.contains("slipway.toml:4"), "{text}");
        assert!(
            text.contains("a gateway's traffic does not pass it"),
            "{text}"
        );
        let without = warnings_of(
            "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n[slo]\navailability = \"99.9%\"\n",
        );
        assert!(!without.contains("[slo]"), "{without}");
    }

    #[test]
    fn a_gateway_canary_matches_one_cookie_per_route_and_is_warned_of_sticky_users() {
        let app = |deploy: &str| {
            format!(
                "app = \"shop\"\n[processes.web]\nimage = \"shop:1\"\n[deploy]\nstrategy = \"canary\"\n\
                 {deploy}\n[kubernetes]\ngateway = \"edge\"\n"
            )
        };
        let two =
            app("steps = [{ route = { cookie = { a = \"1\", b = \"2\" } } }, { weight = 10 }]");
        let err = crate::parse(&two, Path::new("/a/slipway.toml")).unwrap_err();
        let text: Vec<String> = err.issues().iter().map(|i| i.to_string()).collect();
        let text = text.join("\n");
        assert!(text.contains("slipway.toml:6"), "{text}");
        assert!(text.contains("one cookie per route"), "{text}");
        let one = app(
            "steps = [{ route = { cookie = { a = \"1\" }, header = { x-b = \"2\" } } }, { weight = 10 }]\n\
             sticky = \"cookie\"",
        );
        let warned = warnings_of(&one);
        assert!(warned.contains("slipway.toml:7"), "{warned}");
        assert!(warned.contains("keeps no user on a release"), "{warned}");
        assert!(!warned.contains("cookie per route"), "{warned}");
    }

    /// The warnings of a valid config, one a line.
    fn warnings_of(text: &str) -> String {
        let parsed = crate::parse_with_warnings(text, Path::new("/a/slipway.toml")).unwrap();
        let lines: Vec<String> = parsed.warnings.iter().map(|w| w.to_string()).collect();
        lines.join("\n")
    }

    #[test]
    fn mistakes_point_at_the_line_with_the_fix() {
        let err = parse("tolerations = [{ key = \"a\", effect = \"NoSchedul\" }]").unwrap_err();
        assert!(err.contains("slipway.toml:6"), "{err}");
        assert!(err.contains("did you mean \"NoSchedule\""), "{err}");
        let err = parse("service_account = \"Shop_Account\"").unwrap_err();
        assert!(err.contains("is not a Kubernetes name"), "{err}");
        let err = parse("namespace = \"Shop\"").unwrap_err();
        assert!(err.contains("is not a Kubernetes name"), "{err}");
        let err = parse("node_selector = { \"disk type\" = \"ssd\" }").unwrap_err();
        assert!(err.contains("not a label key"), "{err}");
        let err = parse("tolerations = [{ exists = true, value = \"x\" }]").unwrap_err();
        assert!(err.contains("matches any value"), "{err}");
        let err = parse("requests = { memory = \"lots\" }").unwrap_err();
        assert!(err.contains("use a size like"), "{err}");
        let err = parse("node_selectr = {}").unwrap_err();
        assert!(err.contains("did you mean `node_selector`"), "{err}");
    }
}
