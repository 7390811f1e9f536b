//! History retention through the real binary: with a tiny policy (`--keep-events 5` and friends,
//! pruned every second), fifty deploys leave the event journal, the finished rollouts and the audit
//! journal bounded, while the history of releases is whole and what the daemon needs stays: the
//! stable release, its rollback target and their rollouts — a rollback still works.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use support::{Conf, DEADLINE, World, wait_until};

const DEPLOYS: u64 = 50;

/// A GET on the TCP API with a token, as JSON.
fn get(api: SocketAddr, token: &str, path: &str) -> Value {
    let answer = support::http::get(api, path, &[("Authorization", &format!("Bearer {token}"))])
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"));
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn count(list: &Value) -> usize {
    list.as_array().map_or(0, Vec::len)
}

#[test]
fn with_a_tiny_policy_history_stays_bounded_over_many_deploys_and_what_is_needed_stays() {
    let world = World::with_daemon_args(&[
        "--api",
        "127.0.0.1:0",
        "--keep-events",
        "5",
        "--keep-rollouts",
        "3",
        "--keep-audit",
        "4",
        "--prune-every",
        "1s",
    ]);
    let api = world.api_addr();
    // Tokens made and revoked are audit, in the daemon's own journal.
    for n in 0..6 {
        world.create_token(&format!("t{n}"), "viewer");
    }
    let admin = world.create_token("root", "admin");
    let cheap = |n: u64| {
        Conf::demo(&format!("v{n}"))
            .replicas(1)
            .deploy("strategy = \"recreate\"\nprogress_deadline = \"60s\"")
    };
    for n in 1..=DEPLOYS {
        world.deploy_ok(&cheap(n));
    }
    world.settled();

    wait_until(DEADLINE, "the event journal pruned to 5", || {
        count(&get(api, &admin, "/v1/apps/shop/events?after=0&limit=1000")) <= 5
    });
    wait_until(DEADLINE, "the daemon's audit journal pruned to 4", || {
        count(&get(
            api,
            &admin,
            "/v1/apps/-daemon/events?after=0&limit=1000",
        )) <= 4
    });
    // The newest event survives: pruning takes the oldest first.
    let events = get(api, &admin, "/v1/apps/shop/events?tail=1");
    assert_eq!(count(&events), 1, "{events}");
    let rollouts = get(api, &admin, "/v1/apps/shop/rollouts");
    let to: Vec<u64> = rollouts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["to"].as_u64())
        .collect();
    assert!(to.len() <= 3, "{rollouts}");
    assert!(
        to.contains(&DEPLOYS) && to.contains(&(DEPLOYS - 1)),
        "the rollouts of the stable release and its rollback target stay: {to:?}"
    );

    // The history of releases is whole.
    let history = world.history();
    assert_eq!(history.len() as u64, DEPLOYS);
    for (i, release) in history.iter().enumerate() {
        let version = DEPLOYS - i as u64;
        assert_eq!(release["version"], version);
        let status = if version == DEPLOYS {
            "active"
        } else {
            "superseded"
        };
        assert_eq!(release["status"], status, "{release}");
    }
    // And the rollback target's bits: a rollback works.
    world.slipway(&["rollback"]).ok();
    assert_eq!(world.answer(), format!("v{}", DEPLOYS - 1));
}
