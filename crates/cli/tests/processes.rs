//! Apps with more than a web process: workers follow their release, and go with it.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{Conf, World, wait_for};

fn workers(status: &Value) -> Vec<(u64, String, bool)> {
    status["instances"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|i| i["process"] == "worker")
                .map(|i| {
                    (
                        i["release"].as_u64().unwrap_or(0),
                        i["state"].as_str().unwrap_or("").to_string(),
                        i["pid"]
                            .as_u64()
                            .is_some_and(|p| support::pid_alive(p as u32)),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const WORKER: &str = "[processes.worker]\ncmd = \"exec sleep 600\"\nreplicas = 2\ngrace = \"2s\"\n";

#[test]
fn workers_are_replaced_with_their_release() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").tail(WORKER));
    let status = wait_for(Duration::from_secs(60), "two v1 workers running", || {
        let s = world.status();
        let w = workers(&s);
        (w.len() == 2 && w.iter().all(|(r, _, alive)| *r == 1 && *alive)).then_some(s)
    });
    let old_pids: Vec<u32> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["process"] == "worker")
        .filter_map(|i| i["pid"].as_u64().map(|p| p as u32))
        .collect();
    world.deploy_ok(&Conf::demo("v2").tail(WORKER));
    wait_for(
        Duration::from_secs(60),
        "two v2 workers and no v1 worker",
        || {
            let w = workers(&world.status());
            (w.len() == 2 && w.iter().all(|(r, _, alive)| *r == 2 && *alive)).then_some(())
        },
    );
    support::wait_until(Duration::from_secs(60), "v1's workers stopped", || {
        old_pids.iter().all(|p| !support::pid_alive(*p))
    });
}

#[test]
fn a_worker_only_app_deploys_and_runs() {
    let world = World::new();
    let conf = "app = \"jobs\"\n\n[processes.worker]\ncmd = \"exec sleep 600\"\nreplicas = 1\ngrace = \"2s\"\n";
    world.write_raw(conf);
    let run = world.slipway(&["deploy"]).ok();
    assert!(run.stdout.contains("v1 is live"), "{run}");
    wait_for(Duration::from_secs(60), "the worker running", || {
        let w = workers(&world.status());
        (w.len() == 1 && w[0].2).then_some(())
    });
}

#[test]
fn a_crash_looping_worker_fails_the_rollout() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").tail(WORKER));
    let bad = "[processes.worker]\ncmd = \"exit 3\"\nreplicas = 1\n";
    world.write(&Conf::demo("v2").tail(bad));
    let run = world.slipway(&["deploy"]);
    let status = world.settled();
    assert!(
        !run.success(),
        "a release whose worker crash-loops went live: {run}\n{status}"
    );
    assert_eq!(status["stable"]["version"], 1, "{status}");
}
