//! Benchmark harness for the data plane before the daemon exists: serves one app with one instance on a
//! single-threaded tokio runtime (one worker, like the peers `bench/proxy.sh` compares against).
//!
//! Usage: `slipway-proxy-bench <listen addr> <instance addr>`, e.g.
//! `slipway-proxy-bench 127.0.0.1:19009 127.0.0.1:19010`. Stops gracefully on SIGINT/SIGTERM.
//! Built with `--features mimalloc`, it uses mimalloc as its global allocator.

use std::net::SocketAddr;
use std::process::ExitCode;

use slipway_proxy::{AppRoute, Backend, Proxy, ProxyOptions, ReleaseGroup, RouteTable};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, instance) = match parse(&args) {
        Ok(addrs) => addrs,
        Err(message) => {
            eprintln!("{message}\nusage: slipway-proxy-bench <listen addr> <instance addr>");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(listen, instance)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("slipway-proxy-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(SocketAddr, SocketAddr), String> {
    let [listen, instance] = args else {
        return Err("expected two addresses".to_owned());
    };
    let parse = |s: &str| {
        s.parse::<SocketAddr>()
            .map_err(|e| format!("{s:?} is not an address: {e}"))
    };
    Ok((parse(listen)?, parse(instance)?))
}

async fn run(listen: SocketAddr, instance: SocketAddr) -> std::io::Result<()> {
    let proxy = Proxy::new(ProxyOptions::default());
    let mut app = AppRoute::new("bench");
    // Fresh metrics: recording is on, as in the daemon.
    app.groups = vec![ReleaseGroup::new(
        1,
        100,
        vec![Backend::new("bench-1", instance)],
    )];
    proxy.routes().publish(RouteTable::of([app])).await;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signal.cancel();
    });
    eprintln!("slipway-proxy-bench: {listen} -> {instance}");
    proxy.serve(listener, shutdown).await
}
