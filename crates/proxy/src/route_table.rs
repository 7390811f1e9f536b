//! The route table: which app a request belongs to (host + path prefix), and which release and instance
//! serve it.
//!
//! The controller builds a [`RouteTable`] (plain data) and publishes it; the proxy compiles it once into a
//! [`CompiledTable`] (hosts lowercased, apps ordered by specificity, cumulative weights), so the per-request
//! lookup is a short scan with no allocation.

use std::sync::Arc;

use crate::backend::{Backend, Lease};
use crate::pick;

/// Everything the proxy routes, as published by the controller. Immutable once published.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    pub apps: Vec<AppRoute>,
}

/// How one app is reached and which releases serve it.
#[derive(Debug, Clone)]
pub struct AppRoute {
    pub app: String,
    /// Hosts this app answers to; empty = any host. Matched case-insensitively, port stripped.
    pub hosts: Vec<String>,
    /// Path prefix, `"/"` by default; matched on segment boundaries (`/api` matches `/api` and `/api/x`,
    /// not `/apix`). The longest matching prefix wins among apps matching the host.
    pub path_prefix: String,
    pub groups: Vec<ReleaseGroup>,
}

impl AppRoute {
    /// An app on any host and every path, with no releases yet.
    pub fn new(app: impl Into<String>) -> AppRoute {
        AppRoute {
            app: app.into(),
            hosts: Vec::new(),
            path_prefix: "/".to_owned(),
            groups: Vec::new(),
        }
    }
}

/// The instances of one release and the share of traffic they get.
#[derive(Debug, Clone)]
pub struct ReleaseGroup {
    pub release: u64,
    /// Relative share of ordinary traffic; 0 = reachable only by preview (header or `vN.` host).
    pub weight: u32,
    pub backends: Vec<Arc<Backend>>,
}

/// A request's destination: the backend (already counted in its `in_flight`), and for messages, the app and
/// release.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) lease: Lease,
    pub(crate) app: Arc<str>,
    pub(crate) release: u64,
    /// Chosen by preview (header or host prefix): retries stay within this release.
    pub(crate) preview: bool,
}

/// The outcome of routing one request.
#[derive(Debug)]
pub(crate) enum Choice {
    NoApp,
    UnknownRelease { app: Arc<str>, release: u64 },
    NotReady { app: Arc<str> },
    Chosen(Target),
}

/// A [`RouteTable`] prepared for fast lookups.
#[derive(Debug)]
pub(crate) struct CompiledTable {
    pub(crate) table: Arc<RouteTable>,
    /// Most specific first: longer prefix, then explicit hosts before "any host".
    apps: Vec<CompiledApp>,
}

#[derive(Debug)]
struct CompiledApp {
    /// Index into `table.apps`.
    index: usize,
    name: Arc<str>,
    hosts: Vec<String>,
    prefix: String,
    /// Indexes of groups with weight > 0 and at least one backend, with their cumulative weights.
    serving: Vec<usize>,
    cumulative: Vec<u64>,
}

impl CompiledTable {
    pub(crate) fn compile(table: Arc<RouteTable>) -> CompiledTable {
        let mut apps: Vec<CompiledApp> = table
            .apps
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let mut serving = Vec::new();
                let mut cumulative = Vec::new();
                let mut total = 0u64;
                for (g, group) in route.groups.iter().enumerate() {
                    if group.weight > 0 && !group.backends.is_empty() {
                        total += u64::from(group.weight);
                        serving.push(g);
                        cumulative.push(total);
                    }
                }
                CompiledApp {
                    index,
                    name: Arc::from(route.app.as_str()),
                    hosts: route
                        .hosts
                        .iter()
                        .map(|h| host_without_port(h).to_ascii_lowercase())
                        .collect(),
                    prefix: normalize_prefix(&route.path_prefix),
                    serving,
                    cumulative,
                }
            })
            .collect();
        apps.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| a.hosts.is_empty().cmp(&b.hosts.is_empty()))
        });
        CompiledTable { table, apps }
    }

    /// Routes a request for `host` (port already stripped) and `path`; `preview` comes from the
    /// `X-Slipway-Release` header. A `vN.` host prefix also previews release N when the rest of the host
    /// routes to an app.
    pub(crate) fn choose(&self, host: &str, path: &str, preview: Option<u64>) -> Choice {
        if preview.is_none()
            && let Some((release, rest)) = split_preview_host(host)
            && let Some(app) = self.find(rest, path)
        {
            return self.choose_in(app, Some(release));
        }
        match self.find(host, path) {
            Some(app) => self.choose_in(app, preview),
            None => Choice::NoApp,
        }
    }

    /// Another backend for a request whose first backend refused the connection: same release first, then
    /// (unless the request was a preview) any serving release.
    pub(crate) fn choose_retry(
        &self,
        app: &str,
        release: u64,
        preview: bool,
        failed: &Arc<Backend>,
    ) -> Option<Target> {
        let compiled = self.apps.iter().find(|a| &*a.name == app)?;
        let route = &self.table.apps[compiled.index];
        let target = |backend: &Arc<Backend>, release: u64| Target {
            lease: Lease::acquire(backend),
            app: compiled.name.clone(),
            release,
            preview,
        };
        if let Some(group) = route.groups.iter().find(|g| g.release == release)
            && let Some(backend) = pick::least_outstanding(&group.backends, Some(failed))
        {
            return Some(target(backend, release));
        }
        if preview {
            return None;
        }
        compiled
            .serving
            .iter()
            .map(|&g| &route.groups[g])
            .find_map(|group| {
                pick::least_outstanding(&group.backends, Some(failed))
                    .map(|b| target(b, group.release))
            })
    }

    fn find(&self, host: &str, path: &str) -> Option<&CompiledApp> {
        self.apps.iter().find(|app| {
            (app.hosts.is_empty() || app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
                && prefix_matches(&app.prefix, path)
        })
    }

    fn choose_in(&self, app: &CompiledApp, preview: Option<u64>) -> Choice {
        let route = &self.table.apps[app.index];
        let group = match preview {
            Some(release) => match route.groups.iter().find(|g| g.release == release) {
                Some(group) => group,
                None => {
                    return Choice::UnknownRelease {
                        app: app.name.clone(),
                        release,
                    };
                }
            },
            None => match pick::weighted(&app.cumulative) {
                Some(i) => &route.groups[app.serving[i]],
                None => {
                    return Choice::NotReady {
                        app: app.name.clone(),
                    };
                }
            },
        };
        match pick::least_outstanding(&group.backends, None) {
            Some(backend) => Choice::Chosen(Target {
                lease: Lease::acquire(backend),
                app: app.name.clone(),
                release: group.release,
                preview: preview.is_some(),
            }),
            None => Choice::NotReady {
                app: app.name.clone(),
            },
        }
    }
}

/// `"Example.com:8080"` → `"Example.com"`, `"[::1]:80"` → `"[::1]"`.
pub(crate) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Parses a release selector: `"v7"`, `"V7"` or `"7"`.
pub(crate) fn parse_release(value: &str) -> Option<u64> {
    let digits = value.strip_prefix(['v', 'V']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `"v7.example.com"` → `(7, "example.com")`.
fn split_preview_host(host: &str) -> Option<(u64, &str)> {
    let (label, rest) = host.split_once('.')?;
    if !label.starts_with(['v', 'V']) || rest.is_empty() {
        return None;
    }
    Some((parse_release(label)?, rest))
}

fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim();
    if trimmed.is_empty() || trimmed == "/" {
        return "/".to_owned();
    }
    let with_slash = if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    with_slash.trim_end_matches('/').to_owned()
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(port: u16) -> Arc<Backend> {
        Backend::new(
            format!("i{port}"),
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )
    }

    fn app(name: &str, hosts: &[&str], prefix: &str, groups: Vec<ReleaseGroup>) -> AppRoute {
        AppRoute {
            app: name.to_owned(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            path_prefix: prefix.to_owned(),
            groups,
        }
    }

    fn group(release: u64, weight: u32, backends: Vec<Arc<Backend>>) -> ReleaseGroup {
        ReleaseGroup {
            release,
            weight,
            backends,
        }
    }

    fn compiled(apps: Vec<AppRoute>) -> CompiledTable {
        CompiledTable::compile(Arc::new(RouteTable { apps }))
    }

    fn chosen(choice: Choice) -> Target {
        match choice {
            Choice::Chosen(t) => t,
            other => panic!("expected a target, got {other:?}"),
        }
    }

    #[test]
    fn host_and_longest_prefix() {
        let t = compiled(vec![
            app(
                "site",
                &["Example.com:80"],
                "/",
                vec![group(1, 1, vec![backend(1)])],
            ),
            app(
                "api",
                &["example.com"],
                "/api/",
                vec![group(1, 1, vec![backend(2)])],
            ),
            app("any", &[], "/", vec![group(1, 1, vec![backend(3)])]),
        ]);
        assert_eq!(
            &*chosen(t.choose("EXAMPLE.com", "/api/users", None)).app,
            "api"
        );
        assert_eq!(&*chosen(t.choose("example.com", "/api", None)).app, "api");
        assert_eq!(&*chosen(t.choose("example.com", "/apix", None)).app, "site");
        assert_eq!(&*chosen(t.choose("other.org", "/api", None)).app, "any");
    }

    #[test]
    fn no_app_and_not_ready() {
        let t = compiled(vec![app(
            "a",
            &["a.test"],
            "/",
            vec![group(1, 0, vec![backend(1)])],
        )]);
        assert!(matches!(t.choose("b.test", "/", None), Choice::NoApp));
        assert!(matches!(
            t.choose("a.test", "/", None),
            Choice::NotReady { .. }
        ));
    }

    #[test]
    fn preview_by_header_and_host() {
        let t = compiled(vec![app(
            "a",
            &["a.test"],
            "/",
            vec![
                group(6, 100, vec![backend(1)]),
                group(7, 0, vec![backend(2)]),
            ],
        )]);
        assert_eq!(chosen(t.choose("a.test", "/", Some(7))).release, 7);
        assert_eq!(chosen(t.choose("v7.a.test", "/", None)).release, 7);
        assert_eq!(chosen(t.choose("a.test", "/", None)).release, 6);
        assert!(matches!(
            t.choose("a.test", "/", Some(9)),
            Choice::UnknownRelease { release: 9, .. }
        ));
        assert!(matches!(
            t.choose("v9.a.test", "/", None),
            Choice::UnknownRelease { release: 9, .. }
        ));
    }

    #[test]
    fn retry_prefers_same_release_then_any() {
        let (b1, b2, b3) = (backend(1), backend(2), backend(3));
        let t = compiled(vec![app(
            "a",
            &[],
            "/",
            vec![
                group(1, 1, vec![b1.clone(), b2.clone()]),
                group(2, 1, vec![b3.clone()]),
            ],
        )]);
        let again = t.choose_retry("a", 1, false, &b1).expect("retry");
        assert!(Arc::ptr_eq(again.lease.backend(), &b2));
        let again = t.choose_retry("a", 2, false, &b3).expect("retry");
        assert_eq!(again.release, 1);
        assert!(t.choose_retry("a", 2, true, &b3).is_none());
    }

    #[test]
    fn parsing_helpers() {
        assert_eq!(host_without_port("a.test:8080"), "a.test");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("a.test"), "a.test");
        assert_eq!(parse_release("v12"), Some(12));
        assert_eq!(parse_release("12"), Some(12));
        assert_eq!(parse_release("v"), None);
        assert_eq!(parse_release("x1"), None);
        assert_eq!(split_preview_host("v3.a.test"), Some((3, "a.test")));
        assert_eq!(split_preview_host("video.a.test"), None);
        assert_eq!(normalize_prefix("api/"), "/api");
        assert!(prefix_matches("/", "/anything"));
    }
}
