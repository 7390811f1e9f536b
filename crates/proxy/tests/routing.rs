//! Routing through a real proxy: weighted release split, least-outstanding instance choice, previews, the
//! 404/503 pages and the headers instances see.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::StatusCode;
use slipway_proxy::{AppRoute, ProxyOptions, RouteTable};

#[tokio::test]
async fn weighted_split_follows_weights() {
    let (b1, b2) = (ok_backend().await, ok_backend().await);
    let (i1, i2) = (instance("v1-a", &b1), instance("v2-a", &b2));
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app(
            "web",
            vec![group(1, 20, &[&i1]), group(2, 80, &[&i2])],
        ))
        .await;
    let c = client();
    for _ in 0..1000 {
        let (status, _) = get(&c, p.addr, "/", &[]).await.expect("request");
        assert_eq!(status, StatusCode::OK);
    }
    // Binomial(1000, 0.2): mean 200, sd ~12.6; allow ~5 sd.
    assert!(
        (140..=260).contains(&b1.hits()),
        "v1 got {} of 1000",
        b1.hits()
    );
    assert_eq!(b1.hits() + b2.hits(), 1000);
}

#[tokio::test]
async fn slow_instance_gets_fewer_requests() {
    let slow = backend(|_req| async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        text("slow")
    })
    .await;
    let fast = ok_backend().await;
    let (is, ifast) = (instance("slow", &slow), instance("fast", &fast));
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&is, &ifast])]))
        .await;
    let c = client();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            let addr = p.addr;
            tokio::spawn(async move {
                for _ in 0..25 {
                    let (status, _) = get(&c, addr, "/", &[]).await.expect("request");
                    assert_eq!(status, StatusCode::OK);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(slow.hits() + fast.hits(), 200);
    assert!(
        slow.hits() * 2 < fast.hits(),
        "slow {} vs fast {}",
        slow.hits(),
        fast.hits()
    );
}

#[tokio::test]
async fn preview_reaches_weight_zero_release() {
    let (live, preview) = (
        backend(|_r| async { text("v6") }).await,
        backend(|_r| async { text("v7") }).await,
    );
    let p = proxy(ProxyOptions::default()).await;
    let mut table = one_app(
        "web",
        vec![
            group(6, 100, &[&instance("a", &live)]),
            group(7, 0, &[&instance("b", &preview)]),
        ],
    );
    std::sync::Arc::make_mut(&mut table.apps[0]).hosts = vec!["shop.test".to_owned()];
    p.routes.publish(table).await;
    let c = client();
    assert_eq!(
        get(&c, p.addr, "/", &[("host", "shop.test")])
            .await
            .expect("req")
            .1,
        "v6"
    );
    assert_eq!(
        get(
            &c,
            p.addr,
            "/",
            &[("host", "shop.test"), ("x-slipway-release", "v7")]
        )
        .await
        .expect("req")
        .1,
        "v7"
    );
    assert_eq!(
        get(
            &c,
            p.addr,
            "/",
            &[("host", "shop.test"), ("x-slipway-release", "7")]
        )
        .await
        .expect("req")
        .1,
        "v7"
    );
    assert_eq!(
        get(&c, p.addr, "/", &[("host", "v7.SHOP.test:8080")])
            .await
            .expect("req")
            .1,
        "v7"
    );
    let (status, body) = get(
        &c,
        p.addr,
        "/",
        &[("host", "shop.test"), ("x-slipway-release", "v9")],
    )
    .await
    .expect("req");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("app web has no release v9"), "{body}");
}

#[tokio::test]
async fn unrouted_host_is_404_and_empty_app_is_503() {
    let p = proxy(ProxyOptions::default()).await;
    let mut empty = AppRoute::new("empty");
    empty.hosts = vec!["empty.test".to_owned()];
    empty.groups = vec![group(1, 100, &[])];
    let mut other = AppRoute::new("other");
    other.hosts = vec!["other.test".to_owned()];
    p.routes.publish(RouteTable::of([empty, other])).await;
    let c = client();
    let (status, body) = get(&c, p.addr, "/x", &[("host", "nowhere.test")])
        .await
        .expect("req");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.starts_with("slipway: 404"), "{body}");
    let (status, body) = get(&c, p.addr, "/", &[("host", "empty.test")])
        .await
        .expect("req");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no ready instance of app empty"), "{body}");
    let (status, _) = get(&c, p.addr, "/", &[("host", "other.test")])
        .await
        .expect("req");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn instance_sees_forwarding_headers() {
    let echo = backend(|req| async move {
        let h = req.headers();
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        text(format!(
            "{}|{}|{}|{}|{}|{}",
            get("host"),
            get("x-forwarded-for"),
            get("x-forwarded-proto"),
            get("x-forwarded-host"),
            get("x-request-id"),
            get("x-hop")
        ))
    })
    .await;
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&instance("a", &echo)])]))
        .await;
    let c = client();
    let (_, body) = get(
        &c,
        p.addr,
        "/",
        &[
            ("host", "shop.test:8080"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
        ],
    )
    .await
    .expect("req");
    let fields: Vec<&str> = body.split('|').collect();
    assert_eq!(
        &fields[..4],
        ["shop.test:8080", "127.0.0.1", "http", "shop.test:8080"]
    );
    assert_eq!(fields[4].len(), 32, "generated request id: {body}");
    assert_eq!(
        fields[5], "-",
        "hop-by-hop header named by Connection was removed"
    );
    let (_, body) = get(
        &c,
        p.addr,
        "/",
        &[
            ("x-request-id", "req-42"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await
    .expect("req");
    let fields: Vec<&str> = body.split('|').collect();
    assert_eq!(fields[1], "203.0.113.9, 127.0.0.1");
    assert_eq!(fields[4], "req-42");
}

#[tokio::test]
async fn flag_variants_named_by_the_app_are_counted_and_never_reach_the_client() {
    // The app names the variant it served; "on" answers fail.
    let app = backend(|req| async move {
        let on = req.uri().path() == "/on";
        let mut response = text(if on { "broken" } else { "fine" });
        if on {
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
        let variant = if on {
            "checkout=on, theme=dark"
        } else {
            "checkout=off"
        };
        response
            .headers_mut()
            .insert("slipway-flags", http::HeaderValue::from_static(variant));
        response
    })
    .await;
    for fast_path in [true, false] {
        let p = proxy(ProxyOptions {
            fast_path,
            ..ProxyOptions::default()
        })
        .await;
        p.routes
            .publish(one_app("web", vec![group(1, 1, &[&instance("a", &app)])]))
            .await;
        let c = client();
        for path in ["/on", "/off", "/off", "/off"] {
            let answer = send(&c, p.addr, http::Method::GET, path, &[]).await;
            assert_eq!(
                answer.headers.get("slipway-flags"),
                None,
                "fast path {fast_path}: the note is the proxy's"
            );
        }
        let counted: Vec<_> = p
            .routes
            .flag_variants()
            .snapshot("web", "checkout")
            .into_iter()
            .map(|(variant, w)| (variant, w.requests, w.errors))
            .collect();
        assert_eq!(
            counted,
            [("off".to_owned(), 3, 0), ("on".to_owned(), 1, 1)],
            "fast path {fast_path}"
        );
        assert_eq!(p.routes.flag_variants().snapshot("web", "theme").len(), 1);
    }
}

#[tokio::test]
async fn a_table_update_compiles_only_the_apps_that_changed() {
    let (v1, v2) = (ok_backend().await, ok_backend().await);
    let route = |a: usize, release: u64| {
        let to = if release == 1 { &v1 } else { &v2 };
        let mut app = AppRoute::new(format!("a{a}"));
        app.hosts = vec![format!("a{a}.test")];
        app.groups = vec![group(release, 100, &[&instance(&format!("a{a}"), to)])];
        Arc::new(app)
    };
    let p = proxy(ProxyOptions::default()).await;
    let before = p.routes.compiled_apps();
    let mut apps: Vec<_> = (0..100).map(|a| route(a, 1)).collect();
    p.routes.publish(RouteTable { apps: apps.clone() }).await;
    assert_eq!(p.routes.compiled_apps() - before, 100);

    // One app of the hundred gets a new release; the other 99 are handed over unchanged.
    apps[42] = route(42, 2);
    p.routes.publish(RouteTable { apps }).await;
    assert_eq!(
        p.routes.compiled_apps() - before,
        101,
        "one app compiled, not 100"
    );

    // The reused compiled apps and the new one all route.
    let c = client();
    for host in ["a42.test", "a7.test", "a99.test", "a0.test"] {
        let (status, _) = get(&c, p.addr, "/", &[("host", host)])
            .await
            .expect("request");
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    assert_eq!((v1.hits(), v2.hits()), (3, 1));
}
