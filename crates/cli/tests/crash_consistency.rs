//! Crash consistency, proven by brute force: the daemon is killed (`kill -9`) at a random moment
//! during deploys, rollbacks, scale changes, config changes and flag changes, and restarted, many
//! times over. After every restart: the state opens, the history recorded so far is intact, the
//! stable release serves, every instance process is one the daemon lists (none orphaned, none
//! doubled), and no lock is left stuck (the next change is accepted).
//!
//! Seeded and reproducible: `SLIPWAY_CRASH_SEED` picks the run (printed on failure),
//! `SLIPWAY_CRASH_ITERATIONS` how many kills (CI runs a few dozen; hundreds take minutes).

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use support::{Conf, World, instances, pid_alive, wait_until};

/// xorshift64*: enough randomness for choosing moments, and the same run for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Live processes that run in this world's state dir (instances' working dirs are artifact
/// checkouts there), by pid.
fn processes_in(world: &World) -> Vec<u32> {
    let root = std::fs::canonicalize(&world.daemon.state).expect("state dir");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid_alive(pid))
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&root))
        })
        .collect()
}

/// pid, group, command line and instance marker, for a failure message.
fn describe(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let marker = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"SLIPWAY_INSTANCE="))
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    format!("pid {pid} group {:?} {marker:?}: {cmdline}", group_of(pid))
}

/// The group leader of each process (instances lead their own group), to compare with the listed pids.
fn group_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

#[test]
fn kill_9_at_random_moments_never_loses_history_orphans_an_instance_or_sticks_a_lock() {
    let seed = env_or("SLIPWAY_CRASH_SEED", 20261204);
    let iterations = env_or("SLIPWAY_CRASH_ITERATIONS", 24);
    let mut rng = Rng(seed.max(1));
    let mut world = World::new();
    world.deploy_ok(&Conf::demo("v1").replicas(2));
    let mut versions = 1u32;
    let mut history: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..iterations {
        let context = format!("seed {seed}, iteration {i}");
        // One change, killed at a random moment of it.
        let op = rng.below(5);
        let args: Vec<String> = match op {
            0 => {
                versions += 1;
                world.write(&Conf::demo(&format!("v{versions}")).replicas(2));
                vec!["deploy".into(), "--detach".into()]
            }
            1 => vec!["rollback".into(), "--detach".into()],
            2 => vec!["scale".into(), format!("web={}", 1 + rng.below(3))],
            3 => vec![
                "config".into(),
                "set".into(),
                format!("CRASH_ITERATION={i}"),
            ],
            _ => vec![
                "flags".into(),
                "set".into(),
                "color".into(),
                "--default".into(),
                if rng.below(2) == 0 { "red" } else { "blue" }.into(),
            ],
        };
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut change = world.command(&refs);
        change.stdout(Stdio::null()).stderr(Stdio::null());
        let mut change = change.spawn().expect("start the change");
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        world.daemon.kill9();
        let _ = change.wait();
        world.daemon.restart();

        // The history recorded before survives, unchanged.
        let now: BTreeMap<u64, String> = world
            .history()
            .iter()
            .filter_map(|r| {
                let recorded = format!("{} {}", r["created_at"], r["artifact"]);
                Some((r["version"].as_u64()?, recorded))
            })
            .collect();
        for (version, created) in &history {
            assert_eq!(
                now.get(version),
                Some(created),
                "{context}: v{version} changed or vanished"
            );
        }
        history = now;

        // The stable release serves, and every process is an instance the daemon lists.
        let status = world.settled();
        assert!(
            status["stable"]["version"].as_u64().is_some(),
            "{context}: no stable release: {status}"
        );
        wait_until(
            Duration::from_secs(60),
            "the stable release answers",
            || support::http::get(world.daemon.proxy, "/", &[]).is_ok_and(|r| r.status == 200),
        );
        let listed: Vec<u32> = instances(&status)
            .into_iter()
            .filter_map(|(_, p)| p)
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = world.status();
            let listed: Vec<u32> = instances(&status)
                .into_iter()
                .filter_map(|(_, p)| p)
                .collect();
            let strays: Vec<String> = processes_in(&world)
                .into_iter()
                .filter(|&pid| !group_of(pid).is_some_and(|g| listed.contains(&g)))
                .map(describe)
                .collect();
            if strays.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{context}: processes that are no listed instance: {strays:#?}\nstatus: {status}\nlog: {}",
                world.daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !processes_in(&world).is_empty(),
            "{context}: no instance process found in the state dir (the check above would prove nothing)"
        );
        let mut unique = listed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            listed.len(),
            "{context}: an instance listed twice: {status}"
        );
    }
    // No lock is stuck: a deploy goes through to the end.
    versions += 1;
    world.deploy_ok(&Conf::demo(&format!("v{versions}")).replicas(2));
    assert_eq!(world.answer(), format!("v{versions}"));
}
