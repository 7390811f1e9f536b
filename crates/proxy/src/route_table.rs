//! The route table: which app a request belongs to (host + path prefix), and which release and instance
//! serve it.
//!
//! The controller builds a [`RouteTable`] (plain data) and publishes it; the proxy compiles it once into a
//! [`CompiledTable`] (hosts lowercased, apps ordered by specificity, cumulative weights, rules' header names
//! parsed, sticky buckets laid out), so the per-request lookup is a short scan with no allocation.
//!
//! An update costs what changed, not what is routed: each app's route is an `Arc`, and an app whose `Arc`
//! is the one the previous table had keeps its compiled form (the controller hands unchanged apps over
//! as the same `Arc`). Publishing a table where one app of a hundred changed compiles that one app.
//!
//! Within an app, a request's release is decided in this order:
//! 1. a preview (`X-Slipway-Release: vN` or a `vN.` host), any release, even at weight 0;
//! 2. the first [`RouteRule`] whose headers and cookies all match and whose release has instances;
//! 3. the app's [`Sticky`] setting, if the request carries what it needs (cookie, header);
//! 4. a weighted random pick among releases with weight > 0.
//!
//! Each group and rule carries its own [`ReleaseMetrics`], recorded when the response head goes out, and a
//! [`Mirror`] may copy some requests to a shadow release (see `shadow`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http::header::{HeaderName, HeaderValue};
use slipway_core::spec::{RouteMatch, Sticky};

use crate::backend::{Backend, Lease};
use crate::demand::Demand;
use crate::pick;
use crate::release_metrics::ReleaseMetrics;
use crate::request_headers::RequestHeaders;
use crate::route_match::{CompiledMatch, cookie};
use crate::shadow_report::ShadowReport;
use crate::sticky::{BucketMap, bucket_of};

/// Everything the proxy routes, as published by the controller. Immutable once published.
///
/// An app passed on as the same `Arc` as in the previous table is not compiled again.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    pub apps: Vec<Arc<AppRoute>>,
}

impl RouteTable {
    /// A table of fresh routes (none shared with a previous table).
    pub fn of(apps: impl IntoIterator<Item = AppRoute>) -> RouteTable {
        RouteTable {
            apps: apps.into_iter().map(Arc::new).collect(),
        }
    }
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
    /// Checked in order before the weighted pick: a matching request goes to the rule's release.
    pub routes: Vec<RouteRule>,
    /// Keeps a user on one release while several get traffic.
    pub sticky: Option<Sticky>,
    /// Copies some requests to a shadow release, whose answers are compared and discarded.
    pub mirror: Option<Mirror>,
    /// The largest request body forwarded (413 beyond); `None`: no limit.
    pub max_body_size: Option<u64>,
    /// Plain HTTP requests get a 308 to the same URL over HTTPS (ACME challenges excepted).
    pub redirect_https: bool,
    /// Responses over TLS carry `Strict-Transport-Security` with this max-age (seconds).
    pub hsts_max_age: Option<u64>,
    /// Set for an app that scales to zero: its activity is counted, and while it has no instance a
    /// request is held (the controller woken) rather than refused.
    pub demand: Option<Arc<Demand>>,
    /// `slipway maintenance on`: requests are held, then answered with the maintenance page.
    pub maintenance: Option<Maintenance>,
}

/// An app in maintenance: each request waits up to `hold` for the app to come back, then gets the page
/// (503, with `Retry-After`). Previews (`X-Slipway-Release`, `vN.` hosts) still reach the app, so it can be
/// checked before it is opened again.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub hold: Duration,
    /// The page's HTML; `None`: the proxy's own text page.
    pub page: Option<Arc<str>>,
    /// Seconds, for `Retry-After`.
    pub retry_after: u64,
    /// Requests held now (for `status`); shared by every table of the same maintenance.
    pub held: Arc<std::sync::atomic::AtomicU64>,
}

impl AppRoute {
    /// An app on any host and every path, with no releases, rules, stickiness or mirror yet.
    pub fn new(app: impl Into<String>) -> AppRoute {
        AppRoute {
            app: app.into(),
            hosts: Vec::new(),
            path_prefix: "/".to_owned(),
            groups: Vec::new(),
            routes: Vec::new(),
            sticky: None,
            mirror: None,
            max_body_size: None,
            redirect_https: false,
            hsts_max_age: None,
            demand: None,
            maintenance: None,
        }
    }
}

/// The instances of one release and the share of traffic they get.
#[derive(Debug, Clone)]
pub struct ReleaseGroup {
    pub release: u64,
    /// Relative share of ordinary traffic; 0 = reachable only by preview (header or `vN.` host) or a rule.
    pub weight: u32,
    pub backends: Vec<Arc<Backend>>,
    /// Where this release's answers are counted (weighted, sticky and preview requests; not rule-routed or
    /// shadow ones). Shared across tables, so counts survive table swaps.
    pub metrics: Arc<ReleaseMetrics>,
    /// `slipway drill`: a share of this release's requests answered with a failure by the proxy itself.
    pub fault: Option<InjectedFault>,
}

/// Failures the proxy injects into a release's requests (`slipway drill`): each request to the release
/// fails with this probability, answered 503 by the proxy without reaching an instance, counted as a 5xx
/// of the release (so the analysis sees it) and as injected (so a drill can tell it from a real failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    /// The share of requests failed, in millionths (`1_000_000` = every request).
    pub per_million: u32,
}

impl InjectedFault {
    /// The message on an injected failure's page.
    pub const MESSAGE: &'static str = "slipway drill: injected failure";

    /// `rate` in 0.0..=1.0 (clamped).
    pub fn with_rate(rate: f64) -> InjectedFault {
        InjectedFault {
            per_million: (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32,
        }
    }

    /// Whether this request is one to fail.
    pub(crate) fn fires(&self) -> bool {
        self.per_million > 0 && pick::below(1_000_000) < u64::from(self.per_million)
    }
}

impl ReleaseGroup {
    /// A group with fresh metrics.
    pub fn new(release: u64, weight: u32, backends: Vec<Arc<Backend>>) -> ReleaseGroup {
        ReleaseGroup {
            release,
            weight,
            backends,
            metrics: ReleaseMetrics::new(),
            fault: None,
        }
    }
}

/// Requests matching `matcher` go to `release` (A/B tests, internal testing), counted in the rule's own
/// `metrics` (the per-variant split).
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub matcher: RouteMatch,
    pub release: u64,
    pub metrics: Arc<ReleaseMetrics>,
}

/// Copy `percent` % of body-less GET/HEAD/OPTIONS requests to `release`; results go to `report`. Requests
/// already routed to `release`, and previews, are not copied.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub release: u64,
    pub percent: u32,
    pub report: Arc<ShadowReport>,
}

/// What routing needs to know about a request.
pub(crate) struct RequestView<'a, H: RequestHeaders> {
    /// Port already stripped.
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    /// From the `X-Slipway-Release` header.
    pub(crate) preview: Option<u64>,
    pub(crate) headers: &'a H,
    pub(crate) method: &'a Method,
    /// No body and no upgrade: a candidate for mirroring.
    pub(crate) body_less: bool,
    /// The client's address, as sent in `X-Forwarded-For`.
    pub(crate) client_ip: &'a HeaderValue,
}

/// A request's destination: the backend (already counted in its `in_flight`), where its answer is counted,
/// and for messages, the app and release.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) lease: Lease,
    pub(crate) app: Arc<str>,
    pub(crate) release: u64,
    /// Chosen by preview (header or host prefix): retries stay within this release.
    pub(crate) preview: bool,
    pub(crate) metrics: Arc<ReleaseMetrics>,
    /// A sticky cookie to set on the response (`name=vN; ...`).
    pub(crate) set_cookie: Option<HeaderValue>,
    /// A shadow copy to send, with its backend already counted.
    pub(crate) shadow: Option<ShadowPlan>,
    /// The app's largest request body (`AppRoute::max_body_size`).
    pub(crate) max_body: Option<u64>,
    /// `AppRoute::hsts_max_age`.
    pub(crate) hsts_max_age: Option<u64>,
    /// Answer with an injected failure instead of forwarding (the group's `fault` fired).
    pub(crate) injected: bool,
}

/// Where a mirrored request's copy goes.
#[derive(Debug)]
pub(crate) struct ShadowPlan {
    pub(crate) lease: Lease,
    pub(crate) report: Arc<ShadowReport>,
}

/// The outcome of routing one request.
#[derive(Debug)]
pub(crate) enum Choice {
    NoApp,
    UnknownRelease {
        app: Arc<str>,
        release: u64,
    },
    NotReady {
        app: Arc<str>,
    },
    /// The app cannot serve now but will: wait for a new table (see `held`) up to `for_at_most`.
    Hold(Hold),
    /// A health check of an app scaled to zero: answered by the proxy, without waking it.
    Idle {
        app: Arc<str>,
    },
    Chosen(Target),
}

#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) app: Arc<str>,
    pub(crate) for_at_most: Duration,
    /// `None`: waiting for an instance to start; else the app is in maintenance.
    pub(crate) maintenance: Option<Maintenance>,
}

/// A [`RouteTable`] prepared for fast lookups.
#[derive(Debug)]
pub(crate) struct CompiledTable {
    pub(crate) table: Arc<RouteTable>,
    /// Most specific first: longer prefix, then explicit hosts before "any host". Shared with the
    /// previous table for every app whose route did not change.
    apps: Vec<Arc<CompiledApp>>,
    /// How many apps this table compiled (the others were the previous table's).
    pub(crate) compiled: usize,
    /// Some app redirects plain HTTP to HTTPS: only then does the fast path look before routing.
    pub(crate) any_redirect: bool,
}

#[derive(Debug)]
struct CompiledApp {
    /// The route it was compiled from.
    route: Arc<AppRoute>,
    name: Arc<str>,
    hosts: Vec<String>,
    prefix: String,
    /// Indexes of groups with weight > 0 and at least one backend, with their cumulative weights.
    serving: Vec<usize>,
    cumulative: Vec<u64>,
    /// Rules whose release has instances, in order.
    rules: Vec<CompiledRule>,
    sticky: CompiledSticky,
    /// Mirror group index and percentage, when the mirror release has instances.
    mirror: Option<(usize, u32)>,
}

#[derive(Debug)]
struct CompiledRule {
    /// Index into the app's `routes`.
    index: usize,
    /// Index of the rule's release group.
    group: usize,
    matcher: CompiledMatch,
}

#[derive(Debug)]
enum CompiledSticky {
    None,
    /// The cookie's name, and per serving group the `Set-Cookie` value naming it (`None` if unencodable).
    Cookie(String, Vec<Option<HeaderValue>>),
    /// Hash of a header / of the client address, laid out over the serving groups (items: `serving`
    /// positions).
    Header(HeaderName, BucketMap),
    ClientAddr(BucketMap),
}

impl CompiledApp {
    fn compile(shared: &Arc<AppRoute>) -> CompiledApp {
        let route = &**shared;
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
        let live_group = |release: u64| {
            route
                .groups
                .iter()
                .position(|g| g.release == release && !g.backends.is_empty())
        };
        let rules = route
            .routes
            .iter()
            .enumerate()
            .filter_map(|(index, rule)| {
                Some(CompiledRule {
                    index,
                    group: live_group(rule.release)?,
                    matcher: CompiledMatch::compile(&rule.matcher)?,
                })
            })
            .collect();
        let buckets = || {
            BucketMap::new(serving.iter().enumerate().map(|(i, &g)| {
                let group = &route.groups[g];
                (group.release, group.weight, i)
            }))
        };
        let sticky = match &route.sticky {
            None => CompiledSticky::None,
            Some(Sticky::Cookie(name)) => CompiledSticky::Cookie(
                name.clone(),
                serving
                    .iter()
                    .map(|&g| {
                        let value = format!(
                            "{name}=v{}; Path=/; HttpOnly; SameSite=Lax",
                            route.groups[g].release
                        );
                        HeaderValue::from_str(&value).ok()
                    })
                    .collect(),
            ),
            Some(Sticky::Header(name)) => {
                match HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                    Ok(header) => CompiledSticky::Header(header, buckets()),
                    Err(_) => CompiledSticky::None,
                }
            }
            Some(Sticky::ClientAddr) => CompiledSticky::ClientAddr(buckets()),
        };
        let mirror = route.mirror.as_ref().and_then(|m| {
            (m.percent > 0)
                .then(|| live_group(m.release))
                .flatten()
                .map(|g| (g, m.percent))
        });
        CompiledApp {
            route: Arc::clone(shared),
            name: Arc::from(route.app.as_str()),
            hosts: route
                .hosts
                .iter()
                .map(|h| host_without_port(h).to_ascii_lowercase())
                .collect(),
            prefix: normalize_prefix(&route.path_prefix),
            serving,
            cumulative,
            rules,
            sticky,
            mirror,
        }
    }
}

impl CompiledTable {
    /// Compiles `table`, reusing `previous`'s compiled app for every route that is the same `Arc`.
    pub(crate) fn compile(
        table: Arc<RouteTable>,
        previous: Option<&CompiledTable>,
    ) -> CompiledTable {
        // Keyed by the route's address: `previous` keeps those routes alive, so no address is reused.
        let reusable: HashMap<*const AppRoute, &Arc<CompiledApp>> = previous
            .map(|p| {
                p.apps
                    .iter()
                    .map(|app| (Arc::as_ptr(&app.route), app))
                    .collect()
            })
            .unwrap_or_default();
        let mut compiled = 0;
        let mut apps: Vec<Arc<CompiledApp>> = table
            .apps
            .iter()
            .map(|route| match reusable.get(&Arc::as_ptr(route)) {
                Some(&app) => Arc::clone(app),
                None => {
                    compiled += 1;
                    Arc::new(CompiledApp::compile(route))
                }
            })
            .collect();
        apps.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| a.hosts.is_empty().cmp(&b.hosts.is_empty()))
        });
        let any_redirect = table.apps.iter().any(|app| app.redirect_https);
        CompiledTable {
            table,
            apps,
            compiled,
            any_redirect,
        }
    }

    /// Routes a request. A `vN.` host prefix previews release N when the rest of the host routes to an app.
    pub(crate) fn choose<H: RequestHeaders>(&self, req: &RequestView<'_, H>) -> Choice {
        if req.preview.is_none()
            && let Some((release, rest)) = split_preview_host(req.host)
            && let Some(app) = self.find(rest, req.path)
        {
            return self.choose_preview(app, release);
        }
        match self.find(req.host, req.path) {
            Some(app) => match req.preview {
                Some(release) => self.choose_preview(app, release),
                None => self.choose_in(app, req),
            },
            None => Choice::NoApp,
        }
    }

    /// Another backend for a request whose first backend refused the connection: same release first, then
    /// (unless the request was a preview) any serving release. The target counts into its group's metrics.
    pub(crate) fn choose_retry(
        &self,
        app: &str,
        release: u64,
        preview: bool,
        failed: &Arc<Backend>,
    ) -> Option<Target> {
        let compiled = self.apps.iter().find(|a| &*a.name == app)?;
        let route = &*compiled.route;
        let target = |backend: &Arc<Backend>, group: &ReleaseGroup| Target {
            lease: Lease::acquire(backend),
            app: compiled.name.clone(),
            release: group.release,
            preview,
            metrics: group.metrics.clone(),
            set_cookie: None,
            shadow: None,
            max_body: route.max_body_size,
            hsts_max_age: route.hsts_max_age,
            injected: false,
        };
        if let Some(group) = route.groups.iter().find(|g| g.release == release)
            && let Some(backend) = pick::least_outstanding(&group.backends, Some(failed))
        {
            return Some(target(backend, group));
        }
        if preview {
            return None;
        }
        compiled
            .serving
            .iter()
            .map(|&g| &route.groups[g])
            .find_map(|group| {
                pick::least_outstanding(&group.backends, Some(failed)).map(|b| target(b, group))
            })
    }

    /// The app a request for `host` and `path` goes to, for the answers given before routing.
    pub(crate) fn app_for(&self, host: &str, path: &str) -> Option<&AppRoute> {
        self.find(host, path).map(|app| &*app.route)
    }

    fn find(&self, host: &str, path: &str) -> Option<&CompiledApp> {
        self.apps
            .iter()
            .find(|app| {
                (app.hosts.is_empty() || app.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
                    && prefix_matches(&app.prefix, path)
            })
            .map(|app| &**app)
    }

    fn choose_preview(&self, app: &CompiledApp, release: u64) -> Choice {
        let route = &*app.route;
        let Some(group) = route.groups.iter().find(|g| g.release == release) else {
            return Choice::UnknownRelease {
                app: app.name.clone(),
                release,
            };
        };
        match pick::least_outstanding(&group.backends, None) {
            Some(backend) => Choice::Chosen(Target {
                lease: Lease::acquire(backend),
                app: app.name.clone(),
                release,
                preview: true,
                metrics: group.metrics.clone(),
                set_cookie: None,
                shadow: None,
                max_body: route.max_body_size,
                hsts_max_age: route.hsts_max_age,
                injected: group.fault.is_some_and(|f| f.fires()),
            }),
            None => Choice::NotReady {
                app: app.name.clone(),
            },
        }
    }

    fn choose_in<H: RequestHeaders>(&self, app: &CompiledApp, req: &RequestView<'_, H>) -> Choice {
        let route = &*app.route;
        if let Some(maintenance) = &route.maintenance {
            return Choice::Hold(Hold {
                app: app.name.clone(),
                for_at_most: maintenance.hold,
                maintenance: Some(maintenance.clone()),
            });
        }
        if let Some(demand) = &route.demand {
            let health_check = demand.is_idle_path(req.path);
            if !health_check {
                demand.count();
            }
            if app.serving.is_empty() && app.rules.is_empty() {
                if health_check {
                    return Choice::Idle {
                        app: app.name.clone(),
                    };
                }
                demand.wake();
                return Choice::Hold(Hold {
                    app: app.name.clone(),
                    for_at_most: demand.wake_timeout,
                    maintenance: None,
                });
            }
        }
        let mut set_cookie = None;
        let (group, metrics) = match app
            .rules
            .iter()
            .find(|rule| rule.matcher.matches(req.headers))
        {
            Some(rule) => (&route.groups[rule.group], &route.routes[rule.index].metrics),
            None => {
                let Some(i) = self.pick_serving(app, req, &mut set_cookie) else {
                    return Choice::NotReady {
                        app: app.name.clone(),
                    };
                };
                let group = &route.groups[app.serving[i]];
                (group, &group.metrics)
            }
        };
        // Rule groups and serving groups have backends, so this always finds one.
        let Some(backend) = pick::least_outstanding(&group.backends, None) else {
            return Choice::NotReady {
                app: app.name.clone(),
            };
        };
        let shadow = match app.mirror {
            Some((g, percent)) if route.groups[g].release != group.release => {
                shadow_for(route, g, percent, req)
            }
            _ => None,
        };
        Choice::Chosen(Target {
            lease: Lease::acquire(backend),
            app: app.name.clone(),
            release: group.release,
            preview: false,
            metrics: metrics.clone(),
            set_cookie,
            shadow,
            max_body: route.max_body_size,
            hsts_max_age: route.hsts_max_age,
            injected: group.fault.is_some_and(|f| f.fires()),
        })
    }

    /// A position in `app.serving`: by the sticky setting when the request carries what it needs, else by
    /// weight. A cookie-sticky pick in a table with several serving releases also sets the cookie.
    fn pick_serving<H: RequestHeaders>(
        &self,
        app: &CompiledApp,
        req: &RequestView<'_, H>,
        set_cookie: &mut Option<HeaderValue>,
    ) -> Option<usize> {
        match &app.sticky {
            CompiledSticky::None => pick::weighted(&app.cumulative),
            CompiledSticky::Header(name, buckets) => match req.headers.first(name.as_str()) {
                Some(value) => buckets.pick(bucket_of(value)),
                None => pick::weighted(&app.cumulative),
            },
            CompiledSticky::ClientAddr(buckets) => {
                buckets.pick(bucket_of(req.client_ip.as_bytes()))
            }
            CompiledSticky::Cookie(name, values) => {
                let route = &*app.route;
                let remembered =
                    cookie(req.headers, name)
                        .and_then(parse_release)
                        .and_then(|release| {
                            app.serving
                                .iter()
                                .position(|&g| route.groups[g].release == release)
                        });
                if remembered.is_some() {
                    return remembered;
                }
                let i = pick::weighted(&app.cumulative)?;
                if app.serving.len() > 1 {
                    *set_cookie = values.get(i).cloned().flatten();
                }
                Some(i)
            }
        }
    }
}

/// Decides whether this request is copied to the mirror group `g`, and if so counts the shadow backend.
fn shadow_for<H: RequestHeaders>(
    route: &AppRoute,
    g: usize,
    percent: u32,
    req: &RequestView<'_, H>,
) -> Option<ShadowPlan> {
    let mirror = route.mirror.as_ref()?;
    if percent < 100 && pick::below(100) >= u64::from(percent) {
        return None;
    }
    if !matches!(*req.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        mirror.report.count_skipped();
        return None;
    }
    if !req.body_less {
        return None;
    }
    let backend = pick::least_outstanding(&route.groups[g].backends, None)?;
    Some(ShadowPlan {
        lease: Lease::acquire(backend),
        report: mirror.report.clone(),
    })
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
    // Checked first: most hosts are not previews, and this runs for every request.
    if !matches!(host.as_bytes().first(), Some(b'v' | b'V')) {
        return None;
    }
    let (label, rest) = host.split_once('.')?;
    if rest.is_empty() {
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
            ..AppRoute::new(name)
        }
    }

    fn group(release: u64, weight: u32, backends: Vec<Arc<Backend>>) -> ReleaseGroup {
        ReleaseGroup::new(release, weight, backends)
    }

    static NO_IP: HeaderValue = HeaderValue::from_static("127.0.0.1");

    use http::HeaderMap;

    fn view<'a>(
        host: &'a str,
        path: &'a str,
        preview: Option<u64>,
        headers: &'a HeaderMap,
    ) -> RequestView<'a, HeaderMap> {
        RequestView {
            host,
            path,
            preview,
            headers,
            method: &Method::GET,
            body_less: true,
            client_ip: &NO_IP,
        }
    }

    fn choose(t: &CompiledTable, host: &str, path: &str, preview: Option<u64>) -> Choice {
        t.choose(&view(host, path, preview, &HeaderMap::new()))
    }

    fn compiled(apps: Vec<AppRoute>) -> CompiledTable {
        CompiledTable::compile(Arc::new(RouteTable::of(apps)), None)
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
            &*chosen(choose(&t, "EXAMPLE.com", "/api/users", None)).app,
            "api"
        );
        assert_eq!(&*chosen(choose(&t, "example.com", "/api", None)).app, "api");
        assert_eq!(
            &*chosen(choose(&t, "example.com", "/apix", None)).app,
            "site"
        );
        assert_eq!(&*chosen(choose(&t, "other.org", "/api", None)).app, "any");
    }

    #[test]
    fn no_app_and_not_ready() {
        let t = compiled(vec![app(
            "a",
            &["a.test"],
            "/",
            vec![group(1, 0, vec![backend(1)])],
        )]);
        assert!(matches!(choose(&t, "b.test", "/", None), Choice::NoApp));
        assert!(matches!(
            choose(&t, "a.test", "/", None),
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
        assert_eq!(chosen(choose(&t, "a.test", "/", Some(7))).release, 7);
        assert_eq!(chosen(choose(&t, "v7.a.test", "/", None)).release, 7);
        assert_eq!(chosen(choose(&t, "a.test", "/", None)).release, 6);
        assert!(matches!(
            choose(&t, "a.test", "/", Some(9)),
            Choice::UnknownRelease { release: 9, .. }
        ));
        assert!(matches!(
            choose(&t, "v9.a.test", "/", None),
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
    fn a_new_table_compiles_only_the_apps_whose_route_changed() {
        let route = |a: u16, release: u64| {
            let name = format!("a{a}");
            let host = format!("{name}.test");
            Arc::new(app(
                &name,
                &[&host],
                "/",
                vec![group(release, 1, vec![backend(a)])],
            ))
        };
        let routes: Vec<Arc<AppRoute>> = (0..100).map(|a| route(a, 1)).collect();
        let first = CompiledTable::compile(
            Arc::new(RouteTable {
                apps: routes.clone(),
            }),
            None,
        );
        assert_eq!(first.compiled, 100);

        let mut changed = routes.clone();
        changed[42] = route(42, 2);
        let second = CompiledTable::compile(Arc::new(RouteTable { apps: changed }), Some(&first));
        assert_eq!(second.compiled, 1, "one app of a hundred changed");
        assert_eq!(chosen(choose(&second, "a42.test", "/", None)).release, 2);
        assert_eq!(chosen(choose(&second, "a7.test", "/", None)).release, 1);
        assert_eq!(&*chosen(choose(&second, "a99.test", "/", None)).app, "a99");

        // One app leaves, one comes (a42's first route is new to `second`, so compiled too).
        let mut moved = routes[1..].to_vec();
        moved.push(route(100, 1));
        let third = CompiledTable::compile(Arc::new(RouteTable { apps: moved }), Some(&second));
        assert_eq!(third.compiled, 2);
        assert!(matches!(
            choose(&third, "a0.test", "/", None),
            Choice::NoApp
        ));
        assert_eq!(chosen(choose(&third, "a42.test", "/", None)).release, 1);
        assert_eq!(&*chosen(choose(&third, "a100.test", "/", None)).app, "a100");
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
