//! Tokens with roles, end to end: made on the local socket, printed once, listed without their secret,
//! and enforced on the TCP API for the CLI: a viewer reads, a deployer steers, only an admin manages
//! tokens; a revoked token stops working at once; the old `api-token` file is still an admin token.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::http::get;
use support::*;

fn api_addr(world: &World) -> SocketAddr {
    wait_for(Duration::from_secs(30), "the API address file", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()
            .and_then(|a| a.trim().parse().ok())
    })
}

/// `slipway token create NAME --role ROLE` on the local socket; returns the printed token.
pub fn create_token(world: &World, name: &str, role: &str) -> String {
    let run = world
        .slipway(&["token", "create", name, "--role", role])
        .ok();
    let token = run.stdout.trim().to_string();
    assert!(token.starts_with("slw_") && token.len() == 68, "{run}");
    token
}

#[test]
fn roles_decide_what_a_token_may_do_over_tcp() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = api_addr(&world);
    world.deploy_ok(&Conf::demo("v1"));
    let viewer = create_token(&world, "watcher", "viewer");
    let deployer = create_token(&world, "ci", "deployer");
    assert_ne!(viewer, deployer);
    let again = world
        .slipway(&["token", "create", "ci", "--role", "admin"])
        .failed();
    assert!(again.stderr.contains("exists"), "{again}");

    // Only hashes are kept: neither the list nor the database holds a token.
    let list = world.slipway(&["token", "list", "--json"]).ok();
    assert!(
        list.stdout.contains("watcher") && list.stdout.contains("deployer"),
        "{list}"
    );
    let db = std::fs::read(world.daemon.state.join("slipway.db")).unwrap();
    let wal = std::fs::read(world.daemon.state.join("slipway.db-wal")).unwrap_or_default();
    for t in [&viewer, &deployer] {
        assert!(!list.stdout.contains(t.as_str()));
        let needle = t.as_bytes();
        for file in [&db, &wal] {
            assert!(
                !file.windows(needle.len()).any(|w| w == needle),
                "a token in the database"
            );
        }
    }

    let server = format!("http://{api}");
    let remote = |token: &str, args: &[&str]| {
        let mut cmd = world.command(args);
        cmd.env("SLIPWAY_SERVER", &server)
            .env("SLIPWAY_TOKEN", token)
            .env("SLIPWAY_STATE_DIR", "/nonexistent");
        run_command(cmd, Duration::from_secs(120))
    };
    // A viewer reads everything and changes nothing.
    let run = remote(&viewer, &["status", "--json"]).ok();
    assert_eq!(run.json()["stable"]["version"], 1, "{run}");
    remote(&viewer, &["history"]).ok();
    let run = remote(&viewer, &["scale", "web=3"]).failed();
    assert!(
        run.stderr.contains("viewer") && run.stderr.contains("deployer"),
        "{run}"
    );
    assert!(!run.stderr.contains(&viewer));
    let run = remote(&viewer, &["token", "list"]).failed();
    assert!(run.stderr.contains("admin"), "{run}");

    // A deployer steers (scale is a deployer's action) but cannot manage tokens.
    remote(&deployer, &["scale", "web=3"]).ok();
    let run = remote(&deployer, &["token", "create", "mine", "--role", "admin"]).failed();
    assert!(run.stderr.contains("admin"), "{run}");

    // The legacy file token is an admin: it manages tokens over TCP.
    let legacy = std::fs::read_to_string(world.daemon.state.join("api-token"))
        .unwrap()
        .trim()
        .to_string();
    let run = remote(&legacy, &["token", "create", "ops", "--role", "admin"]).ok();
    let ops = run.stdout.trim().to_string();
    remote(&ops, &["token", "revoke", "ci"]).ok();
    let run = remote(&deployer, &["status"]).failed();
    assert!(
        run.stderr.contains("token"),
        "a revoked token is refused: {run}"
    );
    let bearer = format!("Bearer {deployer}");
    let refused = get(api, "/v1/apps", &[("Authorization", &bearer)]).unwrap();
    assert_eq!(refused.status, 401, "{refused:?}");
    let list = world.slipway(&["token", "list"]).ok();
    assert!(!list.stdout.contains(" ci "), "{list}");
}

#[test]
fn changes_over_tcp_are_recorded_under_the_tokens_name() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    let api = api_addr(&world);
    world.deploy_ok(&Conf::demo("v1"));
    let flags = world.root().join("flags.json");
    std::fs::write(
        &flags,
        r#"{"flags": {"new-checkout": {"variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#,
    )
    .unwrap();
    world
        .slipway(&["flags", "import", flags.to_str().unwrap()])
        .ok();
    let deployer = create_token(&world, "alice", "deployer");
    let remote = |args: &[&str]| {
        let mut cmd = world.command(args);
        cmd.env("SLIPWAY_SERVER", format!("http://{api}"))
            .env("SLIPWAY_TOKEN", &deployer)
            .env("SLIPWAY_STATE_DIR", "/nonexistent")
            .env("USER", "bob");
        run_command(cmd, Duration::from_secs(120))
    };
    remote(&["scale", "web=3"]).ok();
    remote(&["flags", "kill", "new-checkout", "-m", "incident"]).ok();
    // Whether or not there is a rollout to pause, the request is recorded before it runs.
    let _ = remote(&["pause"]);

    // The release's author and the flag's audit name the token, with what the client claimed beside.
    let history = world.history();
    let scaled = release(&history, 2);
    let by = scaled["created_by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("alice (deployer via tcp; client said bob"),
        "{scaled}"
    );
    let audit = world
        .slipway(&["flags", "history", "new-checkout", "--json"])
        .ok()
        .json();
    let kill = &audit[0];
    assert_eq!(kill["action"], "kill", "{audit}");
    assert!(
        kill["who"]
            .as_str()
            .is_some_and(|w| w.starts_with("alice (deployer via tcp; client said bob")),
        "{audit}"
    );
    // Requests that carry no name of their own are recorded in the events under the token's.
    let bearer = format!("Bearer {deployer}");
    let events = get(
        api,
        "/v1/apps/shop/events?limit=1000",
        &[("Authorization", &bearer)],
    )
    .unwrap();
    assert!(
        events
            .body
            .contains("pause requested by alice (deployer via tcp)"),
        "{}",
        events.body
    );

    // On the local socket, the client's own name stands.
    world.slipway(&["flags", "enable", "new-checkout"]).ok();
    let audit = world
        .slipway(&["flags", "history", "new-checkout", "--json"])
        .ok()
        .json();
    let who = audit[0]["who"].as_str().unwrap_or_default();
    assert!(!who.contains("via tcp") && !who.is_empty(), "{audit}");
}
