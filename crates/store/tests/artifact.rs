//! The artifact store through its public API, on real folders.

use slipway_store::{ArtifactStore, StoreError};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

struct Fixture {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    store: ArtifactStore,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app");
    write(&src.join("server.sh"), "#!/bin/sh\necho hi\n");
    fs::set_permissions(src.join("server.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    write(&src.join("config/app.toml"), "port = 1\n");
    write(&src.join("static/index.html"), "<h1>hi</h1>\n");
    fs::create_dir_all(src.join("empty")).unwrap();
    symlink("static/index.html", src.join("index-link")).unwrap();
    let store = ArtifactStore::open(&tmp.path().join("state/artifacts")).unwrap();
    Fixture {
        _tmp: tmp,
        src,
        store,
    }
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

#[test]
fn same_content_same_digest_and_nothing_new_stored() {
    let f = fixture();
    let a = f.store.freeze(&f.src, &[], &[]).unwrap();
    assert!(
        a.digest.starts_with("sha256:") && a.digest.len() == 7 + 64,
        "{}",
        a.digest
    );
    assert_eq!(a.files, 3);
    assert!(f.store.exists(&a.digest));
    let blobs = count(&f.store.root().join("blobs"));
    let b = f.store.freeze(&f.src, &[], &[]).unwrap();
    assert_eq!(a, b);
    assert_eq!(count(&f.store.root().join("blobs")), blobs);
    assert_eq!(count(&f.store.root().join("manifests")), 1);
}

#[test]
fn one_changed_byte_or_mode_gives_a_new_digest() {
    let f = fixture();
    let a = f.store.freeze(&f.src, &[], &[]).unwrap();
    write(&f.src.join("config/app.toml"), "port = 2\n");
    let b = f.store.freeze(&f.src, &[], &[]).unwrap();
    assert_ne!(a.digest, b.digest);
    fs::set_permissions(
        f.src.join("config/app.toml"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let c = f.store.freeze(&f.src, &[], &[]).unwrap();
    assert_ne!(b.digest, c.digest, "the exec bit is content");
}

#[test]
fn excludes_and_skipped_paths_are_left_out() {
    let f = fixture();
    let base = f.store.freeze(&f.src, &[], &[]).unwrap();
    write(&f.src.join("target/debug/big"), "junk");
    write(&f.src.join("sub/target/x"), "junk");
    write(&f.src.join("logs/today.log"), "junk");
    write(&f.src.join("static/debug.log"), "junk");
    write(&f.src.join(".slipway/state.db"), "junk");
    let exclude = vec![
        "target".to_string(),
        "*.log".to_string(),
        "logs/".to_string(),
    ];
    let also_skip = vec![f.src.join(".slipway")];
    let frozen = f.store.freeze(&f.src, &exclude, &also_skip).unwrap();
    // `sub/` remains as an empty folder; everything else matches the original.
    let tree = f.store.checkout(&frozen.digest).unwrap();
    assert!(tree.join("sub").is_dir());
    assert!(!tree.join("sub/target").exists());
    assert!(!tree.join("target").exists());
    assert!(!tree.join("logs").exists());
    assert!(!tree.join("static/debug.log").exists());
    assert!(!tree.join(".slipway").exists());
    assert_eq!(frozen.files, base.files);
    fs::remove_dir_all(f.src.join("sub")).unwrap();
    assert_eq!(
        f.store.freeze(&f.src, &exclude, &also_skip).unwrap().digest,
        base.digest
    );
}

#[test]
fn a_store_inside_the_folder_is_never_frozen_into_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app");
    write(&src.join("main.py"), "print(1)\n");
    let store = ArtifactStore::open(&src.join(".slipway/artifacts")).unwrap();
    let a = store.freeze(&src, &[], &[]).unwrap();
    let b = store.freeze(&src, &[], &[]).unwrap();
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.files, 1);
}

#[test]
fn checkout_preserves_exec_bits_symlinks_and_empty_dirs() {
    let f = fixture();
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    let tree = f.store.checkout(&frozen.digest).unwrap();
    let mode = |p: &str| fs::metadata(tree.join(p)).unwrap().permissions().mode();
    assert_ne!(mode("server.sh") & 0o111, 0);
    assert_eq!(mode("config/app.toml") & 0o111, 0);
    let link = tree.join("index-link");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("static/index.html")
    );
    assert_eq!(fs::read_to_string(&link).unwrap(), "<h1>hi</h1>\n");
    assert!(tree.join("empty").is_dir());
}

#[test]
fn checkout_keeps_the_content_of_freeze_time() {
    let f = fixture();
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    write(&f.src.join("config/app.toml"), "port = 99\n");
    write(&f.src.join("new-file"), "later\n");
    fs::remove_file(f.src.join("server.sh")).unwrap();
    let tree = f.store.checkout(&frozen.digest).unwrap();
    assert_eq!(
        fs::read_to_string(tree.join("config/app.toml")).unwrap(),
        "port = 1\n"
    );
    assert_eq!(
        fs::read_to_string(tree.join("server.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert!(!tree.join("new-file").exists());

    // Reused while present, rebuilt when deleted.
    assert_eq!(f.store.checkout(&frozen.digest).unwrap(), tree);
    fs::remove_dir_all(&tree).unwrap();
    let again = f.store.checkout(&frozen.digest).unwrap();
    assert_eq!(again, tree);
    assert_eq!(
        fs::read_to_string(tree.join("static/index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
}

#[test]
fn checkout_of_unknown_or_invalid_digest_fails() {
    let f = fixture();
    let unknown = format!("sha256:{}", "12".repeat(32));
    assert!(!f.store.exists(&unknown));
    assert!(matches!(
        f.store.checkout(&unknown),
        Err(StoreError::ArtifactNotFound { .. })
    ));
    assert!(matches!(
        f.store.checkout("sha256:../../x"),
        Err(StoreError::InvalidDigest(_))
    ));
}

#[test]
fn checkout_detects_a_damaged_blob() {
    let f = fixture();
    let frozen = f.store.freeze(&f.src, &[], &[]).unwrap();
    for entry in fs::read_dir(f.store.root().join("blobs")).unwrap() {
        let path = entry.unwrap().path();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, "tampered").unwrap();
    }
    let err = f.store.checkout(&frozen.digest).unwrap_err();
    assert!(matches!(err, StoreError::ArtifactCorrupt { .. }), "{err}");
    assert!(
        !f.store
            .root()
            .join("trees")
            .join(&frozen.digest[7..])
            .exists(),
        "no half-built tree left"
    );
}

#[test]
fn prune_keeps_kept_digests_and_removes_the_rest() {
    let f = fixture();
    let old = f.store.freeze(&f.src, &[], &[]).unwrap();
    f.store.checkout(&old.digest).unwrap();
    write(&f.src.join("config/app.toml"), "port = 2\n");
    let new = f.store.freeze(&f.src, &[], &[]).unwrap();
    let new_tree = f.store.checkout(&new.digest).unwrap();

    let report = f.store.prune(&HashSet::from([new.digest.clone()])).unwrap();
    assert_eq!(report.artifacts, vec![old.digest.clone()]);
    assert_eq!(report.trees, 1);
    assert_eq!(
        report.blobs, 1,
        "only the old app.toml was unique to the old artifact"
    );
    assert_eq!(report.bytes, "port = 1\n".len() as u64);
    assert!(!f.store.exists(&old.digest));
    assert!(f.store.exists(&new.digest));
    assert!(new_tree.is_dir());

    // The kept artifact still checks out in full, from blobs alone.
    fs::remove_dir_all(&new_tree).unwrap();
    let tree = f.store.checkout(&new.digest).unwrap();
    assert_eq!(
        fs::read_to_string(tree.join("config/app.toml")).unwrap(),
        "port = 2\n"
    );

    let report = f.store.prune(&HashSet::new()).unwrap();
    assert_eq!(report.artifacts, vec![new.digest.clone()]);
    assert_eq!(count(&f.store.root().join("blobs")), 0);
    assert_eq!(count(&f.store.root().join("trees")), 0);
}

#[test]
fn an_owned_folder_s_new_files_become_blobs_by_a_link_with_the_same_digest() {
    use std::os::unix::fs::MetadataExt;
    let f = fixture();
    // The same content as config/app.toml: its blob exists by then, and is neither linked nor copied.
    write(&f.src.join("same.txt"), "port = 1\n");
    let copied = {
        let other = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(&other.path().join("artifacts")).unwrap();
        store.freeze(&f.src, &[], &[]).unwrap()
    };
    let linked = f.store.freeze_owned(&f.src, &[], &[]).unwrap();
    assert_eq!(linked, copied, "linking changes nothing a freeze records");
    assert_eq!(count(&f.store.root().join("blobs")), 3);
    let inode = |p: &Path| fs::metadata(p).unwrap().ino();
    let blob_of = |p: &Path| {
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(fs::read(p).unwrap()));
        f.store.blob_file(&sha).unwrap()
    };
    let script = f.src.join("server.sh");
    assert_eq!(inode(&script), inode(&blob_of(&script)), "a hard link");
    assert_eq!(fs::metadata(&script).unwrap().nlink(), 2);
    // The blob is read-only (the file shares it), and the exec bit is the manifest's.
    assert_eq!(fs::metadata(&script).unwrap().mode() & 0o777, 0o444);
    let tree = f.store.checkout(&linked.digest).unwrap();
    assert_eq!(
        fs::metadata(tree.join("server.sh")).unwrap().mode() & 0o111,
        0o111
    );
    assert_eq!(
        fs::read_to_string(tree.join("server.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    // The tree is a copy, not the link.
    assert_ne!(inode(&tree.join("server.sh")), inode(&script));
    f.store.verify(&linked.digest).unwrap();
}

#[test]
fn an_owned_folder_on_another_file_system_is_copied() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let f = fixture();
    if !shm.is_dir() || fs::metadata(shm).unwrap().dev() == fs::metadata(&f.src).unwrap().dev() {
        return;
    }
    let src = tempfile::tempdir_in(shm).unwrap();
    write(&src.path().join("a.txt"), "on tmpfs\n");
    let frozen = f.store.freeze_owned(src.path(), &[], &[]).unwrap();
    assert_eq!(fs::metadata(src.path().join("a.txt")).unwrap().nlink(), 1);
    let tree = f.store.checkout(&frozen.digest).unwrap();
    assert_eq!(
        fs::read_to_string(tree.join("a.txt")).unwrap(),
        "on tmpfs\n"
    );
}
