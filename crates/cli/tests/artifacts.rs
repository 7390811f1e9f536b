//! A release runs the bytes frozen when it was deployed: editing the app folder afterwards changes nothing
//! until the next deploy, and a rollback brings back the old bytes, not what is on disk now. Freezing
//! reads nothing outside the folder: FIFOs and sockets are left out with a warning, a symlink leading
//! out fails the deploy with the link named (the cases and why: crates/store/tests/hostile_files.rs).

mod support;

use support::{Conf, World, release};

#[test]
fn rollback_runs_the_frozen_bytes_not_the_edited_folder() {
    let world = World::new();
    // No DEMO_VERSION: the demo app answers with version.txt from its working folder (the artifact).
    let conf = Conf::demo("unused").version(None);
    let version_file = world.app_dir.join("version.txt");
    std::fs::write(&version_file, "v1\n").unwrap();
    world.deploy_ok(&conf);
    assert_eq!(world.answer(), "v1");

    std::fs::write(&version_file, "v2\n").unwrap();
    world.deploy_ok(&conf);
    assert_eq!(world.answer(), "v2");
    // Only v2 runs now: the rollback cannot reuse warm v1 instances.
    world.only_instances_of(2);

    std::fs::write(&version_file, "v-edited\n").unwrap();
    // Editing the folder without deploying changes nothing that runs.
    assert_eq!(world.answer(), "v2");
    world.slipway(&["rollback"]).ok();
    assert_eq!(
        world.answer(),
        "v1",
        "the rollback must run v1's frozen bytes"
    );
    let status = world.only_instances_of(3);
    assert_eq!(status["stable"]["version"], 3);
    for _ in 0..20 {
        assert_eq!(world.answer(), "v1");
    }

    let history = world.history();
    let (v1, v2, v3) = (
        release(&history, 1),
        release(&history, 2),
        release(&history, 3),
    );
    assert_eq!(v3["artifact"], v1["artifact"], "{history:?}");
    assert_ne!(v2["artifact"], v1["artifact"], "{history:?}");
    assert_eq!(v3["rollback_of"], 1);

    // The next real deploy freezes the folder as it is now.
    world.deploy_ok(&conf);
    assert_eq!(world.answer(), "v-edited");
}

#[test]
fn rollback_to_a_named_release() {
    let world = World::new();
    for v in ["v1", "v2", "v3"] {
        world.deploy_ok(&Conf::demo(v));
    }
    let run = world
        .slipway(&["rollback", "--to", "v1", "-m", "back to the start"])
        .ok();
    assert!(run.stdout.contains("v4"), "{run}");
    assert_eq!(world.answer(), "v1");
    let history = world.history();
    let v4 = release(&history, 4);
    assert_eq!(v4["rollback_of"], 1);
    assert_eq!(v4["message"], "back to the start");
    let run = world.slipway(&["rollback", "--to", "v9"]).failed();
    assert!(run.stderr.contains("no release v9"), "{run}");
    let run = world.slipway(&["rollback", "--to", "latest"]).failed();
    assert!(run.stderr.contains("v3"), "explains the form: {run}");
}

#[test]
fn a_deploy_leaves_out_fifos_and_sockets_and_refuses_a_link_out_of_the_folder() {
    let world = World::new();
    let fifo = std::ffi::CString::new(world.app_dir.join("run.pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo(3) only creates a file.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let _socket = std::os::unix::net::UnixListener::bind(world.app_dir.join("dev.sock")).unwrap();
    let run = world.deploy_ok(&Conf::demo("v1"));
    for note in [
        "warning: left out run.pipe: a FIFO (named pipe) holds no content",
        "warning: left out dev.sock: a socket holds no content",
    ] {
        assert!(run.stderr.contains(note), "{run}");
    }
    assert_eq!(world.answer(), "v1");

    for (link, target, why) in [
        (
            "passwd",
            "/etc/passwd",
            "an absolute path, outside the folder",
        ),
        ("parent", "..", "a path that climbs out of the folder"),
    ] {
        let path = world.app_dir.join(link);
        std::os::unix::fs::symlink(target, &path).unwrap();
        world.write(&Conf::demo("v2"));
        let run = world.slipway(&["deploy"]).failed();
        assert!(
            run.stderr
                .contains(&format!("{link} is a symlink to {target}: {why}")),
            "{run}"
        );
        assert!(
            run.stderr.contains(&format!("exclude = [\"{link}\"]")),
            "{run}"
        );
        std::fs::remove_file(&path).unwrap();
    }
    // Nothing was recorded and v1 serves on.
    assert_eq!(world.history().len(), 1);
    assert_eq!(world.answer(), "v1");
}
