//! The top level of `slipway.toml`: the app's name, and each section read into one [`AppSpec`].

use crate::procfile::Procfile;
use crate::report::Report;
use crate::table::Section;
use crate::{
    analysis, artifact, cron, deploy, drill, env, kubernetes, notify, process, release_phase,
    routing, slo,
};
use slipway_core::spec::{AppSpec, RetentionSpec};
use std::path::Path;
use toml::de::{DeTable, DeValue};

const KEYS: &[&str] = &[
    "app",
    "artifact",
    "env",
    "secrets",
    "routing",
    "processes",
    "deploy",
    "releases",
    "analysis",
    "notify",
    "release",
    "cron",
    "kubernetes",
    "slo",
    "drill",
];
const DEFAULT_KEEP: u32 = 10;

/// Walks the whole document; returns a spec whenever nothing was reported as an error.
pub(crate) fn read(
    r: &mut Report,
    doc: &DeTable,
    base_dir: &Path,
    procfile: Option<&Procfile>,
) -> Option<AppSpec> {
    let root = Section::new("", 0..0, doc);
    root.check_keys(r, KEYS);
    let app = app_name(r, &root);
    let artifact = artifact::read(r, &root, base_dir);
    let env = env::read_env(r, &root);
    let secrets = env::read_secrets(r, &root, &env, base_dir);
    let processes = process::read_all(r, &root, procfile);
    let release_phase = release_phase::read(r, &root, procfile);
    let cron = cron::read(r, &root);
    let routing = routing::read(r, &root);
    let analysis = analysis::read(r, &root);
    let deploy = deploy::read(r, &root, &analysis);
    let notify = notify::read(r, &root, base_dir);
    let retention = releases(r, &root);
    let kubernetes = kubernetes::read(r, &root, app.as_deref());
    let slo = slo::read(r, &root);
    let drill = drill::read(r, &root, processes.contains_key("web"));

    if !routing.hosts.is_empty()
        && !processes.is_empty()
        && !processes.keys().any(|n| n == "web")
        && let Some(span) = root.key_span("routing")
    {
        r.warning(span, "[routing] has no effect: no process is named `web`")
            .help("only [processes.web] receives traffic; rename the serving process to `web`");
    }
    gateway_analysis_warning(r, &root, &kubernetes, &analysis.specs);
    gateway_slo_warning(r, &root, &kubernetes, slo.is_some());
    gateway_canary_checks(r, &root, &kubernetes, &deploy.strategy);
    if r.has_errors() {
        return None;
    }
    Some(AppSpec {
        app: app?,
        artifact,
        env,
        config_vars: Default::default(),
        secrets,
        processes,
        routing,
        deploy,
        retention,
        analysis: analysis.specs,
        notify,
        release_phase,
        cron,
        kubernetes,
        slo,
        drill,
        drill_fault: None,
    })
}

/// `app = "..."`: `[a-z0-9][a-z0-9-]*`, at most 63 characters (a DNS label: it names things).
fn app_name(r: &mut Report, root: &Section) -> Option<String> {
    if root.get("app").is_none() {
        root.missing(
            r,
            "app",
            "name the app at the top of the file, e.g. app = \"hello\"",
        );
        return None;
    }
    let name = root.text(r, "app", "\"hello\"")?;
    let n = name.get_ref();
    let valid = n.len() <= 63
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return Some(name.into_inner());
    }
    let example = app_name_like(n).unwrap_or_else(|| "hello".to_string());
    let why = if n.len() > 63 {
        "is longer than 63 characters"
    } else {
        "is not a valid app name"
    };
    r.error(name.span(), format!("app \"{n}\" {why}"))
        .label("invalid name")
        .help(format!("use lowercase letters, digits and `-`, starting with a letter or digit: app = \"{example}\""));
    None
}

/// With `[kubernetes] gateway`, the canary's traffic passes the gateway, not slipway's proxy, so the
/// built-in checks (on the proxy's counters) would judge next to nothing: say so where `gateway` is.
fn gateway_analysis_warning(
    r: &mut Report,
    root: &Section,
    kubernetes: &slipway_core::spec::KubernetesSpec,
    analysis: &std::collections::BTreeMap<String, slipway_core::spec::AnalysisTemplate>,
) {
    use slipway_core::spec::Check;
    if kubernetes.gateway.is_none() {
        return;
    }
    let built_in: Vec<&str> = analysis
        .iter()
        .filter(|(_, t)| {
            t.checks
                .iter()
                .any(|c| matches!(c, Check::ErrorRate { .. } | Check::Latency { .. }))
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if built_in.is_empty() {
        return;
    }
    if let Some(span) = root
        .table(r, "kubernetes", "kubernetes")
        .and_then(|k| k.key_span("gateway"))
    {
        r.warning(
            span,
            format!(
                "[analysis.{}]: error_rate and latency checks read slipway's proxy, which a gateway's \
                 traffic does not pass",
                built_in.join("], [analysis.")
            ),
        )
        .label("traffic goes through the gateway")
        .help("judge a canary on the gateway's metrics: a `prometheus` check, with {{service}} for the canary's Service (docs/kubernetes.md)");
    }
}

/// With `[kubernetes] gateway`, `[slo]` counts only what passes slipway's proxy — none of the gateway's
/// traffic — so its budget, deploy hold and canary gate would judge next to nothing: say so at `[slo]`.
fn gateway_slo_warning(
    r: &mut Report,
    root: &Section,
    kubernetes: &slipway_core::spec::KubernetesSpec,
    has_slo: bool,
) {
    if kubernetes.gateway.is_none() || !has_slo {
        return;
    }
    if let Some(span) = root.key_span("slo") {
        r.warning(
            span,
            "[slo] counts the requests slipway's proxy serves, and a gateway's traffic does not pass it",
        )
        .label("the budget, the deploy hold and the canary gate would see next to nothing")
        .help("keep the SLO where the gateway's metrics are (its own alerting), or route through slipway's proxy (remove `gateway`)");
    }
}

/// With `[kubernetes] gateway`, a canary's routes and mirror go into slipway's HTTPRoute
/// (docs/kubernetes.md), where a match names the `Cookie` header once (so one cookie per route),
/// and which has no way to keep a user on a release in Gateway API's standard channel (sticky
/// users then stick only through slipway's own proxy).
fn gateway_canary_checks(
    r: &mut Report,
    root: &Section,
    kubernetes: &slipway_core::spec::KubernetesSpec,
    strategy: &slipway_core::spec::Strategy,
) {
    use slipway_core::spec::{CanaryStep, Strategy};
    let Strategy::Canary(canary) = strategy else {
        return;
    };
    if kubernetes.gateway.is_none() {
        return;
    }
    let Some(deploy) = root.table(r, "deploy", "deploy") else {
        return;
    };
    let many_cookies = canary
        .steps
        .iter()
        .any(|s| matches!(s, CanaryStep::Route(m) if m.cookies.len() > 1));
    if many_cookies && let Some(span) = deploy.key_span("steps") {
        r.error(
            span,
            "[deploy] steps: a route matches more than one cookie, and a gateway routes this app",
        )
        .label("its HTTPRoute matches one cookie per route")
        .help("keep one cookie per route step (headers may be added), or route through slipway's proxy (remove `gateway`)");
    }
    if canary.sticky.is_some()
        && let Some(span) = deploy.key_span("sticky")
    {
        r.warning(
            span,
            "[deploy] sticky: a gateway routes this app, and an HTTPRoute keeps no user on a release",
        )
        .label("users stick only through slipway's own proxy")
        .help("Gateway API's sessionPersistence is in its experimental channel only; route through slipway's proxy (remove `gateway`) for sticky canaries");
    }
}

/// `[releases] keep`: at least 2, so that the stable release and its rollback target both survive.
fn releases(r: &mut Report, root: &Section) -> RetentionSpec {
    let mut spec = RetentionSpec {
        keep_releases: DEFAULT_KEEP,
    };
    let Some(releases) = root.table(r, "releases", "releases") else {
        return spec;
    };
    releases.check_keys(r, &["keep"]);
    if let Some(value) = releases.get("keep")
        && let DeValue::Integer(i) = value.get_ref()
        && i64::from_str_radix(i.as_str(), i.radix()).is_ok_and(|n| (0..2).contains(&n))
    {
        r.error(value.span(), "[releases]: keep must be at least 2")
            .label("too few")
            .help("the stable release and the rollback target both need their artifacts: set keep = 2 or more");
        return spec;
    }
    if let Some(keep) = releases.integer(r, "keep", 2..=10_000) {
        spec.keep_releases = keep.into_inner();
    }
    spec
}

/// A valid app name made from any text (a folder's name, a mistyped name): lowercase letters and digits
/// kept, everything else `-`, at most 63 characters. `None` when nothing usable is left.
pub fn app_name_like(text: &str) -> Option<String> {
    let name: String = text
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    (!name.is_empty()).then_some(name)
}
