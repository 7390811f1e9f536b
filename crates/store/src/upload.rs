//! A folder sent with `slipway deploy` to a daemon on another host: a gzipped tar of the config's
//! folder, leaving out what `[artifact] exclude` leaves out of a release (so what travels is what
//! would be frozen, plus the config beside it).
//!
//! Unpacking treats the archive as untrusted input: only folders, regular files and symlinks; every
//! path relative and inside; nothing beneath a symlink; every link leading somewhere inside (checked
//! before any is made, and the links made last, so no file is ever written through one); a cap on
//! the unpacked bytes (a small gzip can expand a thousandfold).

use crate::artifact::{check_links, walk_error};
use crate::error::{Result, StoreError};
use crate::exclude::Excluder;
use crate::tree_rules;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// What was packed or unpacked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderSize {
    pub files: u64,
    /// The files' bytes, before compression.
    pub bytes: u64,
}

/// What `pack` wrote, and what it left out (FIFOs, sockets, devices) and why.
#[derive(Debug, Default)]
pub struct Packed {
    pub size: FolderSize,
    pub skipped: Vec<String>,
}

/// Packs `folder` into `out` as tar.gz. `artifact` is the release's folder (`[artifact] path`),
/// which must be `folder` or inside it: paths in it are matched against `exclude` from its root,
/// the rest from `folder`'s. Links are kept as links and must stay inside `folder`.
pub fn pack<W: Write>(
    folder: &Path,
    artifact: &Path,
    exclude: &[String],
    out: W,
) -> Result<Packed> {
    let base = folder
        .canonicalize()
        .map_err(StoreError::io("cannot read the app folder", folder))?;
    let artifact = artifact
        .canonicalize()
        .map_err(StoreError::io("cannot read the artifact folder", artifact))?;
    if !artifact.starts_with(&base) {
        return Err(StoreError::UploadOutside {
            artifact,
            folder: base,
        });
    }
    let excluder = Excluder::new(exclude)?;
    let left_out = |path: &Path, is_dir: bool| match path.strip_prefix(&artifact) {
        Ok(rel) => !rel.as_os_str().is_empty() && excluder.excludes(rel, is_dir),
        Err(_) => excluder.excludes(path.strip_prefix(&base).unwrap_or(path), is_dir),
    };
    let walker = walkdir::WalkDir::new(&base)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !left_out(e.path(), e.file_type().is_dir()));

    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
    let mut packed = Packed::default();
    let mut links: Vec<(String, String)> = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| walk_error(e, &base))?;
        let path = entry.path();
        let rel = utf8(path.strip_prefix(&base).unwrap_or(path), path)?;
        let kind = entry.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, io::empty())
                .map_err(StoreError::io("cannot pack", path))?;
        } else if kind.is_symlink() {
            let target =
                fs::read_link(path).map_err(StoreError::io("cannot read symlink", path))?;
            let target = utf8(&target, path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            tar.append_link(&mut header, &rel, &target)
                .map_err(StoreError::io("cannot pack", path))?;
            links.push((rel, target));
        } else if kind.is_file() {
            let mut file = fs::File::open(path).map_err(StoreError::io("cannot read", path))?;
            let meta = file
                .metadata()
                .map_err(StoreError::io("cannot read", path))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            });
            header.set_size(meta.len());
            tar.append_data(&mut header, &rel, &mut file)
                .map_err(StoreError::io("cannot pack", path))?;
            packed.size.files += 1;
            packed.size.bytes += meta.len();
        } else {
            packed.skipped.push(format!(
                "left out {rel}: a special file holds no content to send"
            ));
        }
    }
    check_links(&link_map(&links))?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .and_then(|mut out| out.flush())
        .map_err(StoreError::io("cannot pack", folder))?;
    Ok(packed)
}

/// Unpacks a tar.gz made by [`pack`] into `into` (a folder that must not exist yet; made 0700),
/// refusing anything unsafe and stopping past `max_bytes` of unpacked files. On an error, what was
/// written so far is left for the caller to remove.
pub fn unpack<R: Read>(archive: R, into: &Path, max_bytes: u64) -> Result<FolderSize> {
    fs::create_dir(into).map_err(StoreError::io("cannot create", into))?;
    fs::set_permissions(into, fs::Permissions::from_mode(0o700))
        .map_err(StoreError::io("cannot create", into))?;
    let refuse = |why: String| StoreError::Upload(why);
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut size = FolderSize::default();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut link_paths = HashSet::new();
    let entries = tar
        .entries()
        .map_err(|e| refuse(format!("not a tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse(format!("not a tar.gz: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| refuse(format!("a path is not valid: {e}")))?
            .into_owned();
        let rel = relative(&raw).ok_or_else(|| refuse(format!("unsafe path {raw:?}")))?;
        let dest = into.join(&rel);
        let kind = entry.header().entry_type();
        let named = |what: &str| refuse(format!("{rel}: {what}"));
        if let Some(link) = tree_rules::link_above(&rel, |p| link_paths.contains(p)) {
            return Err(named(&format!("lies beneath the symlink {link}")));
        }
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(StoreError::io("cannot create", &dest))?
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                size.files += 1;
                size.bytes += entry.header().size().unwrap_or(0);
                if size.bytes > max_bytes {
                    return Err(refuse(format!(
                        "more than {} MiB unpacked; leave build output and dependencies out with \
                         `exclude` under [artifact] in slipway.toml",
                        max_bytes >> 20
                    )));
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(StoreError::io("cannot create", parent))?;
                }
                let executable = entry.header().mode().unwrap_or(0) & 0o111 != 0;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(StoreError::io("cannot create", &dest))?;
                // At most the header's size: a lying header cannot write more than it counted.
                let limit = entry.header().size().unwrap_or(0);
                io::copy(&mut (&mut entry).take(limit), &mut file)
                    .map_err(|e| refuse(format!("{rel}: {e}")))?;
                let mode = if executable { 0o755 } else { 0o644 };
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
                    .map_err(StoreError::io("cannot create", &dest))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| named(&format!("a link target is not valid: {e}")))?
                    .ok_or_else(|| named("a symlink without a target"))?;
                let target = target
                    .to_str()
                    .ok_or_else(|| named("a link target is not UTF-8"))?
                    .to_string();
                link_paths.insert(rel.clone());
                links.push((rel, target));
            }
            // pax and GNU long-name records are read by `tar` itself and never show here.
            other => return Err(named(&format!("{other:?} entries are not accepted"))),
        }
    }
    if let Some((path, target, problem)) = tree_rules::escaping_link(&link_map(&links)) {
        return Err(refuse(format!(
            "unsafe symlink {path} -> {target}: {}",
            problem.describe()
        )));
    }
    for (path, target) in &links {
        let dest = into.join(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(StoreError::io("cannot create", parent))?;
        }
        symlink(target, &dest).map_err(StoreError::io("cannot create symlink", &dest))?;
    }
    Ok(size)
}

fn link_map(links: &[(String, String)]) -> HashMap<&str, &str> {
    links
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect()
}

/// `path` as a tree-relative UTF-8 string with `/` separators: only normal components.
fn relative(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn utf8(rel: &Path, path: &Path) -> Result<String> {
    rel.to_str()
        .map(str::to_string)
        .ok_or_else(|| StoreError::NonUtf8Path {
            path: PathBuf::from(path),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut all: Vec<String> = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                if e.path_is_symlink() {
                    format!("{rel} -> {}", fs::read_link(e.path()).unwrap().display())
                } else {
                    rel
                }
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_folder_travels_whole_with_the_artifact_s_exclusions_and_exec_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        write(&app.join("slipway.toml"), "app = \"x\"\n");
        write(&app.join("bin/run"), "#!/bin/sh\n");
        fs::set_permissions(app.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
        write(&app.join("dist/index.html"), "hi");
        write(&app.join("dist/debug.log"), "noise");
        write(&app.join("node_modules/x/index.js"), "big");
        write(
            &app.join("notes.log"),
            "left out too: matched from the app folder",
        );
        symlink("index.html", app.join("dist/home.html")).unwrap();

        let mut bytes = Vec::new();
        let exclude = vec!["node_modules".to_string(), "*.log".to_string()];
        // The artifact is `dist`: the patterns match inside it from its root, and outside it from
        // the app folder's.
        let packed = pack(&app, &app.join("dist"), &exclude, &mut bytes).unwrap();
        assert_eq!(packed.size.files, 3, "{packed:?}");
        let into = tmp.path().join("unpacked");
        let size = unpack(&bytes[..], &into, 1 << 20).unwrap();
        assert_eq!(size, packed.size);
        assert_eq!(
            listing(&into),
            [
                "bin",
                "bin/run",
                "dist",
                "dist/home.html -> index.html",
                "dist/index.html",
                "slipway.toml"
            ]
        );
        let mode = |p: &str| fs::metadata(into.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("bin/run"), 0o755);
        assert_eq!(mode("slipway.toml"), 0o644);
        assert_eq!(
            fs::read_to_string(into.join("dist/index.html")).unwrap(),
            "hi"
        );
    }

    #[test]
    fn an_artifact_outside_the_folder_and_a_link_leading_out_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        write(&app.join("slipway.toml"), "");
        write(&tmp.path().join("build/x"), "");
        let err = pack(&app, &tmp.path().join("build"), &[], io::sink()).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        symlink("../build/x", app.join("escape")).unwrap();
        let err = pack(&app, &app, &[], io::sink()).unwrap_err();
        assert!(matches!(err, StoreError::LinkOutside { .. }), "{err}");
    }

    /// A tar.gz written by hand, entry by entry, the way a hostile client could.
    fn hostile(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            // Written raw: `append_data` would refuse `..` itself.
            let name = header.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if *kind == tar::EntryType::Symlink {
                header.set_link_name(data).unwrap();
                header.set_size(0);
                header.set_cksum();
                tar.append(&header, io::empty()).unwrap();
            } else {
                header.set_size(data.len() as u64);
                header.set_cksum();
                tar.append(&header, data.as_bytes()).unwrap();
            }
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn unpacking_refuses_what_would_write_outside_or_too_much() {
        use tar::EntryType::{Regular, Symlink};
        let tmp = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unsafe path", hostile(&[("../evil", Regular, "x")])),
            ("unsafe path", hostile(&[("/etc/evil", Regular, "x")])),
            (
                "beneath the symlink",
                hostile(&[("lib", Symlink, "."), ("lib/x", Regular, "x")]),
            ),
            ("climbs out", hostile(&[("up", Symlink, "../../etc")])),
            ("absolute", hostile(&[("abs", Symlink, "/etc/passwd")])),
            ("more than", hostile(&[("big", Regular, &"x".repeat(3000))])),
            ("not a tar.gz", b"plain text".to_vec()),
        ];
        for (i, (why, bytes)) in cases.into_iter().enumerate() {
            let into = tmp.path().join(format!("case{i}"));
            let err = unpack(&bytes[..], &into, 2048).unwrap_err().to_string();
            assert!(err.contains(why), "case {i}: {err}");
            assert!(!tmp.path().join("evil").exists());
            let made = listing(&into);
            assert!(
                made.iter().all(|p| !p.contains("->")),
                "case {i}: no link made before all were checked: {made:?}"
            );
        }
    }
}
