//! Taking an instance out of rotation under load without failing a request (publish → drain → stop), and
//! graceful shutdown of the proxy itself.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use slipway_proxy::{ProxyOptions, drain};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_drain_loses_no_request() {
    let slowish = |_req| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        text("ok")
    };
    let (old, new) = (backend(slowish).await, backend(slowish).await);
    let (old_i, new_i) = (instance("old", &old), instance("new", &new));
    let p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app(
            "web",
            vec![group(1, 1, &[&old_i]), group(2, 1, &[&new_i])],
        ))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let c = client();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (c, addr, stop, ok, failed) =
                (c.clone(), p.addr, stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                // Bounded: at most 3000 requests per worker.
                for _ in 0..3000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match get(&c, addr, "/", &[]).await {
                        Ok((StatusCode::OK, _)) => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    wait_until("both releases serve traffic", || {
        old.hits() >= 50 && new.hits() >= 50
    })
    .await;
    p.routes
        .publish(one_app("web", vec![group(2, 1, &[&new_i])]))
        .await;
    // Requests already counted may still reach the old instance, but no more than that.
    let old_hits_at_publish = old.hits();
    let in_flight_at_publish = old_i.in_flight();
    let outcome = drain(&old_i, Duration::from_secs(10), Duration::from_secs(10)).await;
    assert!(outcome.is_clean(), "{outcome:?}");
    let old_hits_after_drain = old.hits();
    assert!(
        old_hits_after_drain - old_hits_at_publish <= in_flight_at_publish,
        "old instance got {} requests after publish with {in_flight_at_publish} in flight",
        old_hits_after_drain - old_hits_at_publish
    );
    old.stop();

    let new_hits = new.hits();
    wait_until("the new release serves more traffic", || {
        new.hits() >= new_hits + 200
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("worker");
    }
    assert_eq!(
        old.hits(),
        old_hits_after_drain,
        "old instance received requests after its drain"
    );
    assert_eq!(old_i.in_flight(), 0);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "failed requests (ok: {})",
        ok.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_request_finish() {
    let release = CancellationToken::new();
    let gate = release.clone();
    let slow = backend(move |_req| {
        let gate = gate.clone();
        async move {
            gate.cancelled().await;
            text("finished")
        }
    })
    .await;
    let mut p = proxy(ProxyOptions::default()).await;
    p.routes
        .publish(one_app("web", vec![group(1, 1, &[&instance("a", &slow)])]))
        .await;

    let addr = p.addr;
    let pending = tokio::spawn(async move {
        let request = Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .expect("req");
        let response = client().request(request).await.expect("response");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    });
    wait_until("the slow request reached the instance", || slow.hits() == 1).await;

    p.shutdown.cancel();
    // The listener closes: new connections are refused (poll, the accept loop stops asynchronously).
    let mut refused = false;
    for _ in 0..2000 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused, "proxy still accepting after shutdown");
    let serve = p.task.take().expect("serve task");
    assert!(
        !serve.is_finished(),
        "serve returned with a request in flight"
    );

    release.cancel();
    let (status, body) = pending.await.expect("client task");
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"finished"[..]));
    tokio::time::timeout(Duration::from_secs(20), serve)
        .await
        .expect("serve returns after the last connection")
        .expect("serve task")
        .expect("serve result");
}
