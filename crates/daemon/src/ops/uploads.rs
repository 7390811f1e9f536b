//! App folders sent with `slipway deploy` to a daemon on another host (a pod, a VM): each is
//! unpacked into `<state-dir>/uploads/<id>/` and lives for one deploy, which removes it whatever its
//! outcome (the release keeps what it needs: the frozen artifact). One never deployed is removed
//! an hour later, on the next upload or start.

use crate::error::Error;
use slipway_api::UploadAccepted;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The most a request may send (gzipped) …
pub const MAX_SENT: u64 = 512 << 20;
/// … and the most it may unpack to.
pub const MAX_UNPACKED: u64 = 2 << 30;
/// How long an upload no deploy took is kept.
const UNCLAIMED: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Uploads {
    dir: PathBuf,
}

impl Uploads {
    /// Opens `dir` (0700), removing what an earlier daemon left unclaimed.
    pub fn open(dir: PathBuf) -> std::io::Result<Uploads> {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let uploads = Uploads { dir };
        uploads.sweep();
        Ok(uploads)
    }

    /// Where an upload's bytes are written as they arrive.
    pub fn incoming(&self) -> (String, PathBuf) {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let file = self.dir.join(format!(".{id}.tar.gz"));
        (id, file)
    }

    /// Unpacks the received archive into the upload's folder (blocking: run it off the runtime).
    /// The archive file is removed either way, and so is a folder half unpacked.
    pub fn unpack(&self, id: &str, archive: &Path) -> Result<UploadAccepted, Error> {
        self.sweep();
        let folder = self.dir.join(id);
        let unpacked = std::fs::File::open(archive)
            .map_err(|e| Error::internal(format!("cannot read the upload: {e}")))
            .and_then(|file| {
                slipway_store::unpack(std::io::BufReader::new(file), &folder, MAX_UNPACKED).map_err(
                    |e| match e {
                        slipway_store::StoreError::Upload(_) => Error::bad_request(e.to_string()),
                        e => Error::internal(e.to_string()),
                    },
                )
            });
        let _ = std::fs::remove_file(archive);
        match unpacked {
            Ok(size) => Ok(UploadAccepted {
                upload: id.to_string(),
                files: size.files,
                bytes: size.bytes,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&folder);
                Err(e)
            }
        }
    }

    /// The upload `id`, with `config` inside it: the config's path, and a guard that removes the
    /// folder when the deploy is over.
    pub fn take(&self, id: &str, config: &str) -> Result<(PathBuf, Claimed), Error> {
        let well_formed = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let folder = self.dir.join(id);
        if !well_formed || !folder.is_dir() {
            return Err(Error::not_found(format!(
                "upload {id:?} is not on the daemon (an upload serves one deploy, and one not \
                 deployed within an hour is removed): deploy again, which uploads again"
            )));
        }
        let claimed = Claimed(folder.clone());
        let inside = Path::new(config)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside || config.is_empty() {
            return Err(Error::bad_request(format!(
                "config {config:?}: with an upload it names a file inside the uploaded folder, \
                 e.g. \"slipway.toml\""
            )));
        }
        Ok((folder.join(config), claimed))
    }

    /// Removes uploads older than [`UNCLAIMED`] (and archives a crash left half received).
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > UNCLAIMED);
            if old {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    }
}

/// An upload taken by a deploy: removed when dropped.
pub struct Claimed(PathBuf);

impl Claimed {
    /// The unpacked folder (the daemon's own, 0700: nobody else writes in it).
    pub fn folder(&self) -> &Path {
        &self.0
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_serves_one_deploy_and_names_only_files_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join("slipway.toml"), "app = \"x\"\n").unwrap();
        let uploads = Uploads::open(tmp.path().join("uploads")).unwrap();
        let upload = || {
            let (id, file) = uploads.incoming();
            slipway_store::pack(&app, &app, &[], std::fs::File::create(&file).unwrap()).unwrap();
            let accepted = uploads.unpack(&id, &file).unwrap();
            assert_eq!((accepted.files, accepted.bytes), (1, 10));
            assert!(!file.exists(), "the archive goes once unpacked");
            id
        };
        for bad in ["../slipway.toml", "/etc/passwd", ""] {
            let id = upload();
            let err = uploads.take(&id, bad).err().unwrap();
            assert!(err.message.contains("inside the uploaded folder"), "{bad}");
            // A refused deploy drops its claim too: the upload is gone with it.
            let err = uploads.take(&id, "slipway.toml").err().unwrap();
            assert!(
                err.message.contains("is not on the daemon"),
                "{}",
                err.message
            );
        }
        let id = upload();
        let (config, claimed) = uploads.take(&id, "slipway.toml").unwrap();
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "app = \"x\"\n");
        drop(claimed);
        assert!(!config.exists());
        assert_eq!(
            std::fs::read_dir(tmp.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
        assert!(uploads.take("../../etc", "passwd").is_err());
    }

    #[test]
    fn a_broken_archive_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(tmp.path().join("uploads")).unwrap();
        let (id, file) = uploads.incoming();
        std::fs::write(&file, b"not gzip").unwrap();
        let err = uploads.unpack(&id, &file).err().unwrap();
        assert_eq!(
            err.kind,
            crate::error::ErrorKind::BadRequest,
            "{}",
            err.message
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
    }
}
