//! The demo app (`slipway demo-app`, or the `slipway-demo-app` binary): a small HTTP server with knobs (version, errors — from the start or
//! after a delay —, latency, startup delay, readiness, crash), used by slipway's tests and by `slipway demo` to show rollouts, rollbacks and
//! draining on something that behaves like a real app — including shutting down gracefully on SIGTERM:
//! stop accepting, finish in-flight requests and open streams, exit 0.

mod flag;
mod knobs;
mod routes;

/// How the body of an error the app answers on purpose (`DEMO_ERROR_RATE`) starts: `<this> <version>`.
pub const INJECTED_ERROR: &str = "injected error from";

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// Serves until SIGTERM/SIGINT, then drains and returns.
pub async fn run() -> Result<(), String> {
    // Signals first, so a SIGTERM during the startup delay is a clean stop too.
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut sigint =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let knobs = knobs::Knobs::from_env().map_err(|e| e.to_string())?;
    let version = knobs.version.clone();

    tokio::select! {
        _ = tokio::time::sleep(knobs.startup_delay) => {}
        _ = sigterm.recv() => return Ok(()),
        _ = sigint.recv() => return Ok(()),
    }
    let listener = TcpListener::bind((knobs.bind, knobs.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", knobs.bind, knobs.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!("demo {version} listening on {addr}");

    let app = Arc::new(routes::App::new(knobs)?);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    eprintln!("demo {version}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        };
        let app = app.clone();
        let service = service_fn(move |req| routes::handle(app.clone(), req));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client hanging up mid-request is its business, not an app failure.
            let _ = conn.await;
        });
    }

    drop(listener);
    println!("demo {version} draining");
    graceful.shutdown().await;
    app.streams_closed().await;
    println!("demo {version} stopped");
    Ok(())
}
