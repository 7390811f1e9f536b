//! SLOs and error budgets end to end, through the real `slipway` binary and the demo app: a release that
//! fails more than `[slo] availability` allows spends the budget, `status` shows the budget and the burn
//! rates, and `slipway deploy` is refused until `--override-slo "reason"` (the reason lands in the history
//! and the events; a rollback is never held); the budget survives a daemon restart; and a canary that
//! would burn the budget at the fast-burn rate is rolled back by the SLO gate, with no analysis template.
//!
//! Everything waits on conditions with deadlines; load loops are paced and bounded.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::load::Load;
use support::*;

/// 99 % over an hour: a demo app failing one request in two spends that in a second.
const SLO: &str = "[slo]\navailability = \"99%\"\nwindow = \"1h\"\n";

/// The app's events, over the token-guarded TCP API.
fn events(world: &World) -> String {
    let token = world.create_token("auditor", "viewer");
    support::http::get(
        world.api_addr(),
        "/v1/apps/shop/events?limit=1000",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .expect("events over TCP")
    .body
}

/// The availability objective in `status --json`, once the app has an `[slo]` counted.
fn availability(status: &Value) -> Option<&Value> {
    status["slo"]["objectives"]
        .as_array()?
        .iter()
        .find(|o| o["sli"] == "availability")
}

#[test]
fn a_spent_budget_holds_deploys_until_overridden_with_a_reason_and_survives_a_restart() {
    let mut world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    world.deploy_ok(&Conf::demo("v1").env("DEMO_ERROR_RATE", "0.5").tail(SLO));
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    // Spent, over enough requests that a 50× burn cannot look like less than the fast pair's 14.4×.
    let spent = wait_for(Duration::from_secs(120), "the budget to be spent", || {
        let s = world.status();
        let counted = availability(&s).and_then(|o| o["requests"].as_u64());
        (!s["slo"]["hold"].is_null() && counted.is_some_and(|n| n >= 200)).then_some(s)
    });
    load.finish();

    let o = availability(&spent).expect("availability in status");
    assert_eq!(o["objective"], "99% of requests succeed", "{spent}");
    assert!(o["budget_left"].as_f64().is_some_and(|l| l <= 0.0), "{o}");
    assert!(o["bad"].as_u64().is_some_and(|b| b > 0), "{o}");
    assert_eq!(spent["slo"]["window_seconds"], 3_600, "{spent}");
    let burns = o["burn_rates"].as_array().expect("burn rates");
    assert_eq!(burns.len(), 4, "the SRE workbook's four pairs: {o}");
    assert_eq!(
        (
            &burns[0]["long_seconds"],
            &burns[0]["short_seconds"],
            &burns[0]["threshold"]
        ),
        (&Value::from(3_600), &Value::from(300), &Value::from(14.4)),
        "{o}"
    );
    // 50 % errors against 1 % allowed: a burn rate near 50 in every window, so the fast pair fires.
    assert!(burns[0]["long"].as_f64().is_some_and(|r| r > 14.4), "{o}");
    assert_eq!(burns[0]["firing"], true, "{o}");
    let text = world.slipway(&["status"]).ok().stdout;
    assert!(
        text.contains("99% of requests succeed: budget left")
            && text.contains("FIRING")
            && text.contains("DEPLOYS HELD"),
        "{text}"
    );

    eprintln!("{text}");
    // The dashboard's app page: the budget, the burn rates, the hold and the budget chart.
    let token = world.create_token("sre", "viewer");
    let session = support::ui::login(world.api_addr(), &token);
    let page = support::http::get(
        world.api_addr(),
        "/ui/apps/shop",
        &[("Cookie", &session.cookie())],
    )
    .expect("the app page");
    assert_eq!(page.status, 200, "{page:?}");
    for shown in [
        "Service level objectives",
        "99% of requests succeed",
        "Deploys are held",
        "1h/5m ≥ 14.4×",
        "firing",
        "Error budget left",
    ] {
        assert!(
            page.body.contains(shown),
            "the page shows {shown:?}: {}",
            page.body
        );
    }

    // For Prometheus and its alert rules: the budget and the burn rates, per window.
    let metrics = support::http::get(
        world.api_addr(),
        "/metrics",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .expect("/metrics")
    .body;
    for line in [
        "slipway_slo_budget_remaining{app=\"shop\",sli=\"availability\"} -",
        "slipway_slo_burn_rate{app=\"shop\",sli=\"availability\",window=\"300s\"}",
        "slipway_slo_burn_rate{app=\"shop\",sli=\"availability\",window=\"3600s\"}",
    ] {
        assert!(metrics.contains(line), "{line:?} in {metrics}");
    }
    assert_eq!(
        metrics.matches("window=\"21600s\"").count(),
        1,
        "6h is two pairs' window, exported once"
    );

    // Held: nothing is recorded.
    world.write(&Conf::demo("v2").tail(SLO));
    let refused = world.slipway(&["deploy"]).failed();
    assert!(
        refused.stderr.contains("error budget is spent")
            && refused.stderr.contains("--override-slo"),
        "{refused}"
    );
    assert_eq!(world.history().len(), 1, "a held deploy records nothing");
    let blank = world.slipway(&["deploy", "--override-slo", " "]).failed();
    assert!(blank.stderr.contains("needs a reason"), "{blank}");

    // Overridden: deployed, and the reason is in the history and the events.
    world
        .slipway(&["deploy", "--override-slo", "the fix for the 500s"])
        .ok();
    let v2 = release(&world.history(), 2).clone();
    assert!(
        v2["message"]
            .as_str()
            .is_some_and(|m| m.contains("SLO override: the fix for the 500s")),
        "{v2}"
    );
    let journal = events(&world);
    for said in [
        "the error budget is spent: 99% of requests succeed over 1h",
        "burn-rate alert firing: availability 1h/5m at 14.4× or more",
    ] {
        assert!(journal.contains(said), "the events say {said:?}: {journal}");
    }
    assert!(
        journal.contains("slo_override")
            && journal.contains("over a spent error budget")
            && journal.contains("the fix for the 500s"),
        "{journal}"
    );
    // A rollback is how a budget is saved: never held.
    world.slipway(&["rollback"]).ok();
    assert_eq!(world.settled()["stable"]["version"], 3);

    // The budget is in the state store: a restarted daemon holds deploys at once, with no new traffic.
    let before = availability(&world.status()).cloned().expect("counted");
    world.daemon.terminate();
    world.daemon.restart();
    let after = wait_for(Duration::from_secs(60), "the budget back", || {
        let s = world.status();
        availability(&s).cloned()
    });
    let count = |o: &Value, k: &str| o[k].as_u64().unwrap_or(0);
    assert!(
        count(&after, "bad") >= count(&before, "bad")
            && count(&after, "requests") >= count(&before, "requests")
            && count(&after, "bad") > 0,
        "before {before}, after {after}"
    );
    let refused = world.slipway(&["deploy"]).failed();
    assert!(
        refused.stderr.contains("error budget is spent"),
        "{refused}"
    );
}

#[test]
fn a_canary_that_would_burn_the_budget_fast_is_rolled_back_by_the_slo_gate() {
    let world = World::new();
    let canary = |version: &str| {
        Conf::demo(version)
            .deploy(
                "strategy = \"canary\"\nprogress_deadline = \"60s\"\n\
                 steps = [ { weight = 20 }, { pause = \"2m\" } ]",
            )
            .tail("[slo]\navailability = \"99.9%\"\n")
    };
    // Nothing is spent: an override is not needed, and says so (its reason is not recorded).
    world.write(&canary("v1"));
    let first = world
        .slipway(&["deploy", "--override-slo", "just in case"])
        .ok();
    assert!(first.stderr.contains("nothing was held"), "{first}");
    assert!(release(&world.history(), 1)["message"].is_null());
    let load = Load::paced(world.daemon.proxy, 4, "/", 50);
    load.wait_for_more(200);

    // 10 % errors: a burn rate of 100 against 99.9 %, far over the fast pair's 14.4.
    world.write(&canary("v2").env("DEMO_ERROR_RATE", "0.1"));
    let run = world.slipway(&["deploy"]);
    let status = world.settled();
    load.finish();

    assert!(!run.success(), "the canary must not go live: {run}");
    eprintln!("{}", run.stdout);
    assert_eq!(status["stable"]["version"], 1, "{status}");
    let reason = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        reason.contains("analysis slo failed")
            && reason.contains("burn the error budget 14.4×")
            && reason.contains("error"),
        "the reason names the SLO gate and its bound: {reason:?}"
    );
    assert_eq!(release(&world.history(), 2)["status"], "failed");
    assert_eq!(world.answer(), "v1");
}
