//! Canary releases end to end, through the real `slipway` binary and the bundled demo app: a healthy canary
//! walks its steps under load and goes live; a bad one (the seed's 3 % vs 0.3 % errors, or a latency
//! regression) is rolled back by its analysis with only the app's own errors seen by users; sticky users,
//! header routes and mirroring; the CI pipeline commands (`deploy --canary`, `gate`, `ramp`, `promote --full`,
//! `rollback`); and `/metrics` over the token-guarded TCP API.
//!
//! Everything waits on conditions with deadlines; load loops are paced and bounded.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;
use support::http::{Response, get, version_of};
use support::load::{Load, Outcome, Tally};
use support::*;

/// A canary `[deploy]` table with these steps (TOML inline tables, comma-separated) and extra lines.
fn canary_deploy(steps: &str, extra: &str) -> String {
    format!("strategy = \"canary\"\nprogress_deadline = \"60s\"\nsteps = [ {steps} ]\n{extra}")
}

/// The demo app at `version` as a canary with these steps, `[analysis.*]` tables in `tail`.
fn canary(version: &str, steps: &str, extra: &str, tail: &str) -> Conf {
    Conf::demo(version)
        .deploy(&canary_deploy(steps, extra))
        .tail(tail)
}

const GOLDEN: &str = "[analysis.golden]\nerror_rate = { max = \"1%\", compare = \"stable\" }\n";

/// The rollout's `canary` view in `status --json` (null when no canary runs).
fn canary_view(world: &World) -> Value {
    world.status()["rollout"]["canary"].clone()
}

/// Waits until the running canary's view satisfies `cond`; returns it.
fn wait_canary(world: &World, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    wait_for(Duration::from_secs(90), what, || {
        let c = canary_view(world);
        (!c.is_null() && cond(&c)).then_some(c)
    })
}

/// Asserts that every failed request was the demo app's own injected 500 (no connection errors, no
/// 502/503/504 from the proxy): the switches themselves failed nothing.
fn assert_only_app_errors(tally: &Tally) {
    let by_kind = tally.failures_by_kind();
    for r in tally.failures() {
        let own =
            matches!(&r.result, Err(Outcome::Status(500, body)) if body.contains("injected error"));
        assert!(
            own,
            "a failure not from the app: {:?}; failures by kind: {by_kind:?}; {}",
            r.result,
            tally.summary()
        );
    }
}

/// How many injected 500s each version served, from the failures' bodies ("injected error from v2").
fn app_errors_by_version(tally: &Tally) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in tally.failures() {
        if let Err(Outcome::Status(500, body)) = &r.result
            && let Some(v) = body.trim().strip_prefix("injected error from ")
        {
            *out.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn healthy_canary_walks_every_step_under_load_and_goes_live() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    let load = Load::paced(world.daemon.proxy, 4, "/", 100);
    load.wait_for_more(200);

    world.write(&canary(
        "v2",
        "{ weight = 20 }, { analysis = \"golden\", for = \"3s\" }, { weight = 50 }, { pause = \"1s\" }",
        "",
        GOLDEN,
    ));
    load.mark();
    // Follow the rollout from outside while `deploy` follows it too: every weight it carried is seen.
    let deploy = std::thread::spawn({
        let cmd = world.command(&["deploy"]);
        move || run_command(cmd, Duration::from_secs(180))
    });
    let mut weights = BTreeSet::new();
    let mut steps = BTreeSet::new();
    wait_until(Duration::from_secs(180), "the deploy to finish", || {
        let c = canary_view(&world);
        if let Some(w) = c["effective_weight"].as_u64() {
            weights.insert(w);
            steps.insert(c["step"].as_u64().unwrap_or(0));
        }
        deploy.is_finished()
    });
    let run = deploy.join().expect("deploy thread");
    assert!(run.success(), "the healthy canary goes live: {run}");
    let after = load.mark();
    load.wait_for_more(200);
    let tally = load.finish();

    assert!(
        weights.contains(&20) && weights.contains(&50),
        "the canary carried 20 % then 50 % (seen {weights:?} at steps {steps:?})"
    );
    tally.assert_no_failures();
    let during = tally.versions(1..after);
    assert!(
        during.get("v1").is_some_and(|&n| n > 0) && during.get("v2").is_some_and(|&n| n > 0),
        "both releases answered during the canary: {during:?}"
    );
    assert_eq!(
        tally.versions(after..).keys().collect::<Vec<_>>(),
        ["v2"],
        "only v2 after the promotion: {}",
        tally.summary()
    );
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    assert_eq!(world.answer(), "v2");
}

#[test]
fn bad_canary_is_rolled_back_by_its_analysis_with_only_the_apps_errors_served() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").env("DEMO_ERROR_RATE", "0.003").replicas(2));
    // Several hundred requests a second in all: 6 clients at up to 100 each.
    let load = Load::paced(world.daemon.proxy, 6, "/", 100);
    load.wait_for_more(300);

    world.write(
        &canary(
            "v2",
            "{ weight = 10 }, { analysis = \"golden\", for = \"60s\" }",
            "",
            GOLDEN,
        )
        .env("DEMO_ERROR_RATE", "0.03"),
    );
    load.mark();
    let run = world.slipway(&["deploy"]);
    let after = load.mark();
    let status = world.settled();
    load.wait_for_more(300);
    let tally = load.finish();

    assert!(!run.success(), "the bad canary must not go live: {run}");
    assert_eq!(status["stable"]["version"], 1, "v1 still stable: {status}");
    let reason = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("golden") && reason.contains("error"),
        "the reason names the analysis and its check: {reason:?}"
    );
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(
        output.contains("golden"),
        "deploy's output says which analysis failed: {run}"
    );
    assert_eq!(release(&world.history(), 2)["status"], "failed");
    assert_only_app_errors(&tally);
    let errors = app_errors_by_version(&tally);
    let answers = tally.versions(1..after);
    assert!(
        answers.get("v2").is_some_and(|&n| n > 0),
        "the canary did serve users before its rollback: {answers:?}, errors {errors:?}"
    );
    assert_eq!(
        tally.versions(after..).keys().collect::<Vec<_>>(),
        ["v1"],
        "only v1 after the rollback: {}",
        tally.summary()
    );
    eprintln!(
        "bad canary: {}; injected errors by version {errors:?}",
        tally.summary()
    );
}

#[test]
fn latency_regression_is_caught() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    let load = Load::paced(world.daemon.proxy, 6, "/", 100);
    load.wait_for_more(300);

    world.write(
        &canary(
            "v2",
            "{ weight = 20 }, { analysis = \"fast\", for = \"60s\" }",
            "",
            "[analysis.fast]\nlatency_p95 = { max = \"50ms\" }\n",
        )
        .env("DEMO_LATENCY_MS", "200"),
    );
    let run = world.slipway(&["deploy"]);
    let status = world.settled();
    let tally = load.finish();

    assert!(!run.success(), "the slow canary must not go live: {run}");
    assert_eq!(status["stable"]["version"], 1, "{status}");
    let reason = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("fast") && reason.contains("p95"),
        "the reason names the latency check: {reason:?}"
    );
    tally.assert_no_failures();
    assert_eq!(world.answer(), "v1");
}

/// A client that keeps the cookies it is given, one fresh connection per request.
struct CookieClient {
    cookies: BTreeMap<String, String>,
}

impl CookieClient {
    fn new() -> CookieClient {
        CookieClient {
            cookies: BTreeMap::new(),
        }
    }

    fn get(&mut self, addr: SocketAddr) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let headers: Vec<(&str, &str)> = if cookie.is_empty() {
            Vec::new()
        } else {
            vec![("Cookie", cookie.as_str())]
        };
        let r = get(addr, "/", &headers).expect("GET / through the proxy");
        assert_eq!(r.status, 200, "{r:?}");
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some((name, value)) = v.split(';').next().and_then(|c| c.split_once('='))
            {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        r
    }
}

#[test]
fn sticky_users_stay_on_the_canary_while_its_weight_rises() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    world.write(&canary(
        "v2",
        "{ weight = 10 }, { pause = {} }, { weight = 50 }, { pause = {} }",
        "sticky = \"cookie\"",
        "",
    ));
    world.slipway(&["deploy", "--detach"]).ok();
    wait_canary(&world, "the canary at 10 %, paused", |c| {
        c["effective_weight"] == 10 && c["step"] == 2
    });

    // 100 new users: about 10 land on the canary (none at all has odds of 3 in 100,000).
    let addr = world.daemon.proxy;
    let mut users: Vec<(CookieClient, String)> = (0..100)
        .map(|_| {
            let mut c = CookieClient::new();
            let v = version_of(&c.get(addr));
            (c, v)
        })
        .collect();
    let on_canary = users.iter().filter(|(_, v)| v == "v2").count();
    assert!(
        (1..=40).contains(&on_canary),
        "about 10 of 100 users get the canary at 10 %: {on_canary}"
    );
    assert!(
        users.iter().all(|(c, _)| !c.cookies.is_empty()),
        "every user got the sticky cookie"
    );
    let check = |users: &mut Vec<(CookieClient, String)>, when: &str| {
        for (client, first) in users.iter_mut().filter(|(_, v)| v == "v2") {
            for _ in 0..5 {
                let v = version_of(&client.get(addr));
                assert_eq!(&v, first, "a canary user flapped to {v} {when}");
            }
        }
    };
    check(&mut users, "at 10 %");

    world.slipway(&["promote"]).ok();
    wait_canary(&world, "the canary at 50 %, paused", |c| {
        c["effective_weight"] == 50 && c["step"] == 4
    });
    check(&mut users, "after the weight rose to 50 %");
    // At 50 %, new users do reach the canary in numbers.
    let fresh_on_canary = (0..40)
        .filter(|_| version_of(&CookieClient::new().get(addr)) == "v2")
        .count();
    assert!(
        fresh_on_canary >= 5,
        "new users reach the 50 % canary: {fresh_on_canary}/40"
    );
    world.slipway(&["promote"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
}

#[test]
fn header_route_always_reaches_the_canary() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    world.write(&canary(
        "v2",
        "{ route = { header = { \"x-canary\" = \"1\" } } }, { pause = {} }",
        "",
        "",
    ));
    world.slipway(&["deploy", "--detach"]).ok();
    wait_canary(&world, "the header route, paused", |c| {
        c["routes"] == 1 && c["step"] == 2
    });
    let addr = world.daemon.proxy;
    for i in 0..50 {
        let r = get(addr, "/", &[("X-Canary", "1")]).expect("GET with x-canary");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(version_of(&r), "v2", "request {i} with x-canary: 1");
        let r = get(addr, "/", &[("X-Canary", "0")]).expect("GET with x-canary: 0");
        assert_eq!(version_of(&r), "v1", "request {i} with x-canary: 0");
        let r = get(addr, "/", &[]).expect("GET without the header");
        assert_eq!(version_of(&r), "v1", "request {i} without the header");
    }
    world.slipway(&["abort", "--reason", "route checked"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 1, "{status}");
}

#[test]
fn mirrored_traffic_reaches_the_canary_but_users_only_see_stable() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    world.write(&canary("v2", "{ mirror = 100 }, { pause = {} }", "", ""));
    world.slipway(&["deploy", "--detach"]).ok();
    let view = wait_canary(&world, "the mirror, paused", |c| {
        c["mirror"] == 100 && c["step"] == 2
    });
    assert_eq!(view["effective_weight"], 0, "{view}");
    let status = world.status();
    let canary_ports = ports(&status, 2);
    assert!(!canary_ports.is_empty(), "a canary instance runs: {status}");
    let before = demo_stat(&canary_ports, "root_requests");

    let load = Load::paced(world.daemon.proxy, 2, "/", 100);
    load.wait_for_more(300);
    let tally = load.finish();
    tally.assert_no_failures();
    assert_eq!(
        tally.versions(..).keys().collect::<Vec<_>>(),
        ["v1"],
        "users only ever see the stable release: {}",
        tally.summary()
    );
    wait_until(
        Duration::from_secs(30),
        "copies of the requests to reach the canary",
        || demo_stat(&canary_ports, "root_requests") >= before + 100,
    );
    world.slipway(&["abort", "--reason", "mirror checked"]).ok();
    assert_eq!(world.settled()["stable"]["version"], 1);
}

#[test]
fn status_shows_the_shadow_diff_report() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    world.write(
        &canary("v2", "{ mirror = 100 }, { pause = {} }", "", "").env("DEMO_ERROR_RATE", "0.5"),
    );
    world.slipway(&["deploy", "--detach"]).ok();
    wait_canary(&world, "the mirror, paused", |c| {
        c["mirror"] == 100 && c["step"] == 2
    });
    let load = Load::paced(world.daemon.proxy, 2, "/", 100);
    load.wait_for_more(300);
    drop(load);
    let report = wait_for(Duration::from_secs(30), "a shadow report in status", || {
        let r = world.status()["rollout"].clone();
        let shadow = r
            .as_object()?
            .iter()
            .find(|(k, _)| k.contains("shadow"))?
            .1
            .clone();
        (shadow["compared"].as_u64()? > 0).then_some(shadow)
    });
    assert!(
        report["status_class_mismatches"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "half the canary's answers are 500s: {report}"
    );
}

#[test]
fn ci_pipeline_canary_gate_ramp_promote_rollback() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    let load = Load::paced(world.daemon.proxy, 4, "/", 100);
    load.wait_for_more(200);

    // The pipeline's own steps decide: the config's steps would go further.
    world.write(&canary("v2", "{ weight = 50 }, { weight = 100 }", "", ""));
    let run = world.slipway(&["deploy", "--canary", "10"]).ok();
    let view = canary_view(&world);
    assert_eq!(
        view["weight"], 10,
        "deploy --canary 10 returned at 10 %: {run}\n{view}"
    );
    assert_eq!(view["effective_weight"], 10, "{view}");
    // It holds there.
    let hold = load.mark();
    load.wait_for_more(400);
    let view = canary_view(&world);
    assert_eq!(view["effective_weight"], 10, "still at 10 %: {view}");
    let ramp = load.mark();

    let gate = world.slipway(&["gate", "--error-rate", "1%", "--for", "5s"]);
    assert!(
        matches!(gate.code, Some(0) | Some(3)),
        "a healthy canary's gate passes or is inconclusive, never fails: {gate}"
    );
    world.slipway(&["ramp", "50"]).ok();
    wait_canary(&world, "the canary at 50 %", |c| {
        c["effective_weight"] == 50
    });
    world.slipway(&["promote", "--full"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");
    assert_eq!(world.answer(), "v2");

    // A bad canary: its gate fails.
    world.write(&canary("v3", "{ weight = 50 }", "", "").env("DEMO_ERROR_RATE", "0.3"));
    world.slipway(&["deploy", "--canary", "20"]).ok();
    let gate = world.slipway(&["gate", "--error-rate", "1%", "--for", "30s"]);
    assert_eq!(
        gate.code,
        Some(1),
        "a 30 % error canary fails its gate: {gate}"
    );
    world.slipway(&["abort", "--reason", "gate failed"]).ok();
    let status = world.settled();
    assert_eq!(status["stable"]["version"], 2, "{status}");

    // And rollback to v1 still works after all that.
    world.slipway(&["rollback"]).ok();
    let status = world.settled();
    assert_eq!(world.answer(), "v1", "{status}");
    let tally = load.finish();
    let held = tally.versions(hold..ramp);
    assert!(
        held.get("v2").is_some_and(|&n| n > 0) && held.get("v1").is_some_and(|&n| n > 0),
        "both releases answered while the canary held at 10 %: {held:?}"
    );
    // Only v3's injected errors, nothing from the switches.
    assert_only_app_errors(&tally);
    let errors = app_errors_by_version(&tally);
    assert!(
        errors.keys().all(|v| v == "v3"),
        "only the bad canary erred: {errors:?}"
    );
}

/// The TCP API's address and token of a daemon started with `--api 127.0.0.1:0`.
fn api(world: &World) -> (SocketAddr, String) {
    let addr = wait_for(Duration::from_secs(30), "the API address", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let token = std::fs::read_to_string(world.daemon.state.join("api-token"))
        .expect("the daemon's token")
        .trim()
        .to_string();
    (addr, token)
}

/// One sample's value in a Prometheus text exposition, by its exact series (`name{labels}`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_over_the_tcp_api_count_requests_per_release() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let (api, token) = api(&world);
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    let load = Load::paced(world.daemon.proxy, 2, "/", 100);
    load.wait_for_more(100);
    let tally = load.finish();
    tally.assert_no_failures();

    let denied = get(api, "/metrics", &[]).expect("GET /metrics without a token");
    assert_eq!(denied.status, 401, "{denied:?}");
    let bearer = format!("Bearer {token}");
    let series = "slipway_requests_total{app=\"shop\",release=\"v1\",class=\"2xx\"}";
    let answered = tally.records.len() as f64;
    let text = wait_for(Duration::from_secs(30), "v1's requests counted", || {
        let r = get(api, "/metrics", &[("Authorization", bearer.as_str())]).ok()?;
        assert_eq!(r.status, 200, "{r:?}");
        (sample(&r.body, series)? >= answered).then_some(r.body)
    });
    assert!(
        text.contains("# TYPE slipway_requests_total counter"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "slipway_requests_total{app=\"shop\",release=\"v1\",class=\"5xx\"}"
        ),
        Some(0.0),
        "{text}"
    );
}
