//! Hostile input through the real binary: the limits set on `slipway serve` and in `slipway.toml` reach
//! the proxy, and each answers with its status — a smuggling attempt 400, a body over the app's
//! `max_body_size` 413, a head not finished in time 408, connections over the per-client limit 503 —
//! while the app keeps serving everyone else.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{Conf, World};

/// Sends `bytes` on a new connection and reads until the proxy closes it.
fn raw(proxy: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> &str {
    answer.get(9..12).unwrap_or("")
}

#[test]
fn limits_from_the_command_line_and_the_config_answer_with_their_status() {
    let world =
        World::with_daemon_args(&["--head-timeout", "1s", "--max-connections-per-client", "8"]);
    world.deploy_ok(&Conf::demo("v1").tail("[routing]\nmax_body_size = \"1k\"\n"));
    let proxy = world.daemon.proxy;
    let get = b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n";
    assert_eq!(status(&raw(proxy, get)), "200");

    let big = format!(
        "POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n{}",
        "x".repeat(2048)
    );
    let answer = raw(proxy, big.as_bytes());
    assert_eq!(status(&answer), "413", "{answer}");
    assert!(answer.contains("1024 bytes"), "{answer}");

    let smuggling = b"POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: shop\r\n\r\n";
    let answer = raw(proxy, smuggling);
    assert_eq!(status(&answer), "400", "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");

    let slow = raw(proxy, b"GET / HTTP/1.1\r\nHost: shop\r\nX-Slow: 1");
    assert_eq!(status(&slow), "408", "{slow}");

    // Eight idle connections from this address fill its share; the ninth is turned away at once.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(proxy).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n")
                .expect("write");
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).expect("answered, so admitted");
            s
        })
        .collect();
    assert_eq!(status(&raw(proxy, get)), "503");
    drop(held);
    support::wait_until(Duration::from_secs(20), "the proxy serves again", || {
        status(&raw(proxy, get)) == "200"
    });
}
