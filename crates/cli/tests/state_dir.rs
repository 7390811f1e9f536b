//! `slipway serve` and the permissions of what it keeps: it refuses a state dir or database that
//! another user could write, naming the path and the `chmod` that fixes it, and what it makes itself
//! is private (state dir 0700, socket 0600).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use support::{Daemon, Run, bin, run_command};

/// `slipway serve` on `state`, expected to refuse to start (a daemon that does start is stopped when
/// the timeout ends, and the test fails).
fn serve_refused(state: &Path) -> Run {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("serve")
        .arg("--state-dir")
        .arg(state)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SLIPWAY_TOKEN")
        .env("SLIPWAY_LOG", "warn");
    let run = run_command(cmd, Duration::from_secs(60)).failed();
    assert!(
        !state.join("slipway.sock").exists(),
        "it listened anyway: {run}"
    );
    run
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_world_writable_state_dir_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o777);
    let run = serve_refused(&state);
    let shown = state.display().to_string();
    assert!(
        run.stderr
            .contains(&format!("the state dir {shown} is world-writable")),
        "{run}"
    );
    assert!(run.stderr.contains(&format!("chmod 700 {shown}")), "{run}");
    assert_eq!(
        mode(&state),
        0o777,
        "left as it was, for the operator to decide"
    );
    assert!(!state.join("slipway.db").exists(), "nothing was opened");

    // The fix it names works.
    chmod(&state, 0o700);
    let mut daemon = Daemon::start(&state, &[]);
    assert!(daemon.terminate().success());
}

#[test]
fn a_world_writable_database_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut daemon = Daemon::start(&state, &[]);
    assert!(daemon.terminate().success());
    let db = state.join("slipway.db");
    chmod(&db, 0o666);
    let run = serve_refused(&state);
    assert!(
        run.stderr.contains(&format!(
            "the state database {} is world-writable",
            db.display()
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!("chmod 600 {}", db.display())),
        "{run}"
    );
}

#[test]
fn a_group_writable_state_dir_of_another_user_is_refused() {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        // Only root can give a folder to another user; CI runs as root (the rule itself is unit
        // tested in the daemon's state_permissions.rs).
        eprintln!("not root: cannot make a folder owned by another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o770);
    std::os::unix::fs::chown(&state, Some(65534), Some(0)).unwrap();
    let run = serve_refused(&state);
    assert!(
        run.stderr
            .contains("is group-writable and owned by uid 65534, not by uid 0"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("chmod 700 {}", state.display())),
        "{run}"
    );
}

#[test]
fn the_state_dir_and_the_socket_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // Group-writable but the daemon's own: narrowed at start, not refused.
    chmod(&state, 0o770);
    let mut daemon = Daemon::start(&state, &[]);
    assert_eq!(mode(&state), 0o700);
    let socket = std::fs::symlink_metadata(state.join("slipway.sock")).unwrap();
    assert_eq!(socket.permissions().mode() & 0o7777, 0o600);
    assert!(daemon.terminate().success());
}
