//! Canary features through a real proxy: per-release and per-rule metrics, route rules (A/B), sticky users
//! by cookie, header and client address.

mod common;

use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use slipway_proxy::{
    AppRoute, InjectedFault, ProxyOptions, ReleaseGroup, ReleaseMetrics, RouteMatch, RouteRule,
    RouteTable, Sticky,
};

/// Two backends answering their release name.
async fn two_releases() -> (TestBackend, TestBackend) {
    (
        backend(|_r| async { text("v1") }).await,
        backend(|_r| async { text("v2") }).await,
    )
}

fn app(groups: Vec<ReleaseGroup>, routes: Vec<RouteRule>, sticky: Option<Sticky>) -> RouteTable {
    RouteTable::of([AppRoute {
        groups,
        routes,
        sticky,
        ..AppRoute::new("web")
    }])
}

fn rule(headers: &[(&str, &str)], cookies: &[(&str, &str)], release: u64) -> RouteRule {
    let mut matcher = RouteMatch::default();
    for (k, v) in headers {
        matcher.headers.insert(k.to_string(), v.to_string());
    }
    for (k, v) in cookies {
        matcher.cookies.insert(k.to_string(), v.to_string());
    }
    RouteRule {
        matcher,
        release,
        metrics: ReleaseMetrics::new(),
    }
}

#[tokio::test]
async fn metrics_count_each_groups_status_classes_and_latency() {
    let ok = ok_backend().await;
    let slow_errors = backend(|_r| async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut response = text("boom");
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
    .await;
    let (i1, i2) = (instance("v1", &ok), instance("v2", &slow_errors));
    let dead = slipway_proxy::Backend::new("v3-dead", dead_addr().await);
    let (g1, g2) = (group(1, 50, &[&i1]), group(2, 50, &[&i2]));
    let g3 = group(3, 0, &[&dead]);
    let (m1, m2, m3) = (g1.metrics.clone(), g2.metrics.clone(), g3.metrics.clone());
    let p = proxy(ProxyOptions::default()).await;
    p.routes.publish(app(vec![g1, g2, g3], vec![], None)).await;
    let c = client();
    for _ in 0..100 {
        get(&c, p.addr, "/", &[]).await.expect("request");
    }
    // A preview to a release whose instance refuses: a 502 page, counted as a failure of v3.
    let (status, _) = get(&c, p.addr, "/", &[("x-slipway-release", "v3")])
        .await
        .expect("request");
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    // Not routed to any release: not counted anywhere.
    let (status, _) = get(&c, p.addr, "/", &[("x-slipway-release", "v9")])
        .await
        .expect("request");
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(m1.by_class(), [0, ok.hits() as u64, 0, 0, 0]);
    assert_eq!(m2.by_class(), [0, 0, 0, 0, slow_errors.hits() as u64]);
    assert_eq!(ok.hits() + slow_errors.hits(), 100);
    assert_eq!((m1.failures(), m2.failures()), (0, 0));
    assert_eq!((m3.by_class()[4], m3.failures()), (1, 1));
    let w2 = m2.snapshot();
    assert_eq!(
        (w2.requests, w2.errors),
        (slow_errors.hits() as u64, w2.requests)
    );
    // Every v2 answer took at least the instance's 30 ms.
    assert_eq!(w2.latency.count_above(29_000), w2.requests);
    assert_eq!(m1.snapshot().latency.count(), ok.hits() as u64);
}

#[tokio::test]
async fn header_and_cookie_rules_always_reach_the_canary() {
    let (b1, b2) = two_releases().await;
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let (g1, g2) = (group(1, 100, &[&i1]), group(2, 0, &[&i2]));
    let header_rule = rule(&[("X-Beta", "yes")], &[], 2);
    let cookie_rule = rule(&[], &[("variant", "b")], 2);
    let (by_header, by_cookie) = (header_rule.metrics.clone(), cookie_rule.metrics.clone());
    let canary_group = g2.metrics.clone();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(app(vec![g1, g2], vec![header_rule, cookie_rule], None))
        .await;
    let c = client();
    for _ in 0..50 {
        let a = send(&c, p.addr, Method::GET, "/", &[("x-beta", "yes")]).await;
        assert_eq!(a.body, "v2");
        let a = send(
            &c,
            p.addr,
            Method::GET,
            "/",
            &[("cookie", "theme=dark; variant=b")],
        )
        .await;
        assert_eq!(a.body, "v2");
        let a = send(&c, p.addr, Method::GET, "/", &[("cookie", "variant=a")]).await;
        assert_eq!(a.body, "v1");
    }
    // Each variant is counted in its rule's metrics, not in the release group's.
    assert_eq!(by_header.by_class()[1], 50);
    assert_eq!(by_cookie.by_class()[1], 50);
    assert_eq!(canary_group.snapshot().requests, 0);
}

#[tokio::test]
async fn rule_to_a_release_without_instances_falls_through_to_the_weights() {
    let (b1, _b2) = two_releases().await;
    let i1 = instance("v1", &b1);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(app(
            vec![group(1, 100, &[&i1]), group(2, 0, &[])],
            vec![rule(&[("x-beta", "yes")], &[], 2)],
            None,
        ))
        .await;
    let c = client();
    let a = send(&c, p.addr, Method::GET, "/", &[("x-beta", "yes")]).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "v1"));
}

fn set_cookie(a: &Answer) -> Option<String> {
    a.headers
        .get("set-cookie")
        .map(|v| v.to_str().expect("ascii").to_owned())
}

#[tokio::test]
async fn sticky_cookie_keeps_a_canary_user_on_the_canary() {
    let (b1, b2) = two_releases().await;
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let sticky = || Some(Sticky::Cookie("slipway".to_owned()));
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(app(
            vec![group(1, 90, &[&i1]), group(2, 10, &[&i2])],
            vec![],
            sticky(),
        ))
        .await;
    let c = client();
    // Fresh clients until one lands on the canary (10 %: 500 tries miss with probability ~1e-23).
    let mut cookie = None;
    for _ in 0..500 {
        let a = send(&c, p.addr, Method::GET, "/", &[]).await;
        let set = set_cookie(&a).expect("a multi-release pick sets the cookie");
        assert_eq!(
            set,
            format!("slipway={}; Path=/; HttpOnly; SameSite=Lax", a.body)
        );
        if a.body == "v2" {
            cookie = Some("slipway=v2".to_owned());
            break;
        }
    }
    let cookie = cookie.expect("some client reached the canary");
    for _ in 0..100 {
        let a = send(&c, p.addr, Method::GET, "/", &[("cookie", &cookie)]).await;
        assert_eq!(a.body, "v2");
        assert_eq!(set_cookie(&a), None, "an honoured cookie is not set again");
    }
    p.routes
        .publish(app(
            vec![group(1, 50, &[&i1]), group(2, 50, &[&i2])],
            vec![],
            sticky(),
        ))
        .await;
    for _ in 0..20 {
        let a = send(&c, p.addr, Method::GET, "/", &[("cookie", &cookie)]).await;
        assert_eq!(a.body, "v2");
    }
    // Steady state (one release): no cookie churn, and a stale cookie is simply ignored.
    p.routes
        .publish(app(vec![group(1, 100, &[&i1])], vec![], sticky()))
        .await;
    for _ in 0..20 {
        let a = send(&c, p.addr, Method::GET, "/", &[]).await;
        assert_eq!((a.body.as_str(), set_cookie(&a)), ("v1", None));
        let a = send(&c, p.addr, Method::GET, "/", &[("cookie", &cookie)]).await;
        assert_eq!((a.body.as_str(), set_cookie(&a)), ("v1", None));
    }
}

#[tokio::test]
async fn sticky_header_users_keep_their_release_and_canary_users_stay_as_it_grows() {
    let (b1, b2) = two_releases().await;
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let sticky = || Some(Sticky::Header("X-User".to_owned()));
    let table = |canary: u32| {
        app(
            vec![group(1, 100 - canary, &[&i1]), group(2, canary, &[&i2])],
            vec![],
            sticky(),
        )
    };
    let p = proxy(ProxyOptions::default()).await;
    let c = client();
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let releases_at = |canary: u32| {
        let (c, p, users) = (&c, &p, &users);
        async move {
            p.routes.publish(table(canary)).await;
            let mut seen = Vec::new();
            for user in users {
                let first = send(c, p.addr, Method::GET, "/", &[("x-user", user)])
                    .await
                    .body;
                for _ in 0..2 {
                    let again = send(c, p.addr, Method::GET, "/", &[("x-user", user)])
                        .await
                        .body;
                    assert_eq!(again, first, "{user} changed release at {canary}%");
                }
                seen.push(first);
            }
            seen
        }
    };
    let at10 = releases_at(10).await;
    let at30 = releases_at(30).await;
    let on_canary = at10.iter().filter(|r| *r == "v2").count();
    assert!(
        (2..=50).contains(&on_canary),
        "{on_canary} of 200 on a 10% canary"
    );
    for (i, (before, after)) in at10.iter().zip(&at30).enumerate() {
        if before == "v2" {
            assert_eq!(after, "v2", "user-{i} left the canary when its weight rose");
        }
    }
    assert!(at30.iter().filter(|r| *r == "v2").count() > on_canary);
}

#[tokio::test]
async fn sticky_client_address_keeps_one_release() {
    let (b1, b2) = two_releases().await;
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(app(
            vec![group(1, 50, &[&i1]), group(2, 50, &[&i2])],
            vec![],
            Some(Sticky::ClientAddr),
        ))
        .await;
    let c = client();
    let first = send(&c, p.addr, Method::GET, "/", &[]).await.body;
    for _ in 0..50 {
        assert_eq!(send(&c, p.addr, Method::GET, "/", &[]).await.body, first);
    }
}

/// `slipway drill`: a release with an injected fault is answered 503 by the proxy itself on both paths, the
/// page says so, its instance never sees those requests, and the answers count as 5xx and as injected of
/// that release only.
#[tokio::test]
async fn an_injected_fault_fails_its_releases_requests_on_both_paths() {
    for fast_path in [true, false] {
        let (b1, b2) = two_releases().await;
        let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
        let g1 = group(1, 50, &[&i1]);
        let mut g2 = group(2, 50, &[&i2]);
        g2.fault = Some(InjectedFault::with_rate(1.0));
        let (m1, m2) = (g1.metrics.clone(), g2.metrics.clone());
        let p = proxy(ProxyOptions {
            fast_path,
            ..ProxyOptions::default()
        })
        .await;
        p.routes.publish(app(vec![g1, g2], vec![], None)).await;
        let c = client();
        let (mut ok, mut injected) = (0, 0);
        for _ in 0..100 {
            let (status, body) = get(&c, p.addr, "/", &[]).await.expect("request");
            match status {
                StatusCode::OK => {
                    assert_eq!(body, "v1", "fast path {fast_path}");
                    ok += 1;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(
                        body.contains("slipway drill: injected failure")
                            && body.contains("release v2"),
                        "fast path {fast_path}: {body}"
                    );
                    injected += 1;
                }
                other => panic!("fast path {fast_path}: unexpected {other}: {body}"),
            }
        }
        assert!(
            ok > 0 && injected > 0,
            "fast path {fast_path}: {ok} ok, {injected} injected"
        );
        assert_eq!(
            b2.hits(),
            0,
            "fast path {fast_path}: the faulty release's instance was reached"
        );
        assert_eq!(m1.by_class(), [0, ok, 0, 0, 0], "fast path {fast_path}");
        assert_eq!(m1.injected(), 0, "fast path {fast_path}");
        assert_eq!(
            m2.by_class(),
            [0, 0, 0, 0, injected],
            "fast path {fast_path}"
        );
        assert_eq!(m2.injected(), injected, "fast path {fast_path}");
        assert_eq!(
            m2.failures(),
            0,
            "fast path {fast_path}: injected is not an instance failure"
        );
        // A preview of the faulty release fails too; the connection stays usable afterwards.
        let (status, _) = get(&c, p.addr, "/", &[("x-slipway-release", "v2")])
            .await
            .expect("request");
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "fast path {fast_path}"
        );
        assert_eq!(m2.injected(), injected + 1, "fast path {fast_path}");
    }
}

/// A partial rate fails about that share of the release's requests; the rest reach its instance.
#[tokio::test]
async fn an_injected_fault_at_half_fails_some_requests_and_forwards_the_rest() {
    for fast_path in [true, false] {
        let b = ok_backend().await;
        let i = instance("v1", &b);
        let mut g = group(1, 1, &[&i]);
        g.fault = Some(InjectedFault::with_rate(0.5));
        let m = g.metrics.clone();
        let p = proxy(ProxyOptions {
            fast_path,
            ..ProxyOptions::default()
        })
        .await;
        p.routes.publish(app(vec![g], vec![], None)).await;
        let c = client();
        for _ in 0..200 {
            get(&c, p.addr, "/", &[]).await.expect("request");
        }
        let [_, ok, _, _, errors] = m.by_class();
        assert_eq!(ok + errors, 200, "fast path {fast_path}");
        assert_eq!(errors, m.injected(), "fast path {fast_path}");
        assert_eq!(ok, b.hits() as u64, "fast path {fast_path}");
        // 200 draws at 1/2: outside 40..160 with probability far below 1e-15.
        assert!(
            (40..160).contains(&errors),
            "fast path {fast_path}: {errors} of 200 injected"
        );
    }
}
