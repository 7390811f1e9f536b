//! `replicas = { min, max }`, `autoscale`, `idle_after`: accepted as documented, refused with the fix.

mod support;

use slipway_config::parse;
use slipway_core::spec::ScaleTarget;
use std::path::Path;
use std::time::Duration;
use support::rejects;

fn web(extra: &str) -> String {
    format!(
        "app = \"a\"\n\n[processes.web]\ncmd = \"./server\"\nreadiness = {{ http = \"/up\" }}\n{extra}\n"
    )
}

#[test]
fn a_range_with_autoscale_and_idle() {
    let text = web(
        "replicas = { min = 0, max = 8 }\nautoscale = { concurrency = 20 }\nidle_after = \"15m\"",
    );
    let spec = parse(&text, Path::new("/a/slipway.toml")).expect("valid");
    let web = &spec.processes["web"];
    let s = web.scaling.as_ref().expect("scaling");
    assert_eq!((s.min, s.max, web.replicas), (0, 8, 1));
    assert_eq!(s.target, Some(ScaleTarget::Concurrency(20)));
    assert_eq!(s.idle_after, Some(Duration::from_secs(900)));
    assert_eq!(s.window, Duration::from_secs(60));
    assert_eq!(s.wake_timeout, Duration::from_secs(30));
    assert_eq!(
        s.idle_paths,
        ["/up"],
        "the readiness path is a health check"
    );
}

#[test]
fn rps_window_wake_and_paths() {
    let text = web(
        "replicas = { min = 2, max = 4 }\nautoscale = { rps = 100, window = \"20s\" }\nwake_timeout = \"5s\"\nidle_paths = [\"/healthz\"]",
    );
    let spec = parse(&text, Path::new("/a/slipway.toml")).expect("valid");
    let web = &spec.processes["web"];
    let s = web.scaling.as_ref().expect("scaling");
    assert_eq!((s.min, s.max, web.replicas), (2, 4, 2));
    assert_eq!(s.target, Some(ScaleTarget::Rps(100)));
    assert_eq!(s.window, Duration::from_secs(20));
    assert_eq!(s.idle_after, None, "min > 0 never idles");
    assert_eq!(s.idle_paths, ["/healthz"]);
}

#[test]
fn scale_to_zero_alone() {
    let text = web("replicas = { min = 0, max = 1 }");
    let spec = parse(&text, Path::new("/a/slipway.toml")).expect("valid");
    let s = spec.processes["web"].scaling.clone().expect("scaling");
    assert_eq!(
        (s.target, s.idle_after),
        (None, Some(Duration::from_secs(900)))
    );
}

#[test]
fn refusals_say_what_to_write() {
    rejects(
        &web("replicas = { min = 1, max = 8 }"),
        6,
        "needs to know what to scale on",
        "autoscale = { concurrency = 20 }",
    );
    rejects(
        &web("replicas = { min = 4, max = 2 }\nautoscale = { rps = 10 }"),
        6,
        "min (4) is more than max (2)",
        "replicas = { min = 2, max = 4 }",
    );
    rejects(
        &web("replicas = 2\nautoscale = { concurrency = 5 }"),
        7,
        "`autoscale` in [processes.web] needs replicas = { min, max }",
        "replicas = { min = 1, max = 8 }",
    );
    rejects(
        &web(
            "replicas = { min = 1, max = 3 }\nautoscale = { concurrency = 5 }\nidle_after = \"5m\"",
        ),
        8,
        "idle_after scales to zero, but replicas has min = 1",
        "set min = 0",
    );
    rejects(
        &web("replicas = { min = 1, max = 3 }\nautoscale = { concurrency = 5, rps = 3 }"),
        7,
        "both concurrency and rps",
        "keep concurrency",
    );
    rejects(
        &web("replicas = { min = 1, max = 3 }\nautoscale = { concurency = 5 }"),
        7,
        "unknown key `concurency`",
        "did you mean `concurrency`?",
    );
    rejects(
        &web("replicas = 0"),
        6,
        "must have at least 1 replica",
        "replicas = { min = 0, max = 4 }",
    );
    rejects(
        "app = \"a\"\n[processes.web]\ncmd = \"x\"\n[processes.worker]\ncmd = \"w\"\nreplicas = { min = 1, max = 3 }\n",
        6,
        "[processes.worker] cannot scale with load",
        "replicas = 2",
    );
    rejects(
        &web("replicas = { min = 0, max = 2 }\nautoscale = { rps = 5 }\nidle_paths = [\"up\"]"),
        8,
        "is not a path",
        "\"/up\"",
    );
}
