//! Capacity that follows load, through the real binary and proxy: instances grow under a step of load
//! and shrink after it without failing a request or flapping; an idle app scales to zero and its next
//! request is held (not refused) while an instance starts; a health check does not wake it; workers
//! keep running meanwhile.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{Conf, Load, World, http, wait_for, wait_until};

const DEADLINE: Duration = Duration::from_secs(90);

/// The demo app's config with `formation` instead of its fixed `replicas = 2`.
fn scaled(conf: &Conf, formation: &str) -> String {
    let text = conf.render();
    assert!(text.contains("replicas = 2\n"), "{text}");
    text.replace("replicas = 2\n", &format!("{formation}\n"))
}

fn serving_web(status: &Value) -> usize {
    status["instances"].as_array().map_or(0, |l| {
        l.iter()
            .filter(|i| i["process"] == "web" && i["serving"] == true)
            .count()
    })
}

fn web_instances(status: &Value) -> usize {
    status["instances"]
        .as_array()
        .map_or(0, |l| l.iter().filter(|i| i["process"] == "web").count())
}

#[test]
fn a_step_of_load_scales_up_then_down_without_failures_or_flapping() {
    let world = World::new();
    // Each request takes 40 ms: one client keeps about one request in flight.
    let conf = Conf::demo("v1").env("DEMO_LATENCY_MS", "40");
    world.write_raw(&scaled(
        &conf,
        "replicas = { min = 1, max = 4 }\nautoscale = { concurrency = 2, window = \"4s\" }",
    ));
    world.slipway(&["deploy"]).ok();
    let low = Load::start(world.daemon.proxy, 1, "/");
    low.wait_for_more(50);
    let status = world.status();
    assert_eq!(status["scaling"]["replicas"], 1, "{status}");

    // Low → high: eight clients keep about eight requests in flight, four instances' worth.
    let high = Load::start(world.daemon.proxy, 7, "/");
    let up = wait_for(DEADLINE, "four web instances serving", || {
        let s = world.status();
        (serving_web(&s) == 4).then_some(s)
    });
    assert_eq!(up["scaling"]["replicas"], 4, "{up}");
    high.wait_for_more(200);

    // High → low: after the window, back to one, the others drained first.
    let high = high.finish();
    let down = wait_for(DEADLINE, "back to one web instance", || {
        let s = world.status();
        (web_instances(&s) == 1 && serving_web(&s) == 1).then_some(s)
    });
    low.wait_for_more(50);
    let low = low.finish();
    high.assert_no_failures();
    low.assert_no_failures();
    // Up (at most in two steps) and down once: no flapping.
    let changes = down["scaling"]["changes"].as_u64().expect("changes");
    assert!((2..=3).contains(&changes), "{changes} changes: {down}");
    let last = down["scaling"]["last_change"].as_str().unwrap_or_default();
    assert!(last.contains("to 1 instances"), "{last}");
}

#[test]
fn an_idle_app_scales_to_zero_and_its_next_request_is_held_until_it_starts() {
    let world = World::new();
    let conf = Conf::demo("v1")
        .env("DEMO_STARTUP_DELAY_MS", "300")
        .tail("[processes.worker]\ncmd = \"exec sleep 3600\"\n");
    world.write_raw(&scaled(
        &conf,
        "replicas = { min = 0, max = 1 }\nidle_after = \"2s\"",
    ));
    world.slipway(&["deploy"]).ok();
    let worker = |s: &Value| -> Vec<String> {
        s["instances"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|i| i["process"] == "worker")
                    .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = world.status();
    let workers = worker(&before);
    assert_eq!(workers.len(), 1, "{before}");

    let asleep = wait_for(DEADLINE, "no web instance left", || {
        let s = world.status();
        (web_instances(&s) == 0).then_some(s)
    });
    assert_eq!(asleep["scaling"]["replicas"], 0, "{asleep}");
    assert_eq!(worker(&asleep), workers, "the worker keeps running");
    let text = world.slipway(&["status"]).ok().stdout;
    assert!(text.contains("scaled to zero"), "{text}");

    // A health check (the readiness path) is answered without waking the app.
    let changes = asleep["scaling"]["changes"].as_u64();
    let health = http::get(world.daemon.proxy, "/ready", &[]).expect("GET /ready");
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(health.body.contains("scaled to zero"), "{}", health.body);
    let still = world.status();
    assert_eq!(web_instances(&still), 0, "{still}");
    assert_eq!(still["scaling"]["changes"].as_u64(), changes);

    // The next real request waits for an instance and is answered.
    let asked = Instant::now();
    let answer = http::get(world.daemon.proxy, "/", &[]).expect("GET / after idle");
    let took = asked.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(http::version_of(&answer), "v1");
    let awake = wait_for(DEADLINE, "the cold start reported", || {
        let s = world.status();
        s["scaling"]["cold_starts"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
            .then_some(s)
    });
    let cold = &awake["scaling"]["cold_starts"][0];
    assert_eq!(cold["release"], 1, "{awake}");
    let millis = cold["millis"].as_u64().expect("millis");
    // The app's own start (300 ms) is part of it, and the client waited at least as long.
    assert!(millis >= 300, "{awake}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    eprintln!("cold start: {millis} ms reported, {took:?} seen by the client");
    assert_eq!(worker(&awake), workers, "the worker was untouched");
}

#[test]
fn a_request_held_longer_than_wake_timeout_gets_503_with_retry_after() {
    let world = World::new();
    // The app takes 3 s to start; a request waits for it at most 1 s.
    let conf = Conf::demo("v1").env("DEMO_STARTUP_DELAY_MS", "3000");
    world.write_raw(&scaled(
        &conf,
        "replicas = { min = 0, max = 1 }\nidle_after = \"1s\"\nwake_timeout = \"1s\"",
    ));
    world.slipway(&["deploy"]).ok();
    wait_until(DEADLINE, "no web instance left", || {
        web_instances(&world.status()) == 0
    });
    let late = http::get(world.daemon.proxy, "/", &[]).expect("GET / while starting");
    assert_eq!(late.status, 503, "{}", late.body);
    assert_eq!(late.header("retry-after"), Some("5"), "{:?}", late.headers);
    assert!(late.body.contains("scaled to zero"), "{}", late.body);
    // The instance it woke still comes up, and serves the next request.
    wait_until(DEADLINE, "the woken instance serving", || {
        serving_web(&world.status()) == 1
    });
    let answer = http::get(world.daemon.proxy, "/", &[]).expect("GET / once started");
    assert_eq!(http::version_of(&answer), "v1", "{}", answer.body);
}
