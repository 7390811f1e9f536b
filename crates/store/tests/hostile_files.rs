//! Freezing never reads outside the folder or from something that is not a file, and checking out never
//! writes outside the tree, whatever the folder or a manifest on disk holds. Each case, and what is
//! decided for it:
//!
//! - a symlink to an absolute path (`/etc/passwd`) or climbing out (`..`): the freeze FAILS, naming the
//!   link and how to fix it. The release would run whatever the link points to at the time, not what
//!   was frozen, and dropping it silently would give an app that breaks later, far from the cause.
//! - a FIFO, a socket, a device file: LEFT OUT with a note in `skipped` (shown as a deploy warning).
//!   They hold no content; reading a FIFO would block the deploy, reading a device could be endless or
//!   leak the host's data. Dev tools leave sockets and pipes in app folders, so failing would be noise.
//! - a symlink that stays inside (even `sub/up -> ..`, the root): kept as a link, as before.
//! - a manifest naming `../x`, `/abs`, a path beneath a link, a path twice, or a link out of the tree:
//!   the checkout FAILS before anything is written (the manifest is data on disk, held to what a
//!   freeze could have made).

use sha2::Digest;
use slipway_store::{ArtifactStore, StoreError};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

struct Fixture {
    tmp: tempfile::TempDir,
    src: PathBuf,
    store: ArtifactStore,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("main.sh"), "echo hi\n").unwrap();
    let store = ArtifactStore::open(&tmp.path().join("state/artifacts")).unwrap();
    Fixture { tmp, src, store }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo(3) only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// A character device like /dev/null; only root may make one, so `false` when not root.
fn mknod_null(path: &Path) -> bool {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mknod(2) only creates a file.
    unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) == 0 }
}

#[test]
fn fifos_sockets_and_devices_are_left_out_with_a_note() {
    let f = fixture();
    mkfifo(&f.src.join("sub/pipe"));
    let _listener = std::os::unix::net::UnixListener::bind(f.src.join("dev.sock")).unwrap();
    let device = mknod_null(&f.src.join("null"));
    if !device {
        eprintln!("not root: the device-file case is covered by the FIFO and socket ones only");
    }
    // Were the FIFO opened for reading, this would block: no writer ever comes.
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    assert_eq!(frozen.files, 1);
    let notes = frozen.skipped.join("\n");
    assert!(
        notes.contains("left out sub/pipe: a FIFO (named pipe)"),
        "{notes}"
    );
    assert!(notes.contains("left out dev.sock: a socket"), "{notes}");
    assert_eq!(
        notes.contains("left out null: a device file"),
        device,
        "{notes}"
    );
    let tree = f.store.checkout(&frozen.digest).unwrap();
    for gone in ["sub/pipe", "dev.sock", "null"] {
        assert!(fs::symlink_metadata(tree.join(gone)).is_err(), "{gone}");
    }
    assert!(tree.join("sub").is_dir());
}

#[test]
fn a_symlink_out_of_the_folder_fails_the_freeze_naming_it() {
    for (name, target, why) in [
        ("passwd", "/etc/passwd", "an absolute path"),
        ("up", "..", "climbs out of the folder"),
        ("sub/deep", "../../app/main.sh", "climbs out of the folder"),
    ] {
        let f = fixture();
        symlink(target, f.src.join(name)).unwrap();
        let err = f.store.freeze(&f.src, &[], &[]).unwrap_err();
        assert!(matches!(err, StoreError::LinkOutside { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{name} is a symlink to {target}")),
            "{text}"
        );
        assert!(text.contains(why), "{text}");
        assert!(text.contains(&format!("exclude = [\"{name}\"]")), "{text}");
        assert_eq!(
            fs::read_dir(f.store.root().join("manifests"))
                .unwrap()
                .count(),
            0,
            "nothing recorded"
        );
        // Excluding it, as the message says, makes the folder freezable.
        let frozen = f.store.freeze(&f.src, &[name.to_string()], &[]).unwrap();
        assert_eq!(frozen.files, 1);
    }
}

#[test]
fn a_link_through_another_link_out_of_the_folder_is_caught() {
    let f = fixture();
    // `sub/root` is the folder itself (fine); `sneaky` goes to its parent through it.
    symlink("..", f.src.join("sub/root")).unwrap();
    symlink("sub/root/../outside", f.src.join("sneaky")).unwrap();
    let err = f.store.freeze(&f.src, &[], &[]).unwrap_err();
    assert!(err.to_string().contains("sneaky is a symlink"), "{err}");
    fs::remove_file(f.src.join("sneaky")).unwrap();
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    let tree = f.store.checkout(&frozen.digest).unwrap();
    assert_eq!(
        fs::read_link(tree.join("sub/root")).unwrap(),
        Path::new("..")
    );
}

/// Writes a manifest by hand and returns its digest, as a damaged or planted store would hold it.
fn plant(store: &ArtifactStore, entries: serde_json::Value) -> String {
    let bytes =
        serde_json::to_vec(&serde_json::json!({ "format": 1, "entries": entries })).unwrap();
    let hex = hex::encode(sha2::Sha256::digest(&bytes));
    fs::write(
        store.root().join("manifests").join(format!("{hex}.json")),
        bytes,
    )
    .unwrap();
    format!("sha256:{hex}")
}

#[test]
fn a_manifest_that_would_write_outside_the_tree_is_refused_before_anything_is_written() {
    let f = fixture();
    // A real blob, so that only the path can be wrong.
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    let tree = f.store.checkout(&frozen.digest).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(b"echo hi\n"));
    let file = |path: &str| serde_json::json!({"kind": "file", "path": path, "sha256": sha, "size": 8, "executable": false});
    let link = |path: &str, target: &str| serde_json::json!({"kind": "symlink", "path": path, "target": target});
    let escape = f.tmp.path().join("escaped");
    let cases = [
        (serde_json::json!([file("../escaped")]), "unsafe path"),
        (
            serde_json::json!([file(escape.to_str().unwrap())]),
            "unsafe path",
        ),
        (
            serde_json::json!([
                file("out/escaped"),
                link("out", f.tmp.path().to_str().unwrap())
            ]),
            "lies beneath the symlink",
        ),
        (
            serde_json::json!([link("here", "."), file("here/x")]),
            "lies beneath the symlink",
        ),
        (
            serde_json::json!([link("up", ".."), file("x")]),
            "unsafe symlink \"up\" -> \"..\"",
        ),
        (
            serde_json::json!([link("pw", "/etc/passwd")]),
            "unsafe symlink",
        ),
        (
            serde_json::json!([link("escaped", "../escaped"), file("escaped")]),
            "unsafe symlink",
        ),
        (
            serde_json::json!([link("a", "main.sh"), file("a")]),
            "appears twice",
        ),
    ];
    for (entries, expected) in cases {
        let digest = plant(&f.store, entries.clone());
        let err = f.store.checkout(&digest).unwrap_err();
        assert!(
            matches!(err, StoreError::ArtifactCorrupt { .. }),
            "{entries}: {err}"
        );
        assert!(err.to_string().contains(expected), "{entries}: {err}");
        assert!(!escape.exists(), "{entries} wrote outside the tree");
        assert!(
            !f.store.root().join("trees").join(&digest[7..]).exists(),
            "{entries}: no tree"
        );
    }
    assert!(tree.join("main.sh").is_file(), "good trees are untouched");
}
