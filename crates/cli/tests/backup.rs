//! `slipway backup` and `slipway restore` through the real binary: a backup made while the daemon
//! serves, restored into a fresh state dir, serves the same releases and rolls back from there; over
//! TCP a backup needs an admin token; a restore refuses a dir that holds anything and a damaged file,
//! and changes nothing when it does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Conf, DEADLINE, Daemon, Run, World, bin, run_command, wait_for};

/// A file of the app folder whose bytes a test can find in the backup (its blob).
const CANARY: &str = "backup canary: these bytes are one blob of the artifact\n";

fn with_canary(world: &World) {
    std::fs::write(world.app_dir.join("data.txt"), CANARY).expect("write data.txt");
}

/// `slipway restore FILE --state-dir DIR`, with no daemon anywhere near.
fn restore(file: &Path, dir: &Path) -> Run {
    let mut cmd = Command::new(bin());
    cmd.arg("restore")
        .arg(file)
        .arg("--state-dir")
        .arg(dir)
        .env_remove("SLIPWAY_SERVER")
        .env_remove("SLIPWAY_TOKEN")
        .env("SLIPWAY_LOG", "warn");
    run_command(cmd, Duration::from_secs(120))
}

/// Names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Temporary files a backup or a restore might have left in `dir` (they must not).
fn leftovers(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains(".partial-") || n.contains(".restoring-"))
        .collect()
}

#[test]
fn a_backup_restored_into_a_fresh_state_dir_serves_the_same_releases_and_rolls_back_from_there() {
    let mut world = World::new();
    with_canary(&world);
    for v in ["v1", "v2", "v3"] {
        world.deploy_ok(&Conf::demo(v));
    }
    world.only_instances_of(3);
    let before = world.history();
    assert_eq!(before.len(), 3);

    // Made while the daemon serves.
    let file = world.root().join("state.tar");
    let run = world.slipway(&["backup", file.to_str().unwrap()]).ok();
    assert!(file.is_file(), "{run}");
    assert!(
        run.stdout
            .contains("shop: 3 release(s), stable v3; can roll back to v1, v2, v3"),
        "{run}"
    );
    assert!(
        leftovers(world.root()).is_empty(),
        "{:?}",
        names(world.root())
    );
    // Nothing stays behind in the daemon's state dir either.
    wait_for(DEADLINE, "the backup's staging folder to go", || {
        names(&world.daemon.state.join("backup-tmp"))
            .is_empty()
            .then_some(())
    });
    // A second one to the same name is refused without --force, and the first stays whole.
    let again = world.slipway(&["backup", file.to_str().unwrap()]).failed();
    assert!(again.stderr.contains("--force"), "{again}");
    let backup_bytes = std::fs::read(&file).unwrap();
    // No secret: the TCP API's token file is not in it.
    let text = String::from_utf8_lossy(&backup_bytes);
    assert!(!text.contains("api-token"), "the backup names api-token");

    // The original daemon goes: the restored one must stand on its own.
    world.daemon.terminate();
    let restored = world.root().join("restored");
    let run = restore(&file, &restored).ok();
    assert!(run.stdout.contains("stable v3"), "{run}");
    assert!(
        leftovers(world.root()).is_empty(),
        "{:?}",
        names(world.root())
    );
    world.daemon = Daemon::start(&restored, &[]);

    wait_for(DEADLINE, "the restored daemon to serve v3", || {
        let status = world.status();
        let ready = status["instances"].as_array().is_some_and(|l| {
            l.iter()
                .filter(|i| i["release"] == 3 && i["state"] == "ready")
                .count()
                == 2
        });
        (ready && world.answer() == "v3").then_some(())
    });
    assert_eq!(world.history(), before, "the history came back as it was");

    // An older release's bits came back too: roll back to v1 from the restored state.
    world
        .slipway(&["rollback", "--to", "v1", "-m", "after restore"])
        .ok();
    assert_eq!(world.answer(), "v1");
    let after = world.history();
    let v4 = support::release(&after, 4);
    assert_eq!(v4["status"], "active", "{after:?}");
    assert_eq!(v4["rollback_of"], 1, "{after:?}");
    // v3 is superseded now; v2 and v1 are exactly as they were.
    assert_eq!(after[1]["version"], 3);
    assert_eq!(after[1]["status"], "superseded");
    assert_eq!(&after[2..], &before[1..], "older history is untouched");
}

#[test]
fn over_tcp_a_backup_needs_an_admin_token() {
    let world = World::with_daemon_args(&["--api", "127.0.0.1:0"]);
    world.deploy_ok(&Conf::demo("v1").replicas(1));
    let api = world.api_addr();
    let server = format!("http://{api}");
    for (role, allowed) in [("viewer", false), ("deployer", false), ("admin", true)] {
        let token = world.create_token(&format!("ops-{role}"), role);
        let file = world.root().join(format!("{role}.tar"));
        let mut cmd = world.command(&["backup", file.to_str().unwrap(), "--server", &server]);
        cmd.env("SLIPWAY_TOKEN", &token);
        let run = run_command(cmd, Duration::from_secs(120));
        if allowed {
            run.ok();
            let restored = restore(&file, &world.root().join("from-tcp")).ok();
            assert!(
                restored.stdout.contains("shop: 1 release(s), stable v1"),
                "{restored}"
            );
        } else {
            let run = run.failed();
            assert!(
                run.stderr.contains(&format!("has the role {role}"))
                    && run.stderr.contains("needs admin"),
                "{run}"
            );
            assert!(!file.exists(), "a refused backup left {}", file.display());
        }
        assert!(
            leftovers(world.root()).is_empty(),
            "{:?}",
            names(world.root())
        );
    }
    // Who took the state away is in the daemon's audit journal.
    let admin = world.create_token("auditor", "admin");
    let journal = support::http::get(
        api,
        "/v1/apps/-daemon/events?after=0&limit=100",
        &[("Authorization", &format!("Bearer {admin}"))],
    )
    .unwrap();
    assert!(
        journal
            .body
            .contains("backup made for ops-admin (admin via tcp)"),
        "{}",
        journal.body
    );
}

#[test]
fn restore_refuses_an_occupied_dir_and_a_damaged_backup_and_changes_nothing() {
    let world = World::new();
    with_canary(&world);
    world.deploy_ok(&Conf::demo("v1").replicas(1));
    let file = world.root().join("state.tar");
    world.slipway(&["backup", file.to_str().unwrap()]).ok();

    // A dir that holds anything: refused before a byte is read.
    let occupied = world.root().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), "mine").unwrap();
    let run = restore(&file, &occupied).failed();
    assert!(
        run.stderr.contains("is not empty (it holds keep.txt)")
            && run.stderr.contains("Nothing was changed"),
        "{run}"
    );
    assert_eq!(names(&occupied), ["keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(occupied.join("keep.txt")).unwrap(),
        "mine"
    );
    // The live state dir itself, with its daemon running: refused too.
    let run = restore(&file, &world.daemon.state).failed();
    assert!(run.stderr.contains("is not empty"), "{run}");

    // One byte flipped in a blob: found, named, nothing restored.
    let bytes = std::fs::read(&file).unwrap();
    let at = bytes
        .windows(CANARY.len())
        .position(|w| w == CANARY.as_bytes())
        .expect("the canary's blob is in the backup");
    let mut damaged = bytes.clone();
    damaged[at + 3] ^= 0x20;
    let damaged_file = world.root().join("damaged.tar");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let fresh: PathBuf = world.root().join("fresh");
    let run = restore(&damaged_file, &fresh).failed();
    assert!(
        run.stderr.contains("artifacts/blobs/")
            && run.stderr.contains("changed or damaged")
            && run.stderr.contains("nothing was restored"),
        "{run}"
    );
    assert!(
        !fresh.exists(),
        "a refused restore made {}",
        fresh.display()
    );

    // Cut short: refused the same way.
    let cut = world.root().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let run = restore(&cut, &fresh).failed();
    assert!(run.stderr.contains("nothing was restored"), "{run}");
    assert!(!fresh.exists());
    assert!(
        leftovers(world.root()).is_empty(),
        "{:?}",
        names(world.root())
    );

    // The sound file still restores.
    restore(&file, &fresh).ok();
    assert!(fresh.join("slipway.db").is_file());
}
