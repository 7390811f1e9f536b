//! Maintenance mode through the real binary and proxy: requests held while the app is worked on are
//! all answered after `maintenance off`, none lost; with no hold (or after it), the app's page with
//! 503 and Retry-After; previews still reach the app; a restarted daemon keeps the maintenance.

mod support;

use std::time::Duration;
use support::{Conf, World, http, wait_until};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn held_requests_are_all_answered_after_maintenance_off() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    world
        .slipway(&[
            "maintenance",
            "on",
            "--hold",
            "60s",
            "--reason",
            "migrating orders",
        ])
        .ok();
    let status = world.status();
    assert_eq!(status["maintenance"]["hold_seconds"], 60, "{status}");
    assert_eq!(status["maintenance"]["reason"], "migrating orders");

    let proxy = world.daemon.proxy;
    let clients: Vec<_> = (0..5)
        .map(|_| std::thread::spawn(move || http::get(proxy, "/", &[])))
        .collect();
    wait_until(DEADLINE, "five requests held", || {
        world.status()["maintenance"]["held_requests"] == 5
    });
    let text = world.slipway(&["status"]).ok().stdout;
    assert!(text.contains("IN MAINTENANCE"), "{text}");
    assert!(text.contains("5 request(s) held"), "{text}");

    // A preview still reaches the app, so it can be checked before it is opened again.
    let preview = http::get(proxy, "/", &[("X-Slipway-Release", "v1")]).expect("preview");
    assert_eq!(http::version_of(&preview), "v1", "{}", preview.body);

    world.slipway(&["maintenance", "off"]).ok();
    for client in clients {
        let answer = client.join().expect("client").expect("an answer");
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(http::version_of(&answer), "v1");
    }
    assert!(world.status()["maintenance"].is_null());
}

#[test]
fn the_maintenance_page_with_retry_after_and_it_survives_a_restart() {
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let page = world.root().join("maintenance.html");
    std::fs::write(&page, "<h1>Back at noon</h1>").expect("page");
    let page = page.to_string_lossy().to_string();
    world
        .slipway(&[
            "maintenance",
            "on",
            "--hold",
            "0s",
            "--page",
            &page,
            "--retry-after",
            "120s",
        ])
        .ok();
    let answered = |world: &World| {
        let r = http::get(world.daemon.proxy, "/", &[]).expect("GET /");
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.body, "<h1>Back at noon</h1>");
        assert_eq!(r.header("retry-after"), Some("120"));
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{:?}",
            r.headers
        );
    };
    answered(&world);
    world.daemon.terminate();
    world.daemon.restart();
    answered(&world);
    support::wait_until(DEADLINE, "the restarted daemon's instances serving", || {
        world.status()["instances"]
            .as_array()
            .is_some_and(|l| l.iter().filter(|i| i["serving"] == true).count() == 2)
    });
    answered(&world);
    world.slipway(&["maintenance", "off"]).ok();
    let r = http::get(world.daemon.proxy, "/", &[]).expect("GET /");
    assert_eq!(http::version_of(&r), "v1", "{}", r.body);
    // Refused with the reason: an app that does not exist, a hold too long.
    let unknown = world
        .slipway(&["maintenance", "on", "--app", "nope"])
        .failed();
    assert!(unknown.stderr.contains("no app nope"), "{unknown}");
    let long = world
        .slipway(&["maintenance", "on", "--hold", "2h"])
        .failed();
    assert!(long.stderr.contains("longer than the 3600s"), "{long}");
}
