//! The CLI's own surface: logs, JSON output, the TCP API with its token, and what it says when the
//! daemon is not there.

mod support;

use std::time::Duration;
use support::http::get;
use support::{Conf, World, run_command, wait_for};

#[test]
fn logs_show_the_demo_apps_output_and_json_outputs_parse() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world.deploy_ok(&Conf::demo("v2"));
    let logs = wait_for(
        Duration::from_secs(30),
        "v1's listening line in the logs",
        || {
            let run = world.slipway(&["logs", "--release", "v1"]).ok();
            run.stdout
                .contains("demo v1 listening on 127.0.0.1:")
                .then_some(run)
        },
    );
    assert!(!logs.stdout.contains("demo v2"), "only v1's lines: {logs}");
    let all = world.slipway(&["logs"]).ok();
    assert!(all.stdout.contains("demo v2 listening"), "{all}");

    let status = world.status();
    assert_eq!(status["app"], "shop");
    assert_eq!(status["stable"]["version"], 2);
    assert!(status["instances"].is_array());
    let history = world.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["version"], 2, "newest first");
    for r in &history {
        assert!(
            r["artifact"].as_str().unwrap().starts_with("sha256:"),
            "{r}"
        );
        assert!(r["created_at"].as_i64().unwrap() > 0);
    }
    // The human forms mention the same facts.
    let text = world.slipway(&["status"]).ok();
    assert!(text.stdout.contains("v2 is stable"), "{text}");
    let text = world.slipway(&["history"]).ok();
    assert!(
        text.stdout.contains("v1") && text.stdout.contains("superseded"),
        "{text}"
    );
}

#[test]
fn logs_follow_streams_new_lines() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let mut child = world
        .command(&["logs", "-f", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("demo v2 listening") {
                return true;
            }
        }
        false
    });
    world.deploy_ok(&Conf::demo("v2"));
    // The follower must see v2's start line; then stop it.
    support::wait_until(
        Duration::from_secs(30),
        "logs -f to print v2's line",
        || reader.is_finished(),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        reader.join().unwrap(),
        "logs -f printed v2's listening line"
    );
}

#[test]
fn tcp_api_requires_the_token() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = wait_for(Duration::from_secs(30), "the API address file", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()
            .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
    });
    world.deploy_ok(&Conf::demo("v1"));
    let token = std::fs::read_to_string(world.daemon.state.join("api-token"))
        .expect("the daemon made a token")
        .trim()
        .to_string();
    assert!(token.len() >= 32, "a long random token");

    let refused = get(api, "/v1/apps", &[]).unwrap();
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(!refused.body.contains(&token));
    let wrong = get(api, "/v1/apps", &[("Authorization", "Bearer nope")]).unwrap();
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {token}");
    let ok = get(api, "/v1/apps", &[("Authorization", &bearer)]).unwrap();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("\"shop\""), "{ok:?}");

    let server = format!("http://{api}");
    let remote = |token: Option<&str>| {
        let mut cmd = world.command(&["status", "--json"]);
        cmd.env("SLIPWAY_SERVER", &server)
            // The state dir points nowhere: only the TCP API can answer.
            .env("SLIPWAY_STATE_DIR", "/nonexistent");
        if let Some(t) = token {
            cmd.env("SLIPWAY_TOKEN", t);
        }
        run_command(cmd, Duration::from_secs(60))
    };
    let run = remote(Some(&token)).ok();
    assert_eq!(run.json()["stable"]["version"], 1, "{run}");
    let run = remote(None).failed();
    assert!(run.stderr.contains("token"), "{run}");
    assert!(!run.stderr.contains(&token));
    let run = remote(Some("wrong")).failed();
    assert!(run.stderr.contains("token"), "{run}");
}

#[test]
fn commands_without_a_daemon_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["status", "--app", "shop", "--state-dir"])
        .arg(dir.path().join("state"))
        .env_remove("SLIPWAY_SERVER");
    let run = run_command(cmd, Duration::from_secs(60)).failed();
    assert!(
        run.stderr.contains("cannot reach the slipway daemon"),
        "{run}"
    );
    assert!(run.stderr.contains("slipway serve"), "{run}");
}

#[test]
fn busy_polling_is_refused_beside_more_threads_or_with_a_window_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |args: &[&str]| {
        let mut cmd = std::process::Command::new(support::bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        run_command(cmd, Duration::from_secs(60)).failed()
    };
    // The default is two threads: the flag says what to add.
    let run = serve(&["--busy-poll", "50us"]);
    assert!(
        run.stderr.contains("--busy-poll needs --threads 1"),
        "{run}"
    );
    for window in ["0s", "5ms"] {
        let run = serve(&["--threads", "1", "--busy-poll", window]);
        assert!(run.stderr.contains("from 1us to 1ms"), "{window}: {run}");
    }
    // Nothing was started: no state dir was made.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let world = World::new();
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(&world.daemon.state);
    let run = run_command(cmd, Duration::from_secs(60)).failed();
    assert!(
        run.stderr
            .contains("another slipway daemon is already running"),
        "{run}"
    );
    // The first one is unharmed.
    world.deploy_ok(&Conf::demo("v1"));
    assert_eq!(world.answer(), "v1");
}

#[test]
fn validate_accepts_a_good_config() {
    let world = World::new();
    world.write(&Conf::demo("v1").replicas(3));
    let run = world.slipway(&["validate"]).ok();
    assert!(
        run.stdout.contains("ok") && run.stdout.contains("web×3"),
        "{run}"
    );
    // Validating deploys nothing.
    let run = world.slipway(&["history", "--json"]);
    assert!(
        !run.success() || run.json().as_array().is_some_and(Vec::is_empty),
        "{run}"
    );
}

/// The binary on its own: these commands need no daemon.
fn slipway_alone(args: &[&str]) -> support::Run {
    slipway_alone_in(&std::env::current_dir().expect("cwd"), args)
}

#[test]
fn completions_load_into_bash_and_the_man_page_names_every_command() {
    let bash = slipway_alone(&["completions", "bash"]);
    assert!(bash.success() && bash.stdout.contains("deploy"), "{bash}");
    // The script really loads: bash registers a completion function for `slipway`.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("slipway.bash");
    std::fs::write(&script, &bash.stdout).expect("write the script");
    let mut check = std::process::Command::new("bash");
    check.arg("-c").arg(format!(
        "source '{}' && complete -p slipway",
        script.display()
    ));
    let loaded = run_command(check, Duration::from_secs(30));
    assert!(
        loaded.success() && loaded.stdout.contains("slipway"),
        "{loaded}"
    );
    for shell in ["zsh", "fish"] {
        let out = slipway_alone(&["completions", shell]);
        assert!(
            out.success() && out.stdout.contains("rollback"),
            "{shell}: {out}"
        );
    }
    let refused = slipway_alone(&["completions", "tcsh"]);
    assert!(!refused.success(), "an unknown shell is refused: {refused}");

    let man = slipway_alone(&["man"]);
    assert!(man.success() && man.stdout.contains(".TH slipway"), "{man}");
    for command in [
        "deploy",
        "rollback",
        "promote",
        "status",
        "flags",
        "completions",
    ] {
        assert!(man.stdout.contains(command), "the man page names {command}");
    }
}

#[test]
fn a_release_from_a_git_checkout_records_its_author_and_commit() {
    let world = World::new();
    let git = |args: &[&str]| {
        let mut command = std::process::Command::new("git");
        command.arg("-C").arg(&world.app_dir).args(args);
        let run = run_command(command, Duration::from_secs(30));
        assert!(run.success(), "git {args:?}: {run}");
        run.stdout.trim().to_string()
    };
    world.write(&Conf::demo("v1"));
    git(&["init", "-q"]);
    git(&["config", "user.name", "Ada Lovelace"]);
    git(&["config", "user.email", "ada@example.com"]);
    git(&["add", "slipway.toml"]);
    git(&["commit", "-q", "-m", "v1"]);
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    world.slipway(&["deploy"]).ok();
    // An uncommitted change to a tracked file: the release says so. `--version` still wins.
    world.write(&Conf::demo("v2"));
    world.slipway(&["deploy"]).ok();
    world.slipway(&["deploy", "--version", "2.0.0"]).ok();

    let history = world.history();
    let by_version = |v: u64| {
        history
            .iter()
            .find(|r| r["version"] == v)
            .unwrap_or_else(|| panic!("v{v} in {history:?}"))
    };
    assert_eq!(
        by_version(1)["created_by"],
        "Ada Lovelace <ada@example.com>"
    );
    assert_eq!(by_version(1)["label"], commit.as_str());
    assert_eq!(by_version(2)["label"], format!("{commit}-dirty"));
    assert_eq!(by_version(3)["label"], "2.0.0");
    let table = world.slipway(&["history"]).ok();
    assert!(table.stdout.contains("Ada Lovelace"), "{table}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `slipway ... | head`: the reader goes away first. The CLI ends as other tools do (SIGPIPE), not
    // with a panic message.
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(support::bin())
        .arg("man")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        output.status.success() || output.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        output.status
    );
}

#[test]
fn without_user_in_the_environment_a_release_records_the_accounts_name() {
    // Shells from `su`, cron and CI runners often set no $USER: the account's own name stands in.
    let world = World::new();
    world.write(&Conf::demo("v1"));
    let mut deploy = world.command(&["deploy"]);
    deploy.env_remove("USER").env_remove("LOGNAME");
    run_command(deploy, Duration::from_secs(180)).ok();
    let account = run_command(
        {
            let mut id = std::process::Command::new("id");
            id.arg("-un");
            id
        },
        Duration::from_secs(10),
    );
    let name = account.stdout.trim().to_string();
    let by = world.history()[0]["created_by"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !name.is_empty() && by.starts_with(&name) && !by.starts_with("unknown"),
        "recorded {by:?}, the account is {name:?}"
    );
}

/// A sample app folder: its name, its files (name, text), and a line its slipway.toml must have.
type Sample<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn init_writes_a_config_that_validates_for_each_kind_of_app_and_a_python_app_deploys() {
    let samples: &[Sample] = &[
        (
            "python",
            &[("requirements.txt", ""), ("app.py", "")],
            "cmd = \"python3 app.py\"",
        ),
        (
            "node",
            &[(
                "package.json",
                r#"{"scripts": {"start": "node server.js"}}"#,
            )],
            "cmd = \"npm start\"",
        ),
        (
            "go",
            &[("go.mod", "module example.com/shopd\n")],
            "cmd = \"./shopd\"",
        ),
        (
            "rust",
            &[("Cargo.toml", "[package]\nname = \"shop\"\n")],
            "cmd = \"./target/release/shop\"",
        ),
        (
            "docker",
            &[("Dockerfile", "FROM scratch\nEXPOSE 9000\n")],
            "port = 9000",
        ),
        (
            "procfile",
            &[("Procfile", "web: python3 -m http.server $PORT\n")],
            "[processes.web]",
        ),
    ];
    for (name, files, expect) in samples {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(format!("{name}-app"));
        std::fs::create_dir(&dir).expect("mkdir");
        for (file, text) in *files {
            std::fs::write(dir.join(file), text).expect("write");
        }
        let init = slipway_alone_in(&dir, &["init"]);
        assert!(init.success(), "{name}: {init}");
        let written = std::fs::read_to_string(dir.join("slipway.toml")).expect("slipway.toml");
        assert!(written.contains(expect), "{name}: {written}");
        assert!(
            written.contains(&format!("app = \"{name}-app\"")),
            "{written}"
        );
        let valid = slipway_alone_in(&dir, &["validate"]);
        assert!(valid.success(), "{name}: {valid}");
        let again = slipway_alone_in(&dir, &["init"]);
        assert!(
            !again.success() && again.stderr.contains("exists already"),
            "{again}"
        );
    }

    // A real app: init, then deploy, then it answers through the proxy.
    let world = World::new();
    std::fs::write(
        world.app_dir.join("app.py"),
        "import http.server, os\n\
         class H(http.server.BaseHTTPRequestHandler):\n    \
             def do_GET(self):\n        \
                 self.send_response(200); self.end_headers(); self.wfile.write(b'hello from init')\n\
         http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n",
    )
    .expect("app.py");
    world.slipway(&["init"]).ok();
    world.slipway(&["deploy"]).ok();
    let answer = get(world.daemon.proxy, "/", &[]).expect("GET / through the proxy");
    assert!(answer.body.contains("hello from init"), "{answer:?}");
}

/// A sample app: its kind, its files (name, text), and the commands that build it.
type Buildable<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a [&'a str]]);

/// A Node, a Rust and a Go app, each a plain HTTP server on $PORT: built as `init` says (`npm ci` has
/// nothing to install here; `cargo build --release`; `go build`), then `init` and `deploy` as written, and
/// each answers through the proxy. (The Dockerfile app: `crates/cli/tests/docker.rs`; Python: above.)
#[test]
fn init_configs_deploy_node_rust_and_go_apps() {
    let apps: &[Buildable] = &[
        (
            "node",
            &[
                (
                    "package.json",
                    r#"{"name": "shop", "scripts": {"start": "node server.js"}}"#,
                ),
                (
                    "server.js",
                    "const who = require('greeting');\n\
                     require('http').createServer((q, s) => s.end('hello from ' + who))\n\
                     .listen(Number(process.env.PORT), '127.0.0.1');\n",
                ),
                // The server's dependency: node_modules must be part of the release.
                (
                    "node_modules/greeting/index.js",
                    "module.exports = 'node';\n",
                ),
            ],
            &[],
        ),
        (
            "rust",
            &[
                (
                    "Cargo.toml",
                    "[package]\nname = \"shop\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
                ),
                (
                    "src/main.rs",
                    "use std::io::{Read, Write};\n\
                     fn main() {\n\
                         let port = std::env::var(\"PORT\").unwrap();\n\
                         let listener = std::net::TcpListener::bind(format!(\"127.0.0.1:{port}\")).unwrap();\n\
                         for stream in listener.incoming() {\n\
                             let Ok(mut stream) = stream else { continue };\n\
                             let mut head = [0u8; 4096];\n\
                             let _ = stream.read(&mut head);\n\
                             let _ = stream.write_all(b\"HTTP/1.1 200 OK\\r\\ncontent-length: 15\\r\\nconnection: close\\r\\n\\r\\nhello from rust\");\n\
                         }\n\
                     }\n",
                ),
            ],
            &[&["cargo", "build", "--release", "--offline", "--quiet"]],
        ),
        (
            "go",
            &[
                ("go.mod", "module example.com/shopd\n\ngo 1.19\n"),
                (
                    "main.go",
                    "package main\n\n\
                     import (\n\t\"net/http\"\n\t\"os\"\n)\n\n\
                     func main() {\n\
                     \thttp.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(\"hello from go\")) })\n\
                     \tpanic(http.ListenAndServe(\"127.0.0.1:\"+os.Getenv(\"PORT\"), nil))\n\
                     }\n",
                ),
            ],
            &[&["go", "build", "-o", "shopd", "."]],
        ),
    ];
    for (kind, files, build) in apps {
        let world = World::new();
        for (file, text) in *files {
            let path = world.app_dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        for step in *build {
            let mut command = std::process::Command::new(step[0]);
            command
                .args(&step[1..])
                .current_dir(&world.app_dir)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .env("GOTOOLCHAIN", "local")
                .env("GOFLAGS", "-mod=mod");
            let built = run_command(command, Duration::from_secs(300));
            assert!(built.success(), "{kind}: {step:?}: {built}");
        }
        let init = world.slipway(&["init"]).ok();
        assert!(init.stdout.to_lowercase().contains(kind), "{init}");
        world.slipway(&["deploy"]).ok();
        let answer = get(world.daemon.proxy, "/", &[]).expect("GET / through the proxy");
        assert_eq!(
            answer.body,
            format!("hello from {kind}"),
            "{kind}: {answer:?}"
        );
    }
}

fn slipway_alone_in(dir: &std::path::Path, args: &[&str]) -> support::Run {
    let mut command = std::process::Command::new(support::bin());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("SLIPWAY_CONFIG");
    run_command(command, Duration::from_secs(30))
}

/// `--json` (or `--format json`) is the same on every command: stdout carries one JSON document (`logs`:
/// one object a line) and the lines for people go to stderr, so `slipway deploy --json | jq .release`
/// works while the rollout is still shown.
#[test]
fn every_command_answers_in_json_when_asked() {
    let world = World::new();
    world.write(&Conf::demo("v1"));
    let run = world.slipway(&["deploy", "--json"]).ok();
    let deployed = run.json();
    assert_eq!(deployed["outcome"], "succeeded", "{run}");
    assert_eq!(deployed["release"], 1);
    assert_eq!(deployed["serving"], 1);
    assert!(
        run.stderr.contains("v1 is live"),
        "progress on stderr: {run}"
    );

    world.write(&Conf::demo("v2"));
    let started = world
        .slipway(&["deploy", "--detach", "--format", "json"])
        .ok()
        .json();
    assert_eq!(started["outcome"], "started");
    assert_eq!(started["release"], 2);
    world.settled();

    let back = world.slipway(&["rollback", "--json"]).ok().json();
    assert_eq!(back["outcome"], "succeeded", "{back}");
    assert_eq!(back["serving"], back["release"]);
    assert_eq!(world.answer(), "v1");

    let set = world
        .slipway(&["config", "set", "COLOR=blue", "--json"])
        .ok()
        .json();
    assert_eq!(set["outcome"], "succeeded", "{set}");
    let config = world.slipway(&["config", "--json"]).ok().json();
    assert!(
        config["vars"]
            .as_array()
            .is_some_and(|v| v.iter().any(|var| var["key"] == "COLOR")),
        "{config}"
    );

    let scaled = world.slipway(&["scale", "web=1", "--json"]).ok().json();
    assert_eq!(scaled["running"]["web"], 1, "{scaled}");

    assert!(world.slipway(&["cron", "list", "--json"]).ok().json()["jobs"].is_array());
    assert!(world.slipway(&["flags", "list", "--json"]).ok().json()["flags"].is_array());

    let token = world
        .slipway(&["token", "create", "ci", "--role", "deployer", "--json"])
        .ok()
        .json();
    assert_eq!(token["role"], "deployer");
    assert!(token["token"].as_str().is_some_and(|t| t.len() > 20));
    let tokens = world.slipway(&["token", "list", "--json"]).ok().json();
    assert!(
        tokens
            .as_array()
            .is_some_and(|l| l.iter().any(|t| t["name"] == "ci")),
        "{tokens}"
    );
    // The list never shows a token.
    assert!(
        !tokens
            .to_string()
            .contains(token["token"].as_str().unwrap())
    );

    let logs = wait_for(
        Duration::from_secs(30),
        "v1's listening line in logs --json",
        || {
            let run = world.slipway(&["logs", "--json"]).ok();
            let records: Vec<serde_json::Value> = run
                .stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            records
                .iter()
                .any(|r| {
                    r["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("demo v1 listening"))
                })
                .then_some(records)
        },
    );
    for r in &logs {
        assert!(
            r["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("shop-v")),
            "{r}"
        );
        assert!(
            r["time"].as_str().is_some_and(|t| t.starts_with("20")),
            "{r}"
        );
    }

    let valid = world.slipway(&["validate", "--json"]).ok().json();
    assert_eq!(valid["valid"], true);
    // The file's formation (`scale` changed the running one, not the file).
    assert_eq!(valid["processes"]["web"], 2);
    world.write_raw("app = \"shop\"\n\n[processes.web]\ncmd = \"true\"\nreplicas = \"two\"\n");
    let invalid = world.slipway(&["validate", "--json"]).failed().json();
    assert_eq!(invalid["valid"], false);
    assert_eq!(invalid["problems"][0]["line"], 5, "{invalid}");
}

/// `slipway demo`, the README's first command: the whole story on a fresh machine — deploy, blue-green
/// under load, rollback, and a bad canary its analysis rolls back by itself — with no request failed
/// besides the bad canary's own injected errors.
#[test]
fn the_demo_tells_the_whole_story_without_a_failed_request() {
    let mut cmd = std::process::Command::new(support::bin());
    cmd.arg("demo");
    let run = run_command(cmd, Duration::from_secs(300)).ok();
    for said in [
        "v2 is live",
        "v3 is live",
        "analysis golden failed",
        "v3 keeps serving",
        "errors injected by the bad canary v4, which was rolled back",
        "failed requests (besides the canary's own errors): 0",
    ] {
        let told = format!("{}{}", run.stdout, run.stderr);
        assert!(told.contains(said), "the demo says {said:?}: {run}");
    }
}

/// What is valid but looks unintended is said by `validate` (and `--json`) and by `deploy`, at file:line
/// with the fix — never dropped.
#[test]
fn config_warnings_are_told_by_validate_and_deploy() {
    let world = World::new();
    world.write_raw(
        "app = \"shop\"\n[routing]\nhosts = [\"shop.test\"]\n[processes.worker]\ncmd = \"sleep 600\"\n",
    );
    let valid = world.slipway(&["validate"]).ok();
    let said = "no process is named `web`";
    assert!(
        valid.stderr.contains("warning:") && valid.stderr.contains(said),
        "{valid}"
    );
    assert!(valid.stderr.contains("slipway.toml:2"), "{valid}");
    let json = world.slipway(&["validate", "--json"]).ok().json();
    assert!(
        json["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains(said)),
        "{json}"
    );
    let deployed = world.slipway(&["deploy"]).ok();
    let told = format!("{}{}", deployed.stdout, deployed.stderr);
    assert!(told.contains(said), "{deployed}");
}

/// `slipway deploy` over TCP sends the app folder: the daemon deploys a folder it cannot see. The
/// CLI runs in a mount namespace of its own with the app on a tmpfs there, so the same path is an
/// empty folder for the daemon (`--no-upload` shows it); the upload leaves `[artifact] exclude`'s
/// paths out and is gone from the daemon's disk once deployed. Then what the route refuses.
#[test]
fn a_deploy_over_tcp_sends_the_app_folder_which_the_daemon_cannot_see() {
    if !support::can_unshare_mounts() {
        eprintln!("skipped: a private mount namespace needs root (unshare --mount)");
        return;
    }
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = world.api_addr();
    let deployer = world.create_token("ci", "deployer");
    // No DEMO_VERSION: the demo app answers with version.txt from its folder (the artifact).
    world.write(&Conf::demo("unused").version(None));
    std::fs::write(world.app_dir.join("version.txt"), "sent\n").unwrap();
    std::fs::create_dir(world.app_dir.join("node_modules")).unwrap();
    std::fs::write(
        world.app_dir.join("node_modules/big.js"),
        vec![b'x'; 4 << 20],
    )
    .unwrap();
    let private = world.root().join("private");
    std::fs::create_dir(&private).unwrap();
    let deploy = |extra: &[&str]| {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"mount -t tmpfs tmpfs "$1" && cp -a "$2"/. "$1"/ && cd "$1" && bin="$3" && shift 3 &&
                   exec "$bin" deploy --config "$PWD/slipway.toml" "$@""#,
            )
            .arg("sh")
            .arg(&private)
            .arg(&world.app_dir)
            .arg(support::bin())
            .args(extra)
            .env("SLIPWAY_SERVER", format!("http://{api}"))
            .env("SLIPWAY_TOKEN", &deployer)
            .env("SLIPWAY_STATE_DIR", "/nonexistent")
            .env_remove("SLIPWAY_APP")
            .env("SLIPWAY_LOG", "warn");
        run_command(cmd, Duration::from_secs(180))
    };
    let run = deploy(&["--no-upload"]).failed();
    assert!(
        run.stderr
            .contains(&format!("{}/slipway.toml", private.display())),
        "the daemon looked at the path and found nothing: {run}"
    );
    let run = deploy(&[]).ok();
    assert!(run.stdout.contains("sent the app folder: 2 files"), "{run}");
    assert!(run.stdout.contains("v1 is live"), "{run}");
    assert_eq!(world.answer(), "sent");
    let uploads = world.daemon.state.join("uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0, "used up");

    // What the route refuses, and that it keeps nothing of it.
    let viewer = world.create_token("eyes", "viewer");
    let post = |token: &str, content_type: &str, body: &str| {
        let auth = format!("Bearer {token}");
        support::http::request(
            api,
            "POST",
            "/v1/uploads",
            &[("authorization", &auth), ("content-type", content_type)],
            body,
            true,
        )
        .unwrap()
    };
    assert_eq!(post(&viewer, "application/gzip", "x").status, 403);
    assert_eq!(post(&deployer, "application/json", "{}").status, 415);
    let broken = post(&deployer, "application/gzip", "not a tar.gz");
    assert_eq!(broken.status, 400, "{broken:?}");
    assert!(broken.body.contains("not a tar.gz"), "{broken:?}");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    let auth = format!("Bearer {deployer}");
    let stale = support::http::request(
        api,
        "POST",
        "/v1/deploy",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &format!(
            r#"{{"config": "slipway.toml", "upload": "{}", "who": "t"}}"#,
            "0".repeat(32)
        ),
        true,
    )
    .unwrap();
    assert_eq!(stale.status, 404, "{stale:?}");
    assert!(stale.body.contains("deploy again"), "{stale:?}");
}
