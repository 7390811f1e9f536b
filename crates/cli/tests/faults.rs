//! Faults with a clear answer: the state database locked by another process, the state dir's disk
//! full or read-only, the wall clock jumping. A change the daemon cannot record fails with that
//! reason, after a bounded wait; what serves keeps serving; nothing is left half-done, and the same
//! change goes through once the fault is gone.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use support::{Conf, World, http, wait_until};

/// Another process holding the database's write lock (`BEGIN EXCLUSIVE`) until it is dropped.
struct Holder(Child);

impl Holder {
    fn lock(db: &std::path::Path) -> Holder {
        let script = "import sqlite3, sys\n\
                      c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                      c.execute('BEGIN EXCLUSIVE')\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_state_db_locked_by_another_process_fails_the_deploy_clearly_and_serving_goes_on() {
    let world = World::new();
    world.deploy_ok(&Conf::demo("v1"));
    let holder = Holder::lock(&world.daemon.state.join("slipway.db"));
    world.write(&Conf::demo("v2"));
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("locked") || run.stderr.contains("busy"),
        "the reason is the lock: {run}"
    );
    // Reads still answer (WAL), and the stable release serves.
    assert_eq!(world.answer(), "v1");
    assert_eq!(world.status()["stable"]["version"], 1);
    drop(holder);
    world.deploy_ok(&Conf::demo("v2"));
    wait_until(support::DEADLINE, "v2 serves", || {
        http::get(world.daemon.proxy, "/", &[]).is_ok_and(|r| http::version_of(&r) == "v2")
    });
}

/// The wall clock jumps back an hour while a canary pauses for 2 s (libfaketime moves the daemon's
/// `CLOCK_REALTIME` only): the pause still ends 2 s later, not an hour later; a jump forward of an
/// hour does not expire the rollout's `progress_deadline`.
#[test]
fn a_wall_clock_jump_neither_stalls_nor_expires_a_rollout() {
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(lib).exists(),
        "libfaketime is missing: apt-get install faketime (.ci/run installs it)"
    );
    let offset = tempfile::NamedTempFile::new().expect("offset file");
    std::fs::write(offset.path(), "+0\n").unwrap();
    let offset_path = offset.path().to_str().unwrap().to_owned();
    let world = World::with_daemon_env(&[
        ("LD_PRELOAD", lib),
        ("FAKETIME_TIMESTAMP_FILE", &offset_path),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    world.deploy_ok(&Conf::demo("v1"));
    let canary = |version: &str| {
        Conf::demo(version).deploy(
            "strategy = \"canary\"\nprogress_deadline = \"30m\"\n\
             steps = [ { weight = 20 }, { pause = \"2s\" }, { weight = 60 }, { pause = \"2s\" } ]",
        )
    };
    for (version, jump) in [("v2", "-3600"), ("v3", "+3600")] {
        world.write(&canary(version));
        world.slipway(&["deploy", "--detach"]).ok();
        support::wait_until(support::DEADLINE, "the canary at 20 %", || {
            world.status()["rollout"]["canary"]["effective_weight"] == 20
        });
        std::fs::write(offset.path(), format!("{jump}\n")).unwrap();
        let done = support::wait_for(support::DEADLINE, "the rollout to finish", || {
            let s = world.status();
            s["rollout"].is_null().then_some(s)
        });
        assert_eq!(
            done["stable"]["version"].as_u64(),
            Some(version[1..].parse().unwrap()),
            "after a jump of {jump} s the canary went through: {done}"
        );
        std::fs::write(offset.path(), "+0\n").unwrap();
    }
}

/// A small filesystem (tmpfs) mounted over the daemon's state dir, unmounted when dropped.
struct SmallDisk {
    at: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("mount");
        assert!(
            mounted.success(),
            "these tests mount a tmpfs: they run as root, as CI does"
        );
        SmallDisk {
            at: at.to_path_buf(),
        }
    }

    /// A read-only view of it mounted over it (what is open stays writable, as after a remount
    /// that the kernel lets through); undone by [`SmallDisk::writable`].
    fn read_only(&self) {
        for args in [&["--bind"][..], &["-o", "remount,bind,ro"][..]] {
            let done = Command::new("mount")
                .args(args)
                .arg(&self.at)
                .arg(&self.at)
                .status()
                .expect("mount");
            assert!(done.success(), "mount {args:?}");
        }
    }

    fn writable(&self) {
        let done = Command::new("umount")
            .arg(&self.at)
            .status()
            .expect("umount");
        assert!(done.success(), "umount the read-only view");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Fills the filesystem at `dir` until a write fails, in one file; returns it (remove it to free).
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    path
}

/// The state dir's filesystem full, then read-only: a deploy fails with the OS's reason, the stable
/// release serves throughout, and once there is room (or it is writable) again the same deploy works.
#[test]
fn a_full_or_read_only_state_dir_fails_the_deploy_clearly_and_serving_goes_on() {
    let mut world = World::new();
    world.daemon.terminate();
    let disk = SmallDisk::mount(&world.daemon.state, "64m");
    world.daemon.restart();
    world.deploy_ok(&Conf::demo("v1"));

    let filler = fill(&world.daemon.state);
    world.write(&Conf::demo("v2"));
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("No space left on device") || run.stderr.contains("disk is full"),
        "the reason is the full disk: {run}"
    );
    assert_eq!(world.answer(), "v1");
    std::fs::remove_file(filler).expect("free the disk");
    world.deploy_ok(&Conf::demo("v2"));
    assert_eq!(world.answer(), "v2");

    disk.read_only();
    world.write(&Conf::demo("v3"));
    let run = world.slipway(&["deploy"]).failed();
    assert!(
        run.stderr.contains("Read-only file system") || run.stderr.contains("readonly"),
        "the reason is the read-only state dir: {run}"
    );
    assert_eq!(world.answer(), "v2");
    disk.writable();
    world.deploy_ok(&Conf::demo("v3"));
    assert_eq!(world.answer(), "v3");
    world.daemon.terminate();
}
