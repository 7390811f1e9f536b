//! Instance failures as the client sees them: 502 for a refused connection (unless a retry on another
//! instance saves the request), 504 when response headers take too long.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use slipway_proxy::{Backend, ProxyOptions};

#[tokio::test]
async fn refused_connection_is_502() {
    let dead = Backend::new("web-dead", dead_addr().await);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(3, 1, &[&dead])]))
        .await;
    let (status, body) = get(&client(), p.addr, "/", &[]).await.expect("req");
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.contains("app web release v3 instance web-dead"),
        "{body}"
    );
    assert!(body.contains("refused the connection"), "{body}");
    assert_eq!(dead.in_flight(), 0);
}

#[tokio::test]
async fn bodyless_request_is_retried_on_another_instance() {
    let live = ok_backend().await;
    let dead = Backend::new("dead", dead_addr().await);
    let alive = instance("alive", &live);
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&dead, &alive])]))
        .await;
    let c = client();
    for _ in 0..30 {
        let (status, body) = get(&c, p.addr, "/", &[]).await.expect("req");
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    assert_eq!(live.hits(), 30);
    assert_eq!((dead.in_flight(), alive.in_flight()), (0, 0));
}

#[tokio::test]
async fn request_with_body_is_not_retried() {
    let live = ok_backend().await;
    let dead = Backend::new("dead", dead_addr().await);
    let p = proxy(ProxyOptions::default()).await;
    // Only the dead instance is in the serving group, the live one is a preview: nothing to retry on.
    p.routes
        .publish(one_app(
            "web",
            vec![group(1, 1, &[&dead]), group(2, 0, &[&instance("b", &live)])],
        ))
        .await;
    let request = Request::post(format!("http://{}/", p.addr))
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("req");
    let response = client().request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(live.hits(), 0);
}

#[tokio::test]
async fn slow_response_headers_are_504() {
    let never = tokio_util::sync::CancellationToken::new();
    let gate = never.clone();
    let slow = backend(move |_req| {
        let gate = gate.clone();
        async move {
            gate.cancelled().await;
            text("late")
        }
    })
    .await;
    let inst = instance("slow-1", &slow);
    let p = proxy(ProxyOptions {
        response_timeout: Duration::from_millis(200),
        ..ProxyOptions::default()
    })
    .await;
    p.routes
        .publish(one_app("web", vec![group(2, 1, &[&inst])]))
        .await;
    let response = client()
        .request(
            Request::get(format!("http://{}/", p.addr))
                .body(Full::new(Bytes::new()))
                .expect("req"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("instance slow-1") && body.contains("no response headers"),
        "{body}"
    );
    assert_eq!(inst.in_flight(), 0);
    never.cancel();
}
