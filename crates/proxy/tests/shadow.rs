//! Mirroring through a real proxy: the client always gets the primary's answer, the shadow's answer is
//! compared into the report, non-idempotent requests are skipped, and shadow traffic stays out of the
//! releases' metrics while still counting in its instance's `in_flight`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use slipway_proxy::{
    AppRoute, Backend, Mirror, ProxyOptions, ReleaseGroup, RouteTable, ShadowReport,
};
use tokio::sync::Semaphore;

fn mirrored(
    groups: Vec<ReleaseGroup>,
    release: u64,
    percent: u32,
    report: &Arc<ShadowReport>,
) -> RouteTable {
    RouteTable::of([AppRoute {
        groups,
        mirror: Some(Mirror {
            release,
            percent,
            report: report.clone(),
        }),
        ..AppRoute::new("web")
    }])
}

#[tokio::test]
async fn client_gets_the_primary_and_differences_are_reported() {
    let primary = backend(|_r| async { text("primary") }).await;
    let shadow = backend(|req| async move {
        assert_eq!(
            req.headers().get("x-slipway-shadow").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut response = text("shadow answer");
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
    .await;
    let (ip, is) = (instance("v1", &primary), instance("v2", &shadow));
    let (g1, g2) = (group(1, 100, &[&ip]), group(2, 0, &[&is]));
    let (m1, m2) = (g1.metrics.clone(), g2.metrics.clone());
    let report = ShadowReport::new();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(mirrored(vec![g1, g2], 2, 100, &report))
        .await;
    let c = client();
    for _ in 0..20 {
        let a = send(&c, p.addr, Method::GET, "/", &[]).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "primary"));
    }
    wait_until("every pair is compared", || {
        report.snapshot().compared == 20
    })
    .await;
    let s = report.snapshot();
    assert_eq!(s.mirrored, 20);
    assert_eq!(s.status_class_mismatches, 20);
    assert_eq!((s.body_compared, s.body_mismatches), (20, 20));
    assert_eq!(s.shadow_failures, 0);
    // The shadow answered at least 200 ms after the request arrived; the primary at once.
    assert!(s.latency_diff_mean_micros > 0, "{s:?}");
    assert_eq!(shadow.hits(), 20);
    // Shadow traffic feeds no release's analysis.
    assert_eq!(m1.snapshot().requests, 20);
    assert_eq!(m2.snapshot().requests, 0);
}

#[tokio::test]
async fn identical_answers_match_and_posts_are_skipped() {
    let (b1, b2) = (ok_backend().await, ok_backend().await);
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let report = ShadowReport::new();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(mirrored(
            vec![group(1, 100, &[&i1]), group(2, 0, &[&i2])],
            2,
            100,
            &report,
        ))
        .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(send(&c, p.addr, Method::GET, "/", &[]).await.body, "ok");
        assert_eq!(
            send(&c, p.addr, Method::HEAD, "/", &[]).await.status,
            StatusCode::OK
        );
        assert_eq!(send(&c, p.addr, Method::POST, "/", &[]).await.body, "ok");
    }
    wait_until("every pair is compared", || {
        report.snapshot().compared == 20
    })
    .await;
    let s = report.snapshot();
    assert_eq!(s.mirrored, 20);
    assert_eq!(s.skipped_non_idempotent, 10);
    assert_eq!(
        (
            s.status_class_mismatches,
            s.body_mismatches,
            s.body_compared
        ),
        (0, 0, 20)
    );
    assert_eq!(b1.hits(), 30);
    assert_eq!(b2.hits(), 20);
}

#[tokio::test]
async fn failed_shadows_are_counted_and_never_reach_the_client() {
    let primary = ok_backend().await;
    let ip = instance("v1", &primary);
    let dead = Backend::new("v2-dead", dead_addr().await);
    let report = ShadowReport::new();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(mirrored(
            vec![group(1, 100, &[&ip]), group(2, 0, &[&dead])],
            2,
            100,
            &report,
        ))
        .await;
    let c = client();
    for _ in 0..5 {
        let a = send(&c, p.addr, Method::GET, "/", &[]).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));
    }
    wait_until("shadow failures are counted", || {
        report.snapshot().shadow_failures == 5
    })
    .await;
    assert_eq!(report.snapshot().compared, 0);
}

#[tokio::test]
async fn a_shadow_request_counts_in_its_instance_in_flight() {
    let gate = Arc::new(Semaphore::new(0));
    let primary = ok_backend().await;
    let held = gate.clone();
    let shadow = backend(move |_r| {
        let held = held.clone();
        async move {
            let _permit = held.acquire().await.expect("gate");
            text("late")
        }
    })
    .await;
    let (ip, is) = (instance("v1", &primary), instance("v2", &shadow));
    let report = ShadowReport::new();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(mirrored(
            vec![group(1, 100, &[&ip]), group(2, 0, &[&is])],
            2,
            100,
            &report,
        ))
        .await;
    let c = client();
    // The client's answer does not wait for the held shadow.
    assert_eq!(send(&c, p.addr, Method::GET, "/", &[]).await.body, "ok");
    assert_eq!(ip.in_flight(), 0);
    wait_until("the shadow reaches its instance", || shadow.hits() == 1).await;
    assert_eq!(is.in_flight(), 1);
    gate.add_permits(1);
    wait_until("the shadow finishes", || is.in_flight() == 0).await;
    wait_until("the pair is compared", || report.snapshot().compared == 1).await;
    assert_eq!(report.snapshot().body_mismatches, 1);
}

#[tokio::test]
async fn zero_percent_mirrors_nothing() {
    let (b1, b2) = (ok_backend().await, ok_backend().await);
    let (i1, i2) = (instance("v1", &b1), instance("v2", &b2));
    let report = ShadowReport::new();
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(mirrored(
            vec![group(1, 100, &[&i1]), group(2, 0, &[&i2])],
            2,
            0,
            &report,
        ))
        .await;
    let c = client();
    for _ in 0..20 {
        send(&c, p.addr, Method::GET, "/", &[]).await;
    }
    assert_eq!(report.snapshot().mirrored, 0);
    assert_eq!(b2.hits(), 0);
}
