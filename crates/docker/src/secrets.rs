//! Secrets as files: each container gets its own folder on a host tmpfs (never on disk), one file per
//! secret, mode 0400 and owned by the container's user, bind-mounted read-only at `/run/secrets`.
//!
//! Why this shape: the values must not be in the container's config (`docker inspect` shows env and
//! labels to anyone with socket access) nor in its writable layer (`docker diff`/`export`, and on disk).
//! Copying into a container tmpfs mount is racy (the tmpfs only exists once the app already runs). A
//! bind of a host tmpfs folder is in place before the process starts and shows only its path in
//! `inspect`. It needs the engine on this host, which the single-host runtime is.

use crate::error::DockerError;
use crate::user::Ids;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One container's secret folder.
pub(crate) struct SecretFiles {
    dir: PathBuf,
    instance: String,
}

impl SecretFiles {
    /// Creates `<root>/<container name>` (replacing a leftover), after checking that `root` is on a
    /// tmpfs. Empty until [`SecretFiles::write`].
    pub fn prepare(root: &Path, container_name: &str) -> Result<SecretFiles, DockerError> {
        let fail = |reason: String| DockerError::Secrets {
            instance: container_name.to_owned(),
            reason,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|err| fail(format!("cannot create {}: {err}", root.display())))?;
        if !on_tmpfs(root) {
            return Err(fail(format!(
                "{} is not on a tmpfs: secrets would be written to disk; use a folder under /dev/shm or /run",
                root.display()
            )));
        }
        let dir = root.join(container_name);
        if dir.exists() {
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
            fs::remove_dir_all(&dir)
                .map_err(|err| fail(format!("cannot clear {}: {err}", dir.display())))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|err| fail(format!("cannot create {}: {err}", dir.display())))?;
        Ok(SecretFiles {
            dir,
            instance: container_name.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one 0400 file per secret, owned by `owner`, and hands the folder (0500) to it too.
    pub fn write(&self, secrets: &BTreeMap<String, String>, owner: Ids) -> Result<(), DockerError> {
        let fail = |reason: String| DockerError::Secrets {
            instance: self.instance.clone(),
            reason,
        };
        let chown = |path: &Path| {
            std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid)).map_err(|err| {
                fail(format!(
                    "cannot give {} to uid {} (slipway must run as root, or as the container's user): {err}",
                    path.display(),
                    owner.uid
                ))
            })
        };
        for (name, value) in secrets {
            let path = self.dir.join(name);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .open(&path)
                .map_err(|err| fail(format!("cannot create {}: {err}", path.display())))?;
            file.write_all(value.as_bytes())
                .map_err(|err| fail(format!("cannot write {}: {err}", path.display())))?;
            chown(&path)?;
        }
        chown(&self.dir)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o500))
            .map_err(|err| fail(format!("cannot protect {}: {err}", self.dir.display())))
    }

    /// Removes a container's secret folder, if any. Best effort: logged, not failed.
    pub fn remove(root: &Path, container_name: &str) {
        let dir = root.join(container_name);
        // The folder was made read-only (0500) for the container; writable again to empty it.
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(dir = %dir.display(), "cannot remove secrets: {err}"),
        }
    }
}

fn on_tmpfs(path: &Path) -> bool {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn shm_root() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("slipway-secrets-test")
            .tempdir_in("/dev/shm")
            .unwrap()
    }

    #[test]
    fn secrets_are_owner_only_files_on_tmpfs() {
        let root = shm_root();
        let files = SecretFiles::prepare(root.path(), "slipway-a").unwrap();
        let me = Ids {
            uid: fs::metadata(root.path()).unwrap().uid(),
            gid: fs::metadata(root.path()).unwrap().gid(),
        };
        let secrets = BTreeMap::from([("API_TOKEN".to_owned(), "t0ken".to_owned())]);
        files.write(&secrets, me).unwrap();
        let path = files.dir().join("API_TOKEN");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o400);
        assert_eq!(meta.uid(), me.uid);
        assert_eq!(fs::metadata(files.dir()).unwrap().mode() & 0o777, 0o500);
        assert_eq!(fs::read_to_string(&path).unwrap(), "t0ken");

        // A leftover of the same container is replaced, then removal cleans up.
        let again = SecretFiles::prepare(root.path(), "slipway-a").unwrap();
        assert!(!again.dir().join("API_TOKEN").exists());
        SecretFiles::remove(root.path(), "slipway-a");
        assert!(!root.path().join("slipway-a").exists());
    }

    #[test]
    fn a_disk_folder_is_refused() {
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let err = SecretFiles::prepare(disk.path(), "slipway-a")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not on a tmpfs"), "{err}");
    }
}
