//! Route matching: any route table and request route without a panic, and the answer is one the table
//! allows — a chosen release belongs to an app whose host and path prefix fit the request, the backend
//! belongs to that release, a preview gets the release it asked for, and the weighted pick never sends
//! traffic to a release at weight 0 unless a rule sent it there. A sticky user comes back to the same
//! release, and the cookie set for a sticky pick brings the next request back to it.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use slipway_proxy::fuzzing::{Routed, Router, RoutingRequest};
use slipway_proxy::{
    AppRoute, Backend, Mirror, ReleaseGroup, ReleaseMetrics, RouteMatch, RouteRule, RouteTable,
    ShadowReport, Sticky,
};
use std::collections::BTreeMap;

#[derive(Debug, Arbitrary)]
struct Input {
    apps: Vec<App>,
    host: String,
    path: String,
    preview: Option<u8>,
    headers: Vec<(String, String)>,
    get: bool,
    body_less: bool,
    client_ip: String,
}

#[derive(Debug, Arbitrary)]
struct App {
    hosts: Vec<String>,
    prefix: String,
    groups: Vec<Group>,
    rules: Vec<Rule>,
    sticky: Option<StickyKind>,
    mirror: Option<(u8, u8)>,
}

#[derive(Debug, Arbitrary)]
struct Group {
    release: u8,
    weight: u16,
    backends: u8,
}

#[derive(Debug, Arbitrary)]
struct Rule {
    headers: BTreeMap<String, String>,
    cookies: BTreeMap<String, String>,
    release: u8,
}

#[derive(Debug, Arbitrary)]
enum StickyKind {
    Cookie(String),
    Header(String),
    ClientAddr,
}

fuzz_target!(|input: Input| {
    if input.apps.len() > 8 {
        return;
    }
    let table = table(&input.apps);
    let router = Router::new(table.clone());
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let Ok(client_ip) = HeaderValue::from_str(&input.client_ip) else {
        return;
    };
    let method = if input.get { Method::GET } else { Method::POST };
    let request = RoutingRequest {
        host: &input.host,
        path: &input.path,
        preview: input.preview.map(u64::from),
        headers: &headers,
        method: &method,
        body_less: input.body_less,
        client_ip: &client_ip,
    };
    let routed = router.route(&request);
    check(&table, &input, &routed);

    let Routed::Chosen {
        app,
        release,
        preview: false,
        set_cookie,
        ..
    } = &routed
    else {
        return;
    };
    let route = table
        .apps
        .iter()
        .find(|a| &a.app == app)
        .expect("chosen app");
    if !route.routes.is_empty() {
        return;
    }
    // Without rules, a sticky request comes back to its release.
    let again = |headers: &HeaderMap| match router.route(&RoutingRequest { headers, ..request }) {
        Routed::Chosen { release, .. } => release,
        other => panic!("routed once, then {other:?}"),
    };
    match &route.sticky {
        Some(Sticky::Header(name)) if headers.contains_key(name.to_ascii_lowercase().as_str()) => {
            assert_eq!(
                again(&headers),
                *release,
                "same {name} header, other release"
            );
        }
        Some(Sticky::ClientAddr) => assert_eq!(again(&headers), *release),
        // The config allows only HTTP tokens as cookie names.
        Some(Sticky::Cookie(name)) if is_token(name) => {
            if let Some(cookie) = set_cookie {
                let pair = cookie
                    .split(|&b| b == b';')
                    .next()
                    .expect("split yields one");
                let mut with_cookie = HeaderMap::new();
                with_cookie.insert(
                    "cookie",
                    HeaderValue::from_bytes(pair).expect("part of a header value"),
                );
                assert_eq!(
                    again(&with_cookie),
                    *release,
                    "the sticky cookie was not honoured"
                );
            }
        }
        _ => {}
    }
});

fn table(apps: &[App]) -> RouteTable {
    let mut table = RouteTable::default();
    for (a, app) in apps.iter().enumerate() {
        let mut route = AppRoute::new(format!("app{a}"));
        route.hosts = app.hosts.clone();
        route.path_prefix = app.prefix.clone();
        for (g, group) in app.groups.iter().take(6).enumerate() {
            let backends = (0..group.backends % 4)
                .map(|b| {
                    let addr = ([127, 0, 0, 1], 1000 + u16::from(b)).into();
                    Backend::new(format!("app{a}/g{g}/{b}"), addr)
                })
                .collect();
            route.groups.push(ReleaseGroup::new(
                u64::from(group.release),
                u32::from(group.weight),
                backends,
            ));
        }
        for rule in app.rules.iter().take(4) {
            let matcher = RouteMatch {
                headers: rule.headers.clone(),
                cookies: rule.cookies.clone(),
            };
            route.routes.push(RouteRule {
                matcher,
                release: u64::from(rule.release),
                metrics: ReleaseMetrics::new(),
            });
        }
        route.sticky = app.sticky.as_ref().map(|s| match s {
            StickyKind::Cookie(name) => Sticky::Cookie(name.clone()),
            StickyKind::Header(name) => Sticky::Header(name.clone()),
            StickyKind::ClientAddr => Sticky::ClientAddr,
        });
        route.mirror = app.mirror.map(|(release, percent)| Mirror {
            release: u64::from(release),
            percent: u32::from(percent),
            report: ShadowReport::new(),
        });
        table.apps.push(std::sync::Arc::new(route));
    }
    table
}

fn check(table: &RouteTable, input: &Input, routed: &Routed) {
    let app_named = |name: &str| {
        table
            .apps
            .iter()
            .find(|a| a.app == name)
            .unwrap_or_else(|| panic!("{name} is not in the table"))
    };
    match routed {
        Routed::NoApp => {
            // An app on any host at `/` takes every request.
            assert!(
                !table
                    .apps
                    .iter()
                    .any(|a| a.hosts.is_empty() && matches!(a.path_prefix.trim(), "" | "/")),
                "a catch-all app exists, yet no app was found"
            );
        }
        Routed::UnknownRelease { app, release } => {
            assert!(app_named(app).groups.iter().all(|g| g.release != *release));
        }
        Routed::NotReady { app } => {
            let _ = app_named(app);
        }
        Routed::Chosen {
            app,
            release,
            preview,
            backend,
            shadow,
            ..
        } => {
            let route = app_named(app);
            let host = if *preview && input.preview.is_none() {
                // The release came from a `vN.` host: the app answers to the rest of it.
                input
                    .host
                    .split_once('.')
                    .expect("a preview host has a dot")
                    .1
            } else {
                input.host.as_str()
            };
            assert!(
                route.hosts.is_empty()
                    || route.hosts.iter().any(|h| {
                        let h = h.rsplit_once(':').map_or(h.as_str(), |(h, _)| h);
                        h.eq_ignore_ascii_case(host) || h.starts_with('[')
                    }),
                "{app} does not answer to {host:?}"
            );
            // Prefixes match whole segments: `/api` takes `/api` and `/api/x`, never `/apix`.
            let prefix = route.path_prefix.trim().trim_end_matches('/');
            let prefix = prefix.strip_prefix('/').unwrap_or(prefix);
            if !prefix.is_empty() {
                let rest = input
                    .path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(prefix));
                assert!(
                    rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
                    "{app} with prefix {:?} took {:?}",
                    route.path_prefix,
                    input.path
                );
            }
            let group = route
                .groups
                .iter()
                .find(|g| g.backends.iter().any(|b| &b.id == backend))
                .unwrap_or_else(|| panic!("backend {backend} is not in {app}"));
            assert_eq!(group.release, *release, "{backend} serves another release");
            if let Some(asked) = input.preview {
                assert_eq!(
                    *release,
                    u64::from(asked),
                    "the preview asked for another release"
                );
            }
            let by_rule = route.routes.iter().any(|r| r.release == *release);
            assert!(
                *preview || group.weight > 0 || by_rule,
                "weight 0 got traffic"
            );
            if let Some(shadow) = shadow {
                let mirror = route.mirror.as_ref().expect("mirrored without a mirror");
                assert!(mirror.percent > 0 && mirror.release != *release);
                let shadow_group = route
                    .groups
                    .iter()
                    .find(|g| g.backends.iter().any(|b| &b.id == shadow))
                    .expect("the shadow backend is in the app");
                assert_eq!(shadow_group.release, mirror.release);
                assert!(input.get && input.body_less, "mirrored an unsafe request");
            }
        }
    }
}

/// An HTTP token (RFC 9110), what config accepts as a cookie or header name.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}
