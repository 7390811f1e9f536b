//! Issue 19's io_uring experiment (not the product): the same minimal HTTP/1.1 relay — one keep-alive
//! backend connection per client connection, bodiless requests, `Content-Length` responses — waiting
//! and doing its I/O over epoll (tokio) or over io_uring, so that `bench/uring.sh` can measure what
//! io_uring saves per proxied request with everything else equal.
//!
//! Usage: `uring-relay epoll|uring|uring-tuned <listen addr> <backend addr>`.

mod frame;
mod relay_epoll;
mod relay_uring;

use std::net::SocketAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, listen, backend] = &args[..] else {
        eprintln!("usage: uring-relay epoll|uring|uring-tuned <listen addr> <backend addr>");
        return ExitCode::from(2);
    };
    let (Ok(listen), Ok(backend)) = (listen.parse::<SocketAddr>(), backend.parse::<SocketAddr>())
    else {
        eprintln!("uring-relay: addresses like 127.0.0.1:8080");
        return ExitCode::from(2);
    };
    let ran = match mode.as_str() {
        "epoll" => relay_epoll::run(listen, backend),
        "uring" => relay_uring::run(listen, backend, false),
        "uring-tuned" => relay_uring::run(listen, backend, true),
        other => {
            eprintln!("uring-relay: unknown mode {other:?} (epoll, uring or uring-tuned)");
            return ExitCode::from(2);
        }
    };
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("uring-relay: {error}");
            ExitCode::FAILURE
        }
    }
}
