//! The 12-factor process model through the real binary: a Procfile app (web, worker, clock, release
//! phase), a failing release phase, the migration lock, `scale` and `config set` under load, cron jobs,
//! stop signals, filtered logs, and the daemon's own JSON log lines.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Conf, Load, World, bin, wait_for, wait_until};

const LONG: Duration = Duration::from_secs(90);

/// A Procfile app: the demo app as `web` (it leaves a marker when it starts), a worker and a clock that
/// stop on SIGINT, and a release phase that checks no instance of its release started before it.
fn procfile_app(world: &World, version: &str, release_cmd: &str) {
    let markers = world.root().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let m = markers.display();
    std::fs::write(
        world.app_dir.join("Procfile"),
        format!(
            "web: touch {m}/started-$SLIPWAY_RELEASE; exec '{bin}' demo-app\n\
             worker: trap 'echo worker got INT; exit 0' INT; echo worker up; while :; do sleep 0.2; done\n\
             clock: trap 'exit 0' INT TERM; while :; do sleep 0.2; done\n\
             release: {release_cmd}\n",
            bin = bin()
        ),
    )
    .unwrap();
    world.write_raw(&format!(
        "app = \"shop\"\n\n[env]\nDEMO_VERSION = \"{version}\"\nMARKERS = \"{m}\"\n\n\
         [processes.web]\nreplicas = 2\nreadiness = {{ http = \"/ready\", period = \"200ms\" }}\n\
         drain_timeout = \"10s\"\nstream_drain_timeout = \"10s\"\n\n\
         [processes.worker]\nstop_signal = \"SIGINT\"\ngrace = \"5s\"\n\n\
         [processes.clock]\nstop_signal = \"INT\"\ngrace = \"5s\"\n\n\
         [deploy]\nstrategy = \"blue-green\"\nprogress_deadline = \"60s\"\nscale_down_delay = \"1s\"\n"
    ));
}

fn instances(status: &Value, process: &str) -> Vec<Value> {
    status["instances"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|i| i["process"] == process)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_procfile_app_runs_its_types_after_its_release_phase() {
    let world = World::new();
    // Fails if any instance of this release started before the release phase ran.
    let release =
        "test ! -e $MARKERS/started-$SLIPWAY_RELEASE && echo migrating for $SLIPWAY_RELEASE";
    procfile_app(&world, "v1", release);
    let run = world.slipway(&["deploy"]).ok();
    assert!(
        run.stdout.contains(&format!("`{release}` succeeded")),
        "the release phase is reported: {run}"
    );
    assert_eq!(world.answer(), "v1");
    let status = wait_for(LONG, "web=2, worker=1, clock=1 ready", || {
        let s = world.status();
        let ready = |p: &str| {
            instances(&s, p)
                .iter()
                .filter(|i| i["ready"] == true)
                .count()
        };
        (ready("web") == 2 && ready("worker") == 1 && ready("clock") == 1).then_some(s)
    });
    assert_eq!(status["stable"]["version"], 1);

    let logs = world.slipway(&["logs", "--process", "release"]).ok();
    assert!(logs.stdout.contains("migrating for v1"), "{logs}");
    assert!(
        logs.stdout.contains("shop-v1-release"),
        "lines carry app and release: {logs}"
    );
    let worker_logs = world.slipway(&["logs", "--process", "worker"]).ok();
    assert!(worker_logs.stdout.contains("worker up"), "{worker_logs}");
    assert!(!worker_logs.stdout.contains("migrating"), "{worker_logs}");
    let future = world
        .slipway(&["logs", "--since", "2099-01-01T00:00:00Z"])
        .ok();
    assert!(
        future.stdout.trim().is_empty(),
        "nothing is newer than 2099: {future}"
    );

    // Scaling the worker to 0 stops it with its own stop signal.
    world.slipway(&["scale", "worker=0"]).ok();
    wait_until(LONG, "the worker stopped on SIGINT", || {
        world
            .slipway(&["logs", "--process", "worker"])
            .stdout
            .contains("worker got INT")
    });
}

/// v2 is recorded failed (its reason saying `why`), none of its instances ever ran, and v1 is stable.
fn v2_failed_before_starting(world: &World, why: &str) {
    let status = world.status();
    assert_eq!(status["stable"]["version"], 1);
    let v2: Vec<&Value> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["release"] != 1)
        .collect();
    assert!(v2.is_empty(), "nothing of v2 started: {v2:?}");
    let history = world.history();
    assert_eq!(history[0]["version"], 2);
    assert_eq!(history[0]["status"], "failed");
    assert!(
        history[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(why)),
        "{:?}",
        history[0]
    );
}

#[test]
fn a_failing_release_phase_leaves_the_old_release_serving() {
    let world = World::new();
    procfile_app(&world, "v1", "echo fine");
    world.slipway(&["deploy"]).ok();
    let load = Load::start(world.daemon.proxy, 2, "/");
    load.wait_for_more(50);

    procfile_app(
        &world,
        "v2",
        "echo 'ERROR: relation users does not exist'; exit 3",
    );
    let run = world.slipway(&["deploy"]).failed();
    assert!(run.stderr.contains("exited with status 3"), "{run}");
    assert!(
        run.stderr.contains("ERROR: relation users does not exist"),
        "the phase's output is shown: {run}"
    );
    load.wait_for_more(50);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(world.answer(), "v1");

    v2_failed_before_starting(&world, "release phase");
    assert!(!world.root().join("markers/started-v2").exists());
    let logs = world.slipway(&["logs", "--release", "v2"]).ok();
    assert!(
        logs.stdout.contains("relation users does not exist"),
        "{logs}"
    );
}

#[test]
fn release_phases_take_turns_on_the_migration_lock() {
    let world = World::new();
    procfile_app(&world, "v1", "echo quick");
    world.slipway(&["deploy"]).ok();

    // Another process (here `flock`, as a second daemon or a manual migration would) holds the lock.
    let lock = world.daemon.state.join("locks/shop.migration.lock");
    // --no-fork: the process that holds the lock is the one killed below.
    let mut holder = Command::new("flock")
        .arg("--no-fork")
        .arg(&lock)
        .args(["sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .expect("flock");
    wait_until(LONG, "flock holds the lock", || {
        Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .is_ok_and(|s| !s.success())
    });
    procfile_app(&world, "v2", "echo migrating v2");
    let cmd = world.command(&["deploy"]);
    let deploy = std::thread::spawn(move || support::run_command(cmd, Duration::from_secs(180)));
    wait_until(LONG, "the deploy waits for the migration lock", || {
        world
            .daemon
            .log_text()
            .contains("waiting for the migration lock, held by")
    });
    // Meanwhile a second deploy is refused, naming the one in progress.
    let second = world.slipway(&["deploy"]).failed();
    assert!(
        second
            .stderr
            .contains("another rollout of shop is in progress"),
        "{second}"
    );
    assert!(
        !world.root().join("markers/started-v2").exists(),
        "v2 waits"
    );

    holder.kill().expect("stop flock");
    let _ = holder.wait();
    let first = deploy.join().expect("deploy thread");
    assert!(first.success(), "{first}");
    assert_eq!(world.answer(), "v2");
}

#[test]
fn scale_and_config_set_change_nothing_users_can_see_but_what_was_asked() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let before = world.status();
    let web_ids: Vec<String> = instances(&before, "web")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let load = Load::start(world.daemon.proxy, 2, "/");
    load.wait_for_more(50);

    // Scale: the two running instances are kept, one more starts.
    let run = world.slipway(&["scale", "web=3"]).ok();
    assert!(run.stdout.contains("running web=3"), "{run}");
    let scaled = world.status();
    assert_eq!(scaled["stable"]["version"], 2);
    let ids: Vec<String> = instances(&scaled, "web")
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        web_ids.iter().all(|id| ids.contains(id)),
        "kept {web_ids:?} in {ids:?}"
    );

    // Config set: a new release with the new value, rolled out blue-green.
    let mark = load.mark();
    world
        .slipway(&["config", "set", "DEMO_VERSION=v1-configured", "COLOR=teal"])
        .ok();
    assert_eq!(world.answer(), "v1-configured");
    load.wait_for_more(50);

    // A redeploy keeps both the formation and the config var.
    let redeploy = world.deploy_ok(&Conf::demo("v1"));
    assert!(redeploy.stderr.contains("keeping 3"), "{redeploy}");
    assert_eq!(world.answer(), "v1-configured");
    let settled = world.settled();
    assert_eq!(
        instances(&settled, "web")
            .iter()
            .filter(|i| i["release"] == settled["stable"]["version"])
            .count(),
        3
    );

    let config = world.slipway(&["config", "--json"]).ok().json();
    let origin = |key: &str| {
        config["vars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key)
            .map(|v| v["origin"].as_str().unwrap_or("").to_string())
    };
    assert!(origin("COLOR").is_some_and(|o| o.starts_with("config set")));
    assert_eq!(
        origin("DEMO_VERSION")
            .as_deref()
            .map(|o| o.starts_with("config set")),
        Some(true)
    );

    // Unset brings back the file's value.
    world.slipway(&["config", "unset", "DEMO_VERSION"]).ok();
    assert_eq!(world.answer(), "v1");
    load.wait_for_more(50);
    let tally = load.finish();
    tally.assert_no_failures();
    let seen = tally.versions(mark..);
    assert!(seen.contains_key("v1-configured"), "{seen:?}");

    let refused = world.slipway(&["config", "unset", "DEMO_VERSION"]).failed();
    assert!(
        refused.stderr.contains("comes from [env] in slipway.toml"),
        "{refused}"
    );
    let bad = world.slipway(&["scale", "web=0"]).failed();
    assert!(bad.stderr.contains("nothing to serve"), "{bad}");
}

#[test]
fn cron_jobs_run_on_schedule_and_follow_their_concurrency_policy() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").tail(
        "[cron.tick]\nschedule = \"* * * * *\"\ncmd = \"echo tick from $SLIPWAY_RELEASE\"\n\n\
         [cron.slow]\nschedule = \"0 0 1 1 *\"\ncmd = \"echo slow started; sleep 600\"\nconcurrency = \"forbid\"\n\n\
         [cron.swap]\nschedule = \"0 0 1 1 *\"\ncmd = \"echo swap $SLIPWAY_CRON_RUN; sleep 600\"\nconcurrency = \"replace\"\nhistory = 5\n",
    ));
    // A manual run prints its output and exit status.
    let run = world.slipway(&["cron", "run", "tick"]).ok();
    assert!(run.stdout.contains("tick from v1"), "{run}");

    // forbid: a second run while the first goes is skipped, and recorded as such.
    world.slipway(&["cron", "run", "slow", "--detach"]).ok();
    let skipped = world.slipway(&["cron", "run", "slow"]);
    assert_eq!(skipped.code, Some(3), "{skipped}");
    assert!(
        skipped.stderr.contains("concurrency = \"forbid\""),
        "{skipped}"
    );

    // replace: the second run stops the first.
    world.slipway(&["cron", "run", "swap", "--detach"]).ok();
    world.slipway(&["cron", "run", "swap", "--detach"]).ok();
    let list = wait_for(LONG, "the first swap run replaced", || {
        let list = world.slipway(&["cron", "list", "--json"]).ok().json();
        let swap = job(&list, "swap");
        let runs = swap["runs"].as_array()?.clone();
        (runs.len() == 2
            && runs[1]["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("replaced")))
        .then_some(list)
    });
    let slow = job(&list, "slow");
    assert!(
        slow["runs"].as_array().unwrap().iter().any(|r| r["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("skipped"))),
        "{slow}"
    );

    // The schedule: `* * * * *` fires within a minute (plus the scheduler's second).
    wait_until(Duration::from_secs(75), "a scheduled tick", || {
        let list = world.slipway(&["cron", "list", "--json"]).ok().json();
        job(&list, "tick")["runs"].as_array().is_some_and(|runs| {
            runs.iter()
                .any(|r| r["trigger"] == "schedule" && r["outcome"] == "succeeded")
        })
    });
    let text = world.slipway(&["cron", "list"]).ok();
    assert!(
        text.stdout.contains("tick") && text.stdout.contains("* * * * *"),
        "{text}"
    );
}

fn job(list: &Value, name: &str) -> Value {
    list["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

#[test]
fn destructive_migrations_warn_and_strict_refuses() {
    let world = World::new();
    let migrations = world.app_dir.join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        migrations.join("001_users.sql"),
        "CREATE TABLE users (id int, email text);\n",
    )
    .unwrap();
    let conf = Conf::demo("v1").tail("[release]\ncmd = \"echo migrate\"\n");
    world.deploy_ok(&conf);

    std::fs::write(
        migrations.join("002_contract.sql"),
        "-- contract\nALTER TABLE users\n  DROP COLUMN email;\n",
    )
    .unwrap();
    world.write(&conf.clone().env("X", "2"));
    let strict = world.slipway(&["deploy", "--strict"]).failed();
    assert!(
        strict
            .stderr
            .contains("migrations/002_contract.sql:2: DROP COLUMN"),
        "{strict}"
    );
    assert_eq!(world.answer(), "v1");

    let relaxed = world.slipway(&["deploy"]).ok();
    assert!(
        relaxed
            .stderr
            .contains("warning: migrations/002_contract.sql:2: DROP COLUMN"),
        "{relaxed}"
    );
    // The old migration was not flagged: the stable release had it already.
    assert!(!relaxed.stderr.contains("001_users.sql"), "{relaxed}");

    // The rollback has no down migration: it says so.
    let back = world.slipway(&["rollback"]).ok();
    assert!(back.stderr.contains("no [release] rollback_cmd"), "{back}");
}

#[test]
fn the_daemon_logs_json_lines() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let log = world.daemon.log_text();
    let events: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(events.iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("serving on"))
    }));
    assert!(
        events
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
    assert!(
        events
            .iter()
            .any(|e| e["app"] == "shop" && e["kind"] == "rollout_started"),
        "events carry their fields"
    );
}

/// Old release vs new schema: v2's release phase migrates the "schema" (a file v1 cannot live with), so
/// v1, still serving, starts failing. The watch after the phase sees it, runs v2's `rollback_cmd`, and the
/// deploy fails saying so plainly: v2 never got a request, and v1 serves again.
#[test]
fn a_release_phase_that_breaks_the_serving_release_stops_the_rollout() {
    let world = World::new();
    let schema = world.root().join("schema-v2");
    let schema = schema.to_str().unwrap();
    world.deploy_ok(&Conf::demo("v1").env("DEMO_BROKEN_BY", schema));
    let load = Load::paced(world.daemon.proxy, 2, "/", 50);
    load.wait_for_more(200);

    let v2 = Conf::demo("v2").tail(&format!(
        "[release]\ncmd = \"touch '{schema}'\"\nrollback_cmd = \"rm -f '{schema}'\"\n"
    ));
    world.write(&v2);
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr
            .contains("v2's release phase broke v1, which is still serving"),
        "{run}"
    );
    assert!(
        run.stderr.contains("before v2 got any traffic")
            && run.stderr.contains("rollback_cmd `rm -f"),
        "{run}"
    );
    assert!(
        !std::path::Path::new(schema).exists(),
        "rollback_cmd undid the migration"
    );
    wait_until(Duration::from_secs(30), "v1 serving again", || {
        support::http::get(world.daemon.proxy, "/", &[]).is_ok_and(|a| a.status == 200)
    });
    assert_eq!(world.answer(), "v1");
    v2_failed_before_starting(&world, "release phase broke v1");

    // A harmless migration under the same traffic: the watch passes and the rollout goes on.
    load.wait_for_more(200);
    let v3 = Conf::demo("v3").tail("[release]\ncmd = \"echo migrated\"\n");
    let run = world.deploy_ok(&v3);
    assert!(
        run.stdout
            .contains("v1 still serves well after v3's release phase"),
        "{run}"
    );
    drop(load.finish());
    assert_eq!(world.answer(), "v3");
}
