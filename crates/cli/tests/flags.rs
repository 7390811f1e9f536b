//! Feature flags end to end, through the real `slipway` binary and a real daemon serving OFREP on its
//! TCP API: the official OpenFeature OFREP provider (PyPI) evaluating every type, the protocol's ETag,
//! errors and auth, the audit log and revert, kill, import/export, stale flags, flags.json on deploy,
//! and a ramp that reverts itself when the app's error rate regresses.

#[path = "flags_support/ofrep_http.rs"]
mod ofrep_http;
mod support;

use ofrep_http::{Events, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Conf, DEADLINE, Load, World, wait_for};

const FLAGS: &str = r#"{
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"$ref": "staff"}, "on"]}
    },
    "color": {"variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"},
    "limit": {"variants": {"low": 10, "high": 100}, "defaultVariant": "low"},
    "ratio": {"variants": {"half": 0.5, "more": 1.5}, "defaultVariant": "more"},
    "config": {"variants": {"v1": {"retries": 3, "mode": "safe"}}, "defaultVariant": "v1",
               "metadata": {"owner": "payments"}},
    "broken": {"variants": {"a": true}, "defaultVariant": "a", "targeting": {"no-such-op": [1]}}
  },
  "$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
  "metadata": {"flagSetId": "shop"}
}"#;

/// A daemon with the TCP API on, and the app's flags imported through the CLI.
fn world_with_flags() -> (World, SocketAddr) {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    world.write(&Conf::demo("v1"));
    let api = api_addr(&world);
    let file = world.root().join("flags.json");
    std::fs::write(&file, FLAGS).unwrap();
    world
        .slipway(&["flags", "import", file.to_str().unwrap()])
        .ok();
    (world, api)
}

fn api_addr(world: &World) -> SocketAddr {
    wait_for(DEADLINE, "the daemon's api.addr", || {
        std::fs::read_to_string(world.daemon.state.join("api.addr"))
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

fn create_key(world: &World, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["flags", "key", "create", name];
    args.extend_from_slice(extra);
    let run = world.slipway(&args).ok();
    let key = run.stdout.trim().to_string();
    assert!(key.starts_with("sfk_"), "{run}");
    key
}

fn evaluate(api: SocketAddr, key: &str, flag: &str, body: &str) -> ofrep_http::Answer {
    post(
        api,
        &format!("/ofrep/v1/evaluate/flags/{flag}"),
        &[("X-API-Key", key)],
        body,
    )
}

#[test]
fn the_openfeature_ofrep_provider_evaluates_every_type() {
    let (world, api) = world_with_flags();
    let key = create_key(&world, "python", &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flags_support/ofrep_client.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(format!("http://{api}")).arg(&key);
    let run = support::run_command(cmd, Duration::from_secs(120));
    assert!(
        run.success(),
        "the OFREP client failed (install: pip install openfeature-sdk openfeature-provider-ofrep): {run}"
    );
    let got = run.json();
    let expect = |name: &str, value: Value, variant: Value, reason: &str| {
        let r = &got[name];
        assert_eq!(
            (
                &r["value"],
                &r["variant"],
                r["reason"].as_str(),
                &r["error"]
            ),
            (&value, &variant, Some(reason), &Value::Null),
            "{name}: {r}"
        );
    };
    expect("bool-staff", json!(true), json!("on"), "TARGETING_MATCH");
    expect("bool-anyone", json!(false), json!("off"), "DEFAULT");
    expect("string", json!("red"), json!("red"), "STATIC");
    expect("integer", json!(10), json!("low"), "STATIC");
    expect("float", json!(1.5), json!("more"), "STATIC");
    expect(
        "object",
        json!({"retries": 3, "mode": "safe"}),
        json!("v1"),
        "STATIC",
    );
    assert_eq!(got["missing"]["value"], json!(true), "{got}");
    assert_eq!(got["missing"]["error"], json!("FLAG_NOT_FOUND"), "{got}");
}

#[test]
fn ofrep_speaks_etags_errors_auth_and_events() {
    let (world, api) = world_with_flags();
    let key = create_key(&world, "web", &[]);
    let auth = [("Authorization", format!("Bearer {key}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let context = r#"{"context": {"targetingKey": "user-7"}}"#;

    // Bulk: every flag, an ETag, and where to listen for changes.
    let bulk = post(api, "/ofrep/v1/evaluate/flags", &auth, context);
    assert_eq!(bulk.status, 200, "{bulk:?}");
    let etag = bulk.header("etag").expect("an ETag").to_string();
    let answer = bulk.json();
    assert_eq!(answer["flags"].as_array().unwrap().len(), 6, "{answer}");
    let broken = answer["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "broken")
        .unwrap();
    assert_eq!(broken["errorCode"], "PARSE_ERROR");
    assert_eq!(answer["eventStreams"][0]["type"], "sse");
    let config = answer["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "config")
        .unwrap();
    assert_eq!(config["metadata"]["owner"], "payments");
    assert_eq!(config["metadata"]["flagSetId"], "shop");

    // Same flags, same context: 304. Another context: 200.
    let mut conditional = auth.clone();
    conditional.push(("If-None-Match", &etag));
    let again = post(api, "/ofrep/v1/evaluate/flags", &conditional, context);
    assert_eq!(again.status, 304, "{again:?}");
    let other = post(
        api,
        "/ofrep/v1/evaluate/flags",
        &conditional,
        r#"{"context": {"targetingKey": "user-8"}}"#,
    );
    assert_eq!(other.status, 200);

    // A change: the event stream says so, and the old ETag no longer matches.
    let (status, mut events) = Events::open(api, "/ofrep/v1/events", &[("X-API-Key", &key)]);
    assert_eq!(status, 200);
    world
        .slipway(&["flags", "set", "color", "--default", "blue"])
        .ok();
    let event = events.wait_for("refetchEvaluation", DEADLINE);
    assert!(event.contains("etag"), "{event}");
    let changed = post(api, "/ofrep/v1/evaluate/flags", &conditional, context);
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));

    // Single flags: the value, or the spec's error code with the spec's status.
    let color = evaluate(api, &key, "color", context);
    assert_eq!(
        (color.status, color.json()["value"].clone()),
        (200, json!("blue"))
    );
    let missing = evaluate(api, &key, "nope", context);
    assert_eq!(
        (missing.status, missing.json()["errorCode"].clone()),
        (404, json!("FLAG_NOT_FOUND"))
    );
    let broken = evaluate(api, &key, "broken", context);
    assert_eq!(
        (broken.status, broken.json()["errorCode"].clone()),
        (400, json!("PARSE_ERROR"))
    );
    for bad in [
        "{not json",
        "[1]",
        r#"{"context": 5}"#,
        r#"{"context": {"targetingKey": 5}}"#,
    ] {
        let answer = evaluate(api, &key, "color", bad);
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.json()["errorCode"], "INVALID_CONTEXT", "{bad}");
    }
    let empty = evaluate(api, &key, "color", "");
    assert_eq!(empty.status, 200, "no body is an empty context: {empty:?}");

    // Auth: none → 401; an admin token or an unknown key → 403; an evaluation key on the admin API → 401.
    let token = std::fs::read_to_string(world.daemon.state.join("api-token")).unwrap();
    let token = token.trim();
    let none = post(api, "/ofrep/v1/evaluate/flags/color", &[], context);
    assert_eq!(none.status, 401);
    let admin = post(
        api,
        "/ofrep/v1/evaluate/flags/color",
        &[("Authorization", &format!("Bearer {token}"))],
        context,
    );
    assert_eq!(admin.status, 403);
    let as_admin = ofrep_http::request(
        api,
        "GET",
        "/v1/apps/shop/flags",
        &[("Authorization", &format!("Bearer {key}"))],
        "",
    );
    assert_eq!(
        as_admin.status, 401,
        "an evaluation key must not reach the admin API"
    );
    let with_x_key = ofrep_http::request(api, "GET", "/v1/apps", &[("X-API-Key", &key)], "");
    assert_eq!(with_x_key.status, 401);

    // Rate limit: one request a minute, so the second gets 429 with Retry-After.
    let slow = create_key(&world, "slow", &["--rate", "1/min"]);
    assert_eq!(evaluate(api, &slow, "color", context).status, 200);
    let limited = evaluate(api, &slow, "color", context);
    assert_eq!(limited.status, 429, "{limited:?}");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // A revoked key is refused.
    world.slipway(&["flags", "key", "revoke", "slow"]).ok();
    assert_eq!(evaluate(api, &slow, "color", context).status, 403);

    // Keys are never stored, logged or listed.
    let listed = world.slipway(&["flags", "key", "list", "--json"]).ok();
    assert!(listed.stdout.contains("\"web\""), "{listed}");
    let history = world.slipway(&["flags", "history", "--json"]).ok();
    for text in [
        &listed.stdout,
        &history.stdout,
        &bulk.body,
        &world.daemon.log_text(),
    ] {
        assert!(
            !text.contains(&key) && !text.contains(&slow),
            "a key leaked: {text}"
        );
    }
    for entry in std::fs::read_dir(&world.daemon.state).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(&key[4..]) && !text.contains(&slow[4..]),
                "a key is in {}",
                entry.path().display()
            );
        }
    }
}

#[test]
fn changes_are_audited_reversible_killable_and_round_trip() {
    let (world, api) = world_with_flags();
    let key = create_key(&world, "web", &[]);
    let staff = r#"{"context": {"targetingKey": "u1", "email": "ana@example.com"}}"#;
    let variant = |flag: &str, body: &str| evaluate(api, &key, flag, body).json();

    world
        .slipway(&[
            "flags",
            "set",
            "limit",
            "--variant",
            "high",
            "-m",
            "more headroom",
        ])
        .ok();
    world
        .slipway(&[
            "flags",
            "set",
            "limit",
            "--targeting",
            r#"{"if": [{"==": [{"var": "plan"}, "pro"]}, "high", "low"]}"#,
        ])
        .ok();
    let history = world.slipway(&["flags", "history", "limit"]).ok();
    assert!(
        history.stdout.contains("limit#2") && history.stdout.contains("more headroom"),
        "{history}"
    );
    assert!(
        history.stdout.contains(r#"defaultVariant: "low" → "high""#),
        "{history}"
    );
    assert!(history.stdout.contains("targeting: (none) →"), "{history}");
    let entries = world
        .slipway(&["flags", "history", "limit", "--json"])
        .ok()
        .json();
    assert_eq!(entries[0]["seq"], 3);
    assert_eq!(entries[0]["who"], entries[2]["who"]);

    // Back to the import (#1): low, no targeting; the revert is itself change #4.
    world
        .slipway(&["flags", "revert", "limit", "--to", "1"])
        .ok();
    assert_eq!(variant("limit", "{}")["variant"], "low");
    let reverted = world
        .slipway(&["flags", "history", "limit", "--json"])
        .ok()
        .json();
    assert_eq!(
        (reverted[0]["seq"].clone(), reverted[0]["action"].clone()),
        (json!(4), json!("revert"))
    );
    world
        .slipway(&["flags", "revert", "limit", "--to", "99"])
        .failed();

    // Kill: the safe default for everyone at once; enable restores the targeting.
    assert_eq!(variant("new-checkout", staff)["value"], true);
    world
        .slipway(&["flags", "kill", "new-checkout", "-m", "checkout errors"])
        .ok();
    let killed = variant("new-checkout", staff);
    assert_eq!(
        (killed["value"].clone(), killed["reason"].clone()),
        (json!(false), json!("STATIC"))
    );
    let listed = world.slipway(&["flags", "list"]).ok();
    assert!(listed.stdout.contains("KILLED"), "{listed}");
    world.slipway(&["flags", "enable", "new-checkout"]).ok();
    assert_eq!(variant("new-checkout", staff)["value"], true);

    // Bad input is refused with a reason, and nothing changes.
    let bad = world
        .slipway(&["flags", "set", "color", "--default", "green"])
        .failed();
    assert!(bad.stderr.contains("green"), "{bad}");
    assert_eq!(variant("color", "{}")["value"], "red");

    // Export, wipe, import: the same flags come back.
    let exported = world.root().join("exported.json");
    world
        .slipway(&["flags", "export", "-o", exported.to_str().unwrap()])
        .ok();
    world.slipway(&["flags", "delete", "color"]).ok();
    assert_eq!(evaluate(api, &key, "color", "{}").status, 404);
    world
        .slipway(&["flags", "import", exported.to_str().unwrap()])
        .ok();
    let again = world.root().join("again.json");
    world
        .slipway(&["flags", "export", "-o", again.to_str().unwrap()])
        .ok();
    let read =
        |p: &Path| serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(read(&exported), read(&again));
    assert_eq!(variant("color", "{}")["value"], "red");

    // Stale: everyone gets the same answer, unchanged for longer than asked. Targeted flags never are.
    let stale = world
        .slipway(&["flags", "list", "--stale-after", "1ms", "--json"])
        .ok()
        .json();
    let is_stale = |name: &str| {
        stale["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["key"] == name)
            .unwrap()["stale"]
            .clone()
    };
    assert_eq!(is_stale("ratio"), json!(true), "{stale}");
    assert_eq!(is_stale("new-checkout"), json!(false), "{stale}");
    let fresh = world.slipway(&["flags", "list", "--json"]).ok().json();
    assert!(
        fresh["flags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["stale"] == false)
    );
    let text = world
        .slipway(&["flags", "list", "--stale-after", "1ms"])
        .ok();
    assert!(text.stdout.contains("stale"), "{text}");
}

/// A `flags.json` with the boolean flag `new-search` (on/off, off by default), applied on deploy.
fn write_new_search_flag(world: &World) {
    std::fs::write(
        world.app_dir.join("flags.json"),
        r#"{"flags": {"new-search": {"variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#,
    )
    .unwrap();
}

/// `flags ramp FLAG --variant on --steps STEPS --every 2s`.
fn start_ramp(world: &World, flag: &str, steps: &str) {
    let args = [
        "flags",
        "ramp",
        flag,
        "--variant",
        "on",
        "--steps",
        steps,
        "--every",
        "2s",
    ];
    world.slipway(&args).ok();
}

/// Waits for the ramp of `flag` to revert it; the flag's view then.
fn ramp_reverted(world: &World, flag: &str) -> Value {
    wait_for(
        Duration::from_secs(120),
        "the ramp to revert the flag",
        || {
            let view = world.slipway(&["flags", "get", flag, "--json"]).ok().json();
            (view["ramp"]["status"] == "reverted").then_some(view)
        },
    )
}

/// The demo app deployed with a `flags.json` (applied on deploy), a ramp started on healthy traffic,
/// then a release that fails half its requests: the ramp sees the regression and puts the flag back.
#[test]
fn a_ramp_reverts_itself_when_the_error_rate_regresses() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    write_new_search_flag(&world);
    world.deploy_ok(&Conf::demo("v1").replicas(1));
    let deployed = world
        .slipway(&["flags", "history", "new-search", "--json"])
        .ok()
        .json();
    assert_eq!(deployed[0]["action"], "deploy", "{deployed}");
    let before = world
        .slipway(&["flags", "get", "new-search", "--json"])
        .ok()
        .json()["definition"]
        .clone();

    // Healthy traffic before the ramp: its baseline.
    let load = Load::paced(world.daemon.proxy, 2, "/", 50);
    load.wait_for_more(200);
    drop(load.finish());
    start_ramp(&world, "new-search", "5%,25%,50%,100%");
    let ramping = world
        .slipway(&["flags", "get", "new-search", "--json"])
        .ok()
        .json();
    assert!(
        ramping["definition"]["targeting"]["fractional"].is_array(),
        "{ramping}"
    );
    assert_eq!(ramping["ramp"]["percent"], 5);

    // Without traffic the step cannot pass: the ramp holds at 5 %, across a daemon restart too.
    let mut world = world;
    world.daemon.terminate();
    world.daemon.restart();
    let held = world
        .slipway(&["flags", "get", "new-search", "--json"])
        .ok()
        .json();
    assert_eq!(held["ramp"]["percent"], 5, "{held}");
    assert!(held["ramp"]["finished_at"].is_null(), "{held}");

    // A bad release: half the requests fail.
    world
        .slipway(&["config", "set", "DEMO_ERROR_RATE=0.5"])
        .ok();
    let load = Load::paced(world.daemon.proxy, 2, "/", 50);
    let reverted = ramp_reverted(&world, "new-search");
    drop(load.finish());
    assert_eq!(reverted["definition"], before, "{reverted}");
    let reason = reverted["ramp"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("regressed") && reason.contains("errors"),
        "{reason}"
    );
    let audit = world
        .slipway(&["flags", "history", "new-search", "--json"])
        .ok()
        .json();
    assert_eq!(audit[0]["action"], "ramp-revert", "{audit}");
    assert!(audit[0]["reason"].as_str().unwrap().contains("regressed"));
}

/// An app that names the variant it served in `Slipway-Flags` (the demo app evaluating its flag over
/// OFREP, as an app with an OpenFeature SDK does): the ramp judges the variant's users against the
/// others' in the same step, and the header never reaches a client. Here the feature fails half of its
/// own users; the ramp reverts saying so.
#[test]
fn a_ramp_judges_the_variants_users_against_the_others_when_the_app_names_them() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    write_new_search_flag(&world);
    // The flag exists once the first deploy applied flags.json; the app's key comes after.
    world.deploy_ok(&Conf::demo("v1").replicas(1));
    let key_file = world.root().join("ofrep.key");
    std::fs::write(&key_file, create_key(&world, "demo", &[])).unwrap();
    let api = api_addr(&world);
    let conf = Conf::demo("v1")
        .replicas(1)
        .env("DEMO_FLAG", "new-search")
        .env("DEMO_OFREP_URL", &format!("http://{api}"))
        .env("DEMO_OFREP_KEY_FILE", key_file.to_str().unwrap())
        .env("DEMO_FLAG_ERROR_RATE", "0.5");
    world.deploy_ok(&conf);

    // Before the ramp every user gets "off": the app names it, the client never sees the note.
    let answer = support::http::get(world.daemon.proxy, "/", &[("X-User", "u1")]).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("slipway-flags"), None);
    let load = Load::paced(world.daemon.proxy, 2, "/", 50);
    load.wait_for_more(200);
    start_ramp(&world, "new-search", "20%,50%,100%");
    let reverted = ramp_reverted(&world, "new-search");
    drop(load.finish());
    let reason = reverted["ramp"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("step 20% regressed")
            && reason.contains("variant")
            && reason.contains("other variants"),
        "judged on vs off: {reason}"
    );
    assert_eq!(reverted["definition"]["defaultVariant"], "off");
    assert!(reverted["definition"]["targeting"].is_null(), "{reverted}");
}
