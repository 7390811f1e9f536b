//! A real Prometheus (Debian's `prometheus`) scraping slipway's own `/metrics` over the token-guarded TCP
//! API, and a canary whose analysis asks that Prometheus: a bad canary is rolled back on its answer, and
//! the rollback is announced to a webhook (a real HTTP listener in the test). Prometheus's own linter
//! (`promtool check metrics`) reads the exposition too.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::http::get;
use support::load::Load;
use support::*;

/// A Prometheus server for one test, stopped by PID on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &Path, target: SocketAddr, token_file: &Path) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: slipway\n    metrics_path: /metrics\n    \
             authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
            token_file.display()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus is installed (.ci/run installs Debian's `prometheus`)");
    Prometheus { child, addr }
}

/// One instant-query value, if Prometheus has one.
fn query(prom: SocketAddr, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = get(prom, &format!("/api/v1/query?query={encoded}"), &[]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// A webhook receiver: records the bodies POSTed to it.
fn webhook() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten().take(20) {
            let mut stream = stream;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        seen.lock().unwrap().push(text[head_end + 4..].to_string());
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (addr, bodies)
}

#[test]
fn prometheus_scrapes_slipway_and_its_answer_rolls_a_bad_canary_back() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api: SocketAddr = wait_for(Duration::from_secs(30), "the API address", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let prom = start_prometheus(world.root(), api, &world.daemon.state.join("api-token"));
    let (hook, bodies) = webhook();

    world.deploy_ok(&Conf::demo("v1"));
    let load = Load::start(world.daemon.proxy, 2, "/");
    // Prometheus really scrapes slipway: the counter of v1's answers shows up in a query.
    wait_until(
        Duration::from_secs(60),
        "Prometheus to see v1's requests",
        || {
            query(
                prom.addr,
                "sum(slipway_requests_total{app=\"shop\",release=\"v1\",class=\"2xx\"})",
            )
            .is_some_and(|v| v > 0.0)
        },
    );

    let analysis = format!(
        "[analysis.prom]\nprometheus = {{ address = \"http://{}\", query = 'sum(slipway_requests_total{{app=\"{{{{app}}}}\",release=\"{{{{release}}}}\",class=\"5xx\"}}) or vector(0)', max = 5 }}\n\n[[notify]]\nurl = \"http://{hook}/hooks/secret-token\"\n",
        prom.addr
    );
    let bad = Conf::demo("v2")
        .env("DEMO_ERROR_RATE", "0.5")
        .deploy("strategy = \"canary\"\nprogress_deadline = \"60s\"\nsteps = [ { weight = 50 }, { analysis = \"prom\", for = \"60s\" } ]")
        .tail(&analysis);
    world.write(&bad);
    let run = world.slipway(&["deploy"]);
    let tally = load.finish();
    assert!(
        !run.success(),
        "the bad canary must not go live:\n{}",
        run.stdout
    );
    let status = world.status();
    assert_eq!(status["stable"]["version"], 1, "v1 still stable: {status}");
    let reason = status["last_failure"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("prom") && reason.contains("above the maximum"),
        "reason names the check: {reason}"
    );
    // Only the app's own 500s failed: the switch itself failed nothing.
    for f in tally.failures() {
        assert!(
            format!("{:?}", f.result).contains("500"),
            "a failure not from the app: {f:?}"
        );
    }
    wait_until(Duration::from_secs(30), "the webhook", || {
        !bodies.lock().unwrap().is_empty()
    });
    let body = bodies.lock().unwrap()[0].clone();
    let json: serde_json::Value = serde_json::from_str(&body).expect("Slack-compatible JSON");
    let text = json["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("v2") && text.contains("rolled back"),
        "webhook text: {text}"
    );
    assert!(
        !world.daemon.log_text().contains("secret-token"),
        "the webhook's path never reaches the log"
    );

    // The hand-written exposition (control/metrics_text.rs), after a canary and its analysis, passes
    // Prometheus's own linter: names, types, HELP, histogram buckets, label escaping.
    let token = std::fs::read_to_string(world.daemon.state.join("api-token")).expect("api-token");
    let auth = format!("Bearer {}", token.trim());
    let metrics = get(api, "/metrics", &[("authorization", auth.as_str())]).expect("GET /metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("slipway_requests_total"),
        "{}",
        metrics.body
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is needed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr),
        metrics.body
    );
}
