//! The web dashboard in a real browser (Debian's chromium driven by playwright-core, see
//! `tests/browser/`): a deployer logs in, watches a canary of the demo app progress (weights, timeline
//! and charts update over SSE without a reload), and aborts it — checked through the CLI too; a viewer
//! sees no action buttons and a forged POST gets 403; a wrong token and an expired session are refused;
//! the pages fit 1280 px and 390 px. On the flags page a deployer kills a flag (OFREP then serves its
//! default) and a viewer has no flag buttons. With `SLIPWAY_SCREENSHOTS=DIR` the screenshots go to DIR (the
//! README's come from `SLIPWAY_SCREENSHOTS=docs/images`).
//!
//! Without chromium or node (or `npm ci` not run in tests/browser) the tests say so and pass, unless
//! CI is set: then they fail.

#[allow(dead_code)]
#[path = "flags_support/ofrep_http.rs"]
mod ofrep_http;
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::load::Load;
use support::*;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Whether the browser tools are here; without them, fail in CI and skip elsewhere.
fn browser_available() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = browser_dir().join("node_modules/playwright-core").exists();
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some("chromium (apt-get install chromium)"),
        (!node).then_some("node"),
        (!modules).then_some("playwright-core (npm ci in crates/cli/tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        !ci,
        "CI is set but the browser tests cannot run: missing {missing:?}"
    );
    eprintln!("SKIPPED: the dashboard's browser tests need {missing:?}");
    false
}

fn api_addr(world: &World) -> SocketAddr {
    wait_for(Duration::from_secs(30), "the API address file", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()
            .and_then(|a| a.trim().parse().ok())
    })
}

fn create_token(world: &World, name: &str, role: &str) -> String {
    let run = world
        .slipway(&["token", "create", name, "--role", role])
        .ok();
    run.stdout.trim().to_string()
}

/// The browser script, stopped by its PID if the test ends first.
struct Script {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Script {
    fn start(scenario: &str, env: &[(&str, String)]) -> Script {
        let mut cmd = Command::new("node");
        cmd.arg(browser_dir().join("dashboard.mjs"))
            .arg(scenario)
            .current_dir(browser_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start node");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("{line}");
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Script {
            child,
            lines,
            stderr,
        }
    }

    /// The next line the script prints on stdout.
    fn line(&mut self, deadline: Duration) -> String {
        match self.lines.recv_timeout(deadline) {
            Ok(l) => l,
            Err(_) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "the browser script printed nothing more within {deadline:?} (exit: {status:?})"
                );
            }
        }
    }

    /// Waits for the end and returns its JSON result; panics unless it succeeded.
    fn finish(mut self, deadline: Duration) -> Value {
        let end = Instant::now() + deadline;
        let mut last = String::new();
        let status = loop {
            while let Ok(l) = self.lines.try_recv() {
                last = l;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < end,
                "the browser script did not end within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // Lines still in the pipe after the exit.
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(l) = self.lines.try_recv() {
            last = l;
        }
        let log = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new))
            .join()
            .unwrap_or_default();
        assert!(
            status.success(),
            "the browser script failed ({status}):\n{log}"
        );
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SIGTERM first: playwright then closes its chromium.
            // SAFETY: kill(2) on the pid of the child this test started.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const CANARY: &str = "strategy = \"canary\"\nprogress_deadline = \"120s\"\nsteps = [ { weight = 20 }, { analysis = \"golden\", for = \"4s\" }, { weight = 50 }, { pause = {} } ]";
const GOLDEN: &str = "[analysis.golden]\nerror_rate = { max = \"1%\", compare = \"stable\" }\nlatency_p95 = { max = \"500ms\" }\n";

fn ui_env(api: SocketAddr) -> Vec<(&'static str, String)> {
    vec![("SLIPWAY_UI", format!("http://{api}"))]
}

#[test]
fn a_deployer_watches_a_canary_live_and_aborts_it() {
    if !browser_available() {
        return;
    }
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = api_addr(&world);
    world.deploy_ok(&Conf::demo("v1").deploy(CANARY).tail(GOLDEN));
    let token = create_token(&world, "alice", "deployer");
    let load = Load::paced(world.daemon.proxy, 2, "/", 50);
    load.wait_for_more(50);

    let mut env = ui_env(api);
    env.push(("TOKEN", token.clone()));
    if let Ok(dir) = std::env::var("SLIPWAY_SCREENSHOTS") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        env.push(("SCREENSHOTS", dir.display().to_string()));
    }
    let mut script = Script::start("main", &env);
    // The page is open before the canary starts: what follows reaches it over SSE.
    assert_eq!(script.line(Duration::from_secs(180)), "ready");
    world.write(&Conf::demo("v2").deploy(CANARY).tail(GOLDEN));
    world.slipway(&["deploy", "--detach"]).ok();
    let result = script.finish(Duration::from_secs(400));
    let _ = load.finish();
    eprintln!("browser result: {result}");
    let weights: Vec<u64> = result["weights"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert!(weights.contains(&50), "{result}");
    let bytes = &result["bytes"];
    assert!(
        bytes["app"].as_u64().unwrap_or(u64::MAX) < 150_000,
        "{result}"
    );

    // The abort pressed in the browser, seen through the CLI.
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    let history = world.history();
    assert_eq!(release(&history, 2)["status"], "failed", "{history:?}");
    assert_eq!(world.answer(), "v1");
    let events = world.slipway(&["status", "--json"]).ok().json();
    assert!(
        events["last_failure"]
            .as_str()
            .is_some_and(|f| f.contains("alice")),
        "{events}"
    );
    let token_header = format!("Bearer {token}");
    let journal = support::http::get(
        api,
        "/v1/apps/shop/events?limit=1000",
        &[("Authorization", &token_header)],
    )
    .expect("events over TCP");
    assert!(
        journal
            .body
            .contains("abort requested by alice (deployer) from the dashboard"),
        "the audit trail names the user: {}",
        journal.body
    );
}

#[test]
fn viewers_wrong_tokens_forged_posts_and_expired_sessions_are_refused() {
    if !browser_available() {
        return;
    }
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0", "--session-ttl", "15s"]);
    let api = api_addr(&world);
    world.deploy_ok(&Conf::demo("v1"));
    let mut env = ui_env(api);
    env.push(("VIEWER_TOKEN", create_token(&world, "watcher", "viewer")));
    env.push(("TOKEN", create_token(&world, "bob", "deployer")));
    let script = Script::start("refusals", &env);
    script.finish(Duration::from_secs(300));
    // Nothing the refused posts asked for happened.
    let status = world.status();
    assert_eq!(status["stable"]["version"], 1, "{status}");
    assert_eq!(world.history().len(), 1);
}

const FLAGS: &str = r#"{
  "flags": {
    "new-checkout": {
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on",
                           {"fractional": [{"var": "targetingKey"}, ["on", 25], ["off", 75]]}]}
    },
    "color": {"variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"}
  }
}"#;

/// `new-checkout` for a staff member, through OFREP with the app's evaluation key.
fn staff_checkout(api: SocketAddr, key: &str) -> Value {
    let answer = ofrep_http::post(
        api,
        "/ofrep/v1/evaluate/flags/new-checkout",
        &[("X-API-Key", key)],
        r#"{"context": {"targetingKey": "u-1", "email": "ann@example.com"}}"#,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()
}

#[test]
fn a_deployer_kills_a_flag_from_the_flags_page_and_a_viewer_cannot() {
    if !browser_available() {
        return;
    }
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = api_addr(&world);
    world.deploy_ok(&Conf::demo("v1"));
    let file = world.root().join("flags.json");
    std::fs::write(&file, FLAGS).unwrap();
    world
        .slipway(&["flags", "import", file.to_str().unwrap()])
        .ok();
    let key = world.slipway(&["flags", "key", "create", "web"]).ok();
    let key = key.stdout.trim().to_string();
    assert_eq!(staff_checkout(api, &key)["value"], true);

    let mut env = ui_env(api);
    env.push(("TOKEN", create_token(&world, "alice", "deployer")));
    env.push(("VIEWER_TOKEN", create_token(&world, "watcher", "viewer")));
    if let Ok(dir) = std::env::var("SLIPWAY_SCREENSHOTS") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        env.push(("SCREENSHOTS", dir.display().to_string()));
    }
    let mut script = Script::start("flags", &env);
    assert_eq!(script.line(Duration::from_secs(180)), "ready");
    world.slipway(&["flags", "disable", "color"]).ok();
    let result = script.finish(Duration::from_secs(300));
    eprintln!("browser result: {result}");

    // The kill pressed in the browser: evaluations get the default variant, and the audit names alice.
    let killed = staff_checkout(api, &key);
    assert_eq!(killed["value"], false, "{killed}");
    assert_eq!(killed["variant"], "off", "{killed}");
    let history = world
        .slipway(&["flags", "history", "new-checkout", "--json"])
        .ok()
        .json();
    assert_eq!(history[0]["action"], "kill", "{history}");
    assert_eq!(history[0]["who"], "alice (dashboard)", "{history}");
    assert_eq!(history[0]["reason"], "checkout errors", "{history}");
    // The viewer's refused posts changed nothing.
    let list = world.slipway(&["flags", "list", "--json"]).ok().json();
    let state = |k: &str| {
        list["flags"]
            .as_array()
            .and_then(|l| l.iter().find(|f| f["key"] == k))
            .map(|f| (f["state"].clone(), f["killed"].clone()))
    };
    assert_eq!(
        state("color"),
        Some((Value::from("DISABLED"), Value::from(false))),
        "{list}"
    );
    assert_eq!(
        state("new-checkout"),
        Some((Value::from("ENABLED"), Value::from(true))),
        "{list}"
    );
}
