//! Runs the built demo app and talks to it over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// A running demo app, killed (by PID) if the test ends early.
struct Demo {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Demo {
    fn start(envs: &[(&str, &str)], cwd: &Path) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway-demo-app"));
        cmd.env("PORT", "0")
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for var in [
            "DEMO_VERSION",
            "DEMO_ERROR_RATE",
            "DEMO_LATENCY_MS",
            "DEMO_STARTUP_DELAY_MS",
            "DEMO_READY",
            "DEMO_CRASH_AFTER",
            "DEMO_ERRORS_AFTER_MS",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(envs.iter().copied());
        let mut child = cmd.spawn().expect("spawn demo app");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Demo {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            lines,
        };
        let line = demo.wait_line("listening on");
        demo.addr = line
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .expect("address in the start line");
        demo
    }

    /// The next stdout line containing `needle`, waiting up to the deadline.
    fn wait_line(&self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no line containing {needle:?} from the demo app: {e}"),
            }
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the demo app did not exit");
    }

    fn sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    fn get(&self, path: &str) -> Reply {
        get(self.addr, path)
    }

    /// Polls `/stats` until `key` reaches at least `at_least`.
    fn wait_stat(&self, key: &str, at_least: u64) {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            let body = self.get("/stats").body;
            let value = body
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .expect("stat present");
            if value >= at_least {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{key} never reached {at_least}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A minimal HTTP/1.1 GET with `Connection: close`, read to the end.
fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

#[test]
fn serves_its_version_from_env_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[("DEMO_VERSION", "v7")], dir.path());
    let reply = demo.get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "hello from v7\n");
    assert_eq!(reply.header("x-demo-version"), Some("v7"));
    assert_eq!(demo.get("/health").status, 200);
    assert_eq!(demo.get("/ready").status, 200);
    assert_eq!(demo.get("/nope").status, 404);
    drop(demo);

    std::fs::write(dir.path().join("version.txt"), "v9\n").unwrap();
    let demo = Demo::start(&[], dir.path());
    assert_eq!(demo.get("/").body, "hello from v9\n");
    drop(demo);
    let demo = Demo::start(&[("DEMO_VERSION", "v10")], dir.path());
    assert_eq!(
        demo.get("/").body,
        "hello from v10\n",
        "the env wins over version.txt"
    );
}

#[test]
fn error_rate_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[("DEMO_ERROR_RATE", "0.03")], dir.path());
    let errors = (0..200).filter(|_| demo.get("/").status == 500).count();
    assert_eq!(errors, 6);
    assert_eq!(demo.get("/slow?ms=0").status, 200, "only / gets errors");
}

#[test]
fn errors_start_only_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let later = Demo::start(
        &[("DEMO_ERROR_RATE", "1"), ("DEMO_ERRORS_AFTER_MS", "600000")],
        dir.path(),
    );
    assert!(
        (0..20).all(|_| later.get("/").status == 200),
        "no error in the first ten minutes"
    );
    let soon = Demo::start(
        &[("DEMO_ERROR_RATE", "1"), ("DEMO_ERRORS_AFTER_MS", "200")],
        dir.path(),
    );
    let deadline = std::time::Instant::now() + DEADLINE;
    while soon.get("/").status != 500 {
        assert!(std::time::Instant::now() < deadline, "errors never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(soon.get("/").status, 500, "and they go on");
}

#[test]
fn not_ready_forever_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[("DEMO_READY", "false")], dir.path());
    assert_eq!(demo.get("/ready").status, 503);
    assert_eq!(demo.get("/health").status, 200);
    assert_eq!(demo.get("/").status, 200);
}

#[test]
fn crashes_after_n_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(&[("DEMO_CRASH_AFTER", "2")], dir.path());
    assert_eq!(demo.get("/").status, 200);
    assert_eq!(demo.get("/").status, 200);
    // The third request kills it: no answer, exit status 1.
    let mut stream = TcpStream::connect(demo.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(raw.is_empty());
    assert_eq!(demo.wait_exit().code(), Some(1));
}

#[test]
fn sigterm_finishes_the_in_flight_request_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(&[("DEMO_VERSION", "v2")], dir.path());
    let addr = demo.addr;
    let slow = std::thread::spawn(move || get(addr, "/slow?ms=1500"));
    demo.wait_stat("inflight", 1);

    demo.sigterm();
    demo.wait_line("demo v2 draining");
    assert!(
        TcpStream::connect(addr).is_err(),
        "no new connections while draining"
    );
    let reply = slow.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "slow v2 1500\n");
    demo.wait_line("demo v2 stopped");
    assert_eq!(demo.wait_exit().code(), Some(0));
}

#[test]
fn sse_sends_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&[("DEMO_VERSION", "v3")], dir.path());
    let reply = demo.get("/sse?n=3&interval_ms=5");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    for i in 1..=3 {
        assert!(
            reply.body.contains(&format!("data: v3 {i}\n\n")),
            "{:?}",
            reply.body
        );
    }
}

#[test]
fn upgrade_echoes_and_holds_shutdown_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start(&[], dir.path());
    let mut stream = TcpStream::connect(demo.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: demo\r\nConnection: Upgrade\r\nUpgrade: echo-test\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    stream.write_all(b"ping").unwrap();
    let mut echoed = [0u8; 4];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping");

    // Draining waits for the open stream, which still works meanwhile.
    demo.wait_stat("streams", 1);
    demo.sigterm();
    demo.wait_line("draining");
    stream.write_all(b"pong").unwrap();
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"pong");
    assert!(
        demo.child.try_wait().unwrap().is_none(),
        "still running while the stream is open"
    );

    stream.shutdown(std::net::Shutdown::Write).unwrap();
    demo.wait_line("stopped");
    assert_eq!(demo.wait_exit().code(), Some(0));
}

#[test]
fn missing_port_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway-demo-app"))
        .env_remove("PORT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT is required"));
}
