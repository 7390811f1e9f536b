//! What every end-to-end test shares: a real `slipway serve` daemon in a temp dir (stopped by its PID in a
//! `Drop` guard), an app folder whose `slipway.toml` runs the bundled demo app, a runner for CLI commands
//! with a timeout, and a bounded load loop that counts every answer by version and every failure.
//!
//! Nothing here sleeps to wait for state: [`wait_until`] polls a condition with a deadline.

#![allow(dead_code)]

pub mod http;
pub mod load;
pub mod ui;

use serde_json::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use load::{Load, Tally};

/// The `slipway` binary under test (also the demo app: `slipway demo-app`).
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slipway")
}

/// Whether this process may make a private mount namespace (root: `unshare --mount`). On CI it
/// must: a test skipped there would prove nothing.
pub fn can_unshare_mounts() -> bool {
    let can = std::process::Command::new("unshare")
        .args(["--mount", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        can || std::env::var_os("CI").is_none(),
        "CI runs as root and can unshare --mount"
    );
    can
}

/// Generous: this runs on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `cond` every 50 ms until it holds; panics with `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_until`], for a value that appears.
pub fn wait_for<T>(deadline: Duration, what: &str, mut get: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    wait_until(deadline, what, || {
        found = get();
        found.is_some()
    });
    found.expect("wait_until returned without the value")
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this test started (or found in its own state dir); no memory involved.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Whether a process with this pid exists (a zombie counts as gone).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state is the field after the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            state != Some('Z')
        }
        Err(_) => false,
    }
}

/// Pids of live processes started for one of these instance ids (the supervisor marks every instance
/// process with `SLIPWAY_INSTANCE=<id>` in its environment).
pub fn processes_of_instances(ids: &[String]) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let marked = environ.split(|b| *b == 0).any(|var| {
            var.strip_prefix(b"SLIPWAY_INSTANCE=")
                .is_some_and(|v| ids.iter().any(|id| id.as_bytes() == v))
        });
        if marked && pid_alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// A `slipway serve` process on a state dir, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// After `slipway upgrade`: the daemon that took over (not a child of the test).
    successor: Option<u32>,
    /// The binary it runs (`upgrade` starts the file at this path again).
    exe: PathBuf,
    /// A listening socket the test holds and passes as systemd does (`LISTEN_FDS`), if any.
    held: Option<std::net::TcpListener>,
    pub state: PathBuf,
    pub log: PathBuf,
    pub proxy: SocketAddr,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    starts: u32,
}

impl Daemon {
    pub fn start(state: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(state, extra, &[])
    }

    /// With extra variables in the daemon's environment (e.g. secret sources).
    pub fn start_with_env(state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::unstarted(state, extra, env);
        d.spawn();
        d
    }

    /// Starts a daemon that does not serve yet (a standby controller, `serve --lease`): its proxy
    /// and socket come once it leads; `wait_serving` waits for that.
    pub fn start_standby(state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::unstarted(state, extra, env);
        d.launch();
        d
    }

    fn unstarted(state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon {
            child: None,
            successor: None,
            exe: PathBuf::from(bin()),
            held: None,
            state: state.to_path_buf(),
            log: state.with_file_name("daemon.log"),
            proxy: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: 0,
        }
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }

    fn spawn(&mut self) {
        self.launch();
        self.wait_serving(DEADLINE);
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        // What a previous run left (after kill -9) must not be mistaken for this run's readiness.
        let _ = std::fs::remove_file(self.state.join("proxy.addr"));
        let _ = std::fs::remove_file(self.state.join("slipway.sock"));
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let mut command = match &self.held {
            None => Command::new(&self.exe),
            // As systemd passes a socket: descriptor 3, LISTEN_FDS, and LISTEN_PID naming the
            // daemon (the shell's pid, which `exec` keeps).
            Some(listener) => {
                use std::os::fd::AsRawFd;
                use std::os::unix::process::CommandExt;
                let fd = listener.as_raw_fd();
                let mut command = Command::new("sh");
                command
                    .args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\""])
                    .arg(&self.exe)
                    .env("LISTEN_FDS", "1")
                    .env("LISTEN_FDNAMES", "proxy");
                // SAFETY: dup2 is async-signal-safe; the descriptor stays open in the parent.
                unsafe {
                    command.pre_exec(move || {
                        // Already 3: dup2 would keep its close-on-exec flag, so clear it instead.
                        let done = if fd == 3 {
                            libc::fcntl(3, libc::F_SETFD, 0)
                        } else {
                            libc::dup2(fd, 3)
                        };
                        if done < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                command
            }
        };
        let child = command
            .arg("serve")
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--listen", "127.0.0.1:0"])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("SLIPWAY_SERVER")
            .env_remove("SLIPWAY_TOKEN")
            .env("SLIPWAY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("daemon log"))
            .stderr(log)
            .spawn()
            .expect("cannot start slipway serve");
        self.child = Some(child);
    }

    /// Waits until the daemon serves: its proxy address written and its socket answering.
    pub fn wait_serving(&mut self, deadline: Duration) {
        let addr_file = self.state.join("proxy.addr");
        let socket = self.state.join("slipway.sock");
        let mut exited = None;
        let proxy = wait_for(
            deadline,
            "the daemon to write proxy.addr and open its socket",
            || {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    exited = Some(status);
                    return Some(None);
                }
                let text = std::fs::read_to_string(&addr_file).ok()?;
                let addr = text.strip_suffix('\n')?.parse::<SocketAddr>().ok()?;
                std::os::unix::net::UnixStream::connect(&socket).ok()?;
                Some(Some(addr))
            },
        );
        match proxy {
            Some(addr) => self.proxy = addr,
            None => panic!(
                "slipway serve exited at start ({exited:?}):\n{}",
                self.log_text()
            ),
        }
    }

    pub fn pid(&self) -> u32 {
        match (&self.child, self.successor) {
            (Some(child), _) => child.id(),
            (None, Some(pid)) => pid,
            (None, None) => panic!("daemon not running"),
        }
    }

    /// After `slipway upgrade` answered: the old daemon ends (once its in-flight requests are done)
    /// and `pid` is the daemon from then on; `daemon.pid` in the state dir names it too.
    pub fn upgraded_to(&mut self, pid: u32) {
        let recorded = std::fs::read_to_string(self.state.join("daemon.pid")).unwrap_or_default();
        assert_eq!(
            recorded.trim(),
            pid.to_string(),
            "daemon.pid names the new daemon"
        );
        if self.child.is_some() {
            self.wait_exit(DEADLINE)
                .expect("the upgraded daemon did not end");
        } else if let Some(old) = self.successor {
            wait_until(DEADLINE, "the upgraded daemon ends", || !pid_alive(old));
        }
        self.successor = Some(pid);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for the exit (it drains first).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        signal(pid, libc::SIGTERM);
        self.wait_exit(Duration::from_secs(120))
            .unwrap_or_else(|| panic!("the daemon did not exit within 120 s of SIGTERM"))
    }

    /// SIGKILL: the daemon gets no chance to clean up (its instances are left running).
    pub fn kill9(&mut self) {
        signal(self.pid(), libc::SIGKILL);
        self.wait_exit(DEADLINE)
            .expect("SIGKILL did not end the daemon");
    }

    /// Starts a new daemon on the same state dir.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Waits for the daemon to exit by itself; `None` if it still runs after `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        if self.child.is_none()
            && let Some(pid) = self.successor
        {
            // Not our child: its status goes to init; that it is gone is what counts.
            let end = Instant::now() + deadline;
            while pid_alive(pid) {
                if Instant::now() >= end {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            self.successor = None;
            return Some(std::os::unix::process::ExitStatusExt::from_raw(0));
        }
        let child = self.child.as_mut()?;
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills what a daemon that did not shut down left behind, by the pid files in its own run dir.
    fn reap_instances(&self) {
        let Ok(entries) = std::fs::read_dir(self.state.join("run")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(id) = name.strip_suffix(".pid") else {
                continue;
            };
            // The pid file's first line is the group leader's pid.
            let Some(pgid) = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok())
            else {
                continue;
            };
            // Only if that pid still is the instance (pids get reused).
            if processes_of_instances(&[id.to_string()]).contains(&pgid) {
                // SAFETY: see `signal`; a negative pid addresses the instance's process group.
                unsafe {
                    libc::kill(-(pgid as i32), libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.successor.filter(|_| self.child.is_none()) {
            signal(pid, libc::SIGTERM);
            let end = Instant::now() + Duration::from_secs(60);
            while pid_alive(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            if pid_alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
        if let Some(child) = self.child.as_ref() {
            signal(child.id(), libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(60)).is_none()
                && let Some(mut child) = self.child.take()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.reap_instances();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- daemon log (last 80 lines) ----");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A finished CLI command.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the output unless the command exited 0.
    pub fn ok(self) -> Run {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Panics with the output if the command exited 0 (or was killed).
    pub fn failed(self) -> Run {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "command should have failed: {self}"
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to its end, killing it after `timeout`.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start the command");
    let readers = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    });
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [out, err] = readers.map(|r| r.join().unwrap_or_default());
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: out,
        stderr: err,
    };
    assert!(
        status.is_some(),
        "command timed out after {timeout:?}: {run}"
    );
    run
}

/// How an app's `slipway.toml` is written: the demo app, with knobs in `[env]`.
#[derive(Clone, Debug)]
pub struct Conf {
    pub app: String,
    /// `DEMO_VERSION`; `None` leaves it unset (the demo app then reads `version.txt`).
    pub version: Option<String>,
    pub env: Vec<(String, String)>,
    /// The web command; default: the demo app.
    pub cmd: Option<String>,
    pub replicas: u32,
    /// Lines of the `[deploy]` table.
    pub deploy: String,
    /// Extra lines of `[processes.web]`.
    pub web_extra: String,
    /// Raw TOML appended at the end (more tables, e.g. `[secrets]`).
    pub tail: String,
}

impl Conf {
    /// The demo app at `version`, two replicas, blue-green with a short warm period.
    pub fn demo(version: &str) -> Conf {
        Conf {
            app: "shop".into(),
            version: Some(version.into()),
            env: Vec::new(),
            cmd: None,
            replicas: 2,
            deploy:
                "strategy = \"blue-green\"\nprogress_deadline = \"60s\"\nscale_down_delay = \"1s\""
                    .into(),
            web_extra: String::new(),
            tail: String::new(),
        }
    }

    pub fn version(mut self, v: Option<&str>) -> Conf {
        self.version = v.map(String::from);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Conf {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn cmd(mut self, cmd: &str) -> Conf {
        self.cmd = Some(cmd.into());
        self
    }

    pub fn replicas(mut self, n: u32) -> Conf {
        self.replicas = n;
        self
    }

    pub fn deploy(mut self, lines: &str) -> Conf {
        self.deploy = lines.into();
        self
    }

    pub fn tail(mut self, toml: &str) -> Conf {
        self.tail = toml.into();
        self
    }

    pub fn render(&self) -> String {
        let mut env = String::new();
        if let Some(v) = &self.version {
            env.push_str(&format!("DEMO_VERSION = \"{v}\"\n"));
        }
        for (k, v) in &self.env {
            env.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let cmd = self
            .cmd
            .clone()
            .unwrap_or_else(|| format!("'{}' demo-app", bin()));
        format!(
            r#"app = "{app}"

[env]
{env}
[processes.web]
cmd = "{cmd}"
replicas = {replicas}
grace = "10s"
drain_timeout = "15s"
stream_drain_timeout = "15s"
readiness = {{ http = "/ready", period = "100ms", timeout = "100ms", failure_threshold = 10 }}
{extra}
[deploy]
{deploy}
{tail}
"#,
            app = self.app,
            cmd = cmd.replace('\\', "\\\\").replace('"', "\\\""),
            replicas = self.replicas,
            extra = self.web_extra,
            deploy = self.deploy,
            tail = self.tail,
        )
    }
}

/// One test's world: a temp dir holding the state dir, the app folder, and the daemon serving them.
pub struct World {
    pub daemon: Daemon,
    pub app_dir: PathBuf,
    // Dropped last: the daemon must stop before its state dir goes.
    _tmp: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        World::with_daemon_args(&[])
    }

    pub fn with_daemon_args(extra: &[&str]) -> World {
        World::with(extra, &[])
    }

    pub fn with_daemon_env(env: &[(&str, &str)]) -> World {
        World::with(&[], env)
    }

    /// The test holds the proxy's listening socket and passes it to each daemon it starts, as
    /// systemd's socket activation does: it stays open while no daemon runs.
    pub fn with_held_socket() -> World {
        let mut world = World::new();
        world.daemon.terminate();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        world.daemon.held = Some(listener);
        world.daemon.restart();
        world
    }

    /// The daemon runs a copy of the binary in the world's dir, so a test may replace that file.
    pub fn with_own_binary() -> World {
        let mut world = World::new();
        let exe = world.root().join("bin").join("slipway");
        std::fs::create_dir_all(exe.parent().expect("bin dir")).expect("bin dir");
        std::fs::copy(bin(), &exe).expect("copy the binary");
        world.daemon.terminate();
        world.daemon.exe = exe;
        world.daemon.restart();
        world
    }

    pub fn with(extra: &[&str], env: &[(&str, &str)]) -> World {
        let tmp = tempfile::Builder::new()
            .prefix("slipway-e2e-")
            .tempdir()
            .expect("temp dir");
        let app_dir = tmp.path().join("app");
        std::fs::create_dir_all(&app_dir).expect("app dir");
        let daemon = Daemon::start_with_env(&tmp.path().join("state"), extra, env);
        World {
            daemon,
            app_dir,
            _tmp: tmp,
        }
    }

    pub fn root(&self) -> &Path {
        self._tmp.path()
    }

    /// The TCP API's address (a daemon started with `--api 127.0.0.1:0` writes it to `api.addr`).
    pub fn api_addr(&self) -> SocketAddr {
        wait_for(DEADLINE, "the API address file", || {
            std::fs::read_to_string(self.daemon.state.join("api.addr"))
                .ok()
                .and_then(|a| a.trim().parse().ok())
        })
    }

    /// `slipway token create NAME --role ROLE` on the local socket; the token it printed.
    pub fn create_token(&self, name: &str, role: &str) -> String {
        let run = self
            .slipway(&["token", "create", name, "--role", role])
            .ok();
        let token = run.stdout.trim().to_string();
        assert!(token.starts_with("slw_"), "{run}");
        token
    }

    pub fn config_path(&self) -> PathBuf {
        self.app_dir.join("slipway.toml")
    }

    pub fn write(&self, conf: &Conf) {
        self.write_raw(&conf.render());
    }

    pub fn write_raw(&self, toml: &str) {
        std::fs::write(self.config_path(), toml).expect("write slipway.toml");
    }

    /// `slipway <args> --state-dir <state> --config <app>/slipway.toml`, from the app folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .arg("--state-dir")
            .arg(&self.daemon.state)
            .arg("--config")
            .arg(self.config_path())
            .current_dir(&self.app_dir)
            .env_remove("SLIPWAY_SERVER")
            .env_remove("SLIPWAY_TOKEN")
            .env_remove("SLIPWAY_APP")
            .env("SLIPWAY_LOG", "warn");
        cmd
    }

    pub fn slipway(&self, args: &[&str]) -> Run {
        run_command(self.command(args), Duration::from_secs(180))
    }

    /// Writes the config and deploys it, following the rollout; panics unless it succeeds.
    pub fn deploy_ok(&self, conf: &Conf) -> Run {
        self.write(conf);
        self.slipway(&["deploy"]).ok()
    }

    pub fn status(&self) -> Value {
        self.slipway(&["status", "--json"]).ok().json()
    }

    pub fn history(&self) -> Vec<Value> {
        match self.slipway(&["history", "--json"]).ok().json() {
            Value::Array(list) => list,
            other => panic!("history --json is not a list: {other}"),
        }
    }

    /// The `/` answer's version through the proxy ("v2" from "hello from v2").
    pub fn answer(&self) -> String {
        http::version_of(&http::get(self.daemon.proxy, "/", &[]).expect("GET / through the proxy"))
    }

    /// Waits until no rollout is in progress, and returns that status.
    pub fn settled(&self) -> Value {
        wait_for(Duration::from_secs(120), "no rollout in progress", || {
            let s = self.status();
            s["rollout"].is_null().then_some(s)
        })
    }

    /// Waits until the warm release of a blue-green switch is gone and only `version` runs.
    pub fn only_instances_of(&self, version: u64) -> Value {
        wait_for(
            Duration::from_secs(120),
            &format!("only v{version} instances running"),
            || {
                let s = self.status();
                let ok = s["rollout"].is_null()
                    && s["warm"].is_null()
                    && s["instances"].as_array().is_some_and(|l| {
                        !l.is_empty() && l.iter().all(|i| i["release"] == version)
                    });
                ok.then_some(s)
            },
        )
    }
}

/// The web instances' ports of `release` in a `status --json`.
pub fn ports(status: &Value, release: u64) -> Vec<u16> {
    status["instances"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|i| i["release"] == release)
                .filter_map(|i| i["port"].as_u64().map(|p| p as u16))
                .collect()
        })
        .unwrap_or_default()
}

/// A counter from the demo app's `/stats` (`inflight`, `streams`, `root_requests`), summed over instances.
pub fn demo_stat(ports: &[u16], key: &str) -> u64 {
    ports
        .iter()
        .filter_map(|&p| http::get(([127, 0, 0, 1], p).into(), "/stats", &[]).ok())
        .filter_map(|r| {
            r.body.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .sum()
}

/// Waits until at least `n` requests are in flight inside these instances, seen on three polls in a row
/// (probes and quick requests are in flight only for an instant; long ones stay).
pub fn wait_inflight(ports: &[u16], n: u64) {
    let mut streak = 0;
    wait_until(
        DEADLINE,
        &format!("{n} requests in flight in the app"),
        || {
            streak = if demo_stat(ports, "inflight") >= n {
                streak + 1
            } else {
                0
            };
            streak >= 3
        },
    );
}

/// Instance ids and pids in a `status --json`.
pub fn instances(status: &Value) -> Vec<(String, Option<u32>)> {
    status["instances"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|i| {
                    (
                        i["id"].as_str().unwrap_or_default().to_string(),
                        i["pid"].as_u64().map(|p| p as u32),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The history entry for release `version`.
pub fn release(history: &[Value], version: u64) -> &Value {
    history
        .iter()
        .find(|r| r["version"] == version)
        .unwrap_or_else(|| panic!("no v{version} in history: {history:?}"))
}

/// Puts Debian's static busybox into the image built from `dir`, as its `/bin/sh` (copied before the
/// Dockerfile's `USER` line): what a one-off command (`/bin/sh -c "<cmd>"`) needs in an image.
pub fn add_busybox_shell(dir: &Path) {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox (Debian's busybox-static, which .ci/run installs)");
    std::fs::copy(busybox, dir.join("busybox")).unwrap();
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER "), "{dockerfile}");
    std::fs::write(
        dir.join("Dockerfile"),
        dockerfile.replace("USER ", "COPY busybox /bin/sh\nUSER "),
    )
    .unwrap();
}

/// A release phase that shows where it ran: only the demo image has `/slipway-demo-app`, and the
/// secret `API_TOKEN` is read from its file. Prints `migrating <phase> of <release> in <instance>
/// with a token of <length> characters` (busybox's shell builtins only).
pub const PHASE_IN_THE_IMAGE: &str = "test -x /slipway-demo-app && read -r token < $API_TOKEN_FILE; \
    test ${#token} -gt 0 && echo migrating $SLIPWAY_PHASE of $SLIPWAY_RELEASE in $SLIPWAY_INSTANCE \
    with a token of ${#token} characters";

/// `[release]` with `PHASE_IN_THE_IMAGE`, and a cron job `tick` that never runs by itself.
pub fn one_offs_in_the_image() -> String {
    format!(
        "[release]\ncmd = \"{PHASE_IN_THE_IMAGE}\"\n\n[cron.tick]\nschedule = \"0 0 1 1 *\"\n\
         cmd = \"echo tick $SLIPWAY_CRON_RUN of $SLIPWAY_RELEASE; test -x /slipway-demo-app\"\n"
    )
}

/// The demo app linked statically, so it runs on `scratch` (the Docker and Kubernetes tests' images).
/// Built once per test binary, for the host triple only (so `+crt-static` never reaches proc-macros), in
/// its own target dir.
pub fn static_demo_app() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target_dir = workspace.join("target/static");
        let triple = "x86_64-unknown-linux-gnu";
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "-p", "slipway-demo-app", "--target", triple])
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("cannot run cargo to build the static demo app");
        assert!(status.success(), "building the static demo app failed");
        target_dir.join(triple).join("debug/slipway-demo-app")
    })
}
