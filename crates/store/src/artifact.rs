//! The content-addressed artifact store: a release runs exactly the bits it was made from.
//!
//! Freezing a folder copies each regular file into `blobs/<sha256>` (once per content, so identical files
//! across releases cost nothing) and writes a manifest — every path with its kind, content hash and exec
//! bit, sorted — to `manifests/<sha256-of-manifest>.json`. The manifest's hash is the artifact's digest, so
//! the same content always gives the same digest and one changed byte gives another.
//!
//! A release runs from `trees/<hex>/`, a plain folder materialized from the manifest once (built in
//! `tmp/`, then renamed into place, so a half-built tree is never visible) and reused afterwards. Trees are
//! copies, not hard links, so an app scribbling on its own folder cannot corrupt the blobs.
//!
//! Writers are not coordinated with each other beyond atomic renames: `freeze` and `checkout` may run
//! concurrently, but `prune` must not run while either does (the daemon serializes them with a lock).

use crate::error::{Result, StoreError};
use crate::exclude::Excluder;
use crate::tree_rules;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whose folder a freeze reads: anyone's (copied), or one only this process writes (linked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Shared,
    Owned,
}

const DIGEST_PREFIX: &str = "sha256:";
const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

/// The result of a freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenArtifact {
    /// `sha256:<hex>`, the artifact's identity.
    pub digest: String,
    /// Regular files in the artifact.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// What was left out and why (FIFOs, sockets, devices), for the deploy's warnings.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Digests whose manifest was removed.
    pub artifacts: Vec<String>,
    /// Materialized trees removed.
    pub trees: usize,
    /// Blobs no remaining manifest referenced.
    pub blobs: usize,
    /// Bytes of those blobs.
    pub bytes: u64,
}

/// The frozen description of a folder; its serialized bytes are what the digest hashes.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    /// Sorted by path.
    entries: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        sha256: String,
        size: u64,
        executable: bool,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
        }
    }
}

impl ArtifactStore {
    /// Opens (creating) the store under `root`.
    pub fn open(root: &Path) -> io::Result<ArtifactStore> {
        for sub in ["blobs", "manifests", "trees", "tmp"] {
            fs::create_dir_all(root.join(sub))?;
        }
        Ok(ArtifactStore {
            root: root.canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Freezes `dir` (regular files with their exec bit, symlinks as links, empty folders), leaving out
    /// paths matching `exclude` globs and anything inside `also_skip` (and this store itself, should it
    /// live inside `dir`). Returns the digest; freezing identical content again stores nothing new.
    ///
    /// Nothing outside `dir` is ever read: links are kept as links, never followed, and a link that
    /// leads out of `dir` (an absolute target, or `..` past its root) fails the freeze, since the
    /// release would run whatever it points to at the time rather than what was frozen. FIFOs,
    /// sockets and devices are left out with a note in `skipped`: they hold no content, and reading
    /// one would block (a FIFO) or read a device.
    pub fn freeze(
        &self,
        dir: &Path,
        exclude: &[String],
        also_skip: &[PathBuf],
    ) -> Result<FrozenArtifact> {
        self.freeze_from(dir, exclude, also_skip, Source::Shared)
    }

    /// [`freeze`](Self::freeze) for a folder this process owns and removes afterwards, which nobody
    /// else writes (an upload, unpacked into the daemon's own 0700 folder): a new blob is the file
    /// itself, hard-linked into `blobs/` after one read for its hash, instead of read again and
    /// copied. The folder's files become read-only (they share the blob's inode).
    pub fn freeze_owned(
        &self,
        dir: &Path,
        exclude: &[String],
        also_skip: &[PathBuf],
    ) -> Result<FrozenArtifact> {
        self.freeze_from(dir, exclude, also_skip, Source::Owned)
    }

    fn freeze_from(
        &self,
        dir: &Path,
        exclude: &[String],
        also_skip: &[PathBuf],
        source: Source,
    ) -> Result<FrozenArtifact> {
        let base = dir
            .canonicalize()
            .map_err(StoreError::io("cannot read the artifact folder", dir))?;
        let excluder = Excluder::new(exclude)?;
        let mut skip: Vec<PathBuf> = also_skip
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect();
        skip.push(self.root.clone());
        // A folder inside a skipped one (an upload in the state dir) is frozen whole: only what
        // lies inside the folder can be skipped.
        skip.retain(|s| !base.starts_with(s));

        let walker = walkdir::WalkDir::new(&base)
            .min_depth(1)
            .follow_links(false)
            .into_iter();
        let walker = walker.filter_entry(|entry| {
            let path = entry.path();
            let rel = path.strip_prefix(&base).unwrap_or(path);
            !skip.iter().any(|s| path.starts_with(s))
                && !excluder.excludes(rel, entry.file_type().is_dir())
        });

        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        let (mut files, mut bytes) = (0usize, 0u64);
        for entry in walker {
            let entry = entry.map_err(|e| walk_error(e, &base))?;
            let path = entry.path();
            let rel = path.strip_prefix(&base).unwrap_or(path);
            let rel = rel
                .to_str()
                .ok_or_else(|| StoreError::NonUtf8Path {
                    path: path.to_path_buf(),
                })?
                .to_string();
            let kind = entry.file_type();
            if kind.is_dir() {
                entries.push(Entry::Dir { path: rel });
            } else if kind.is_symlink() {
                let target =
                    fs::read_link(path).map_err(StoreError::io("cannot read symlink", path))?;
                let target = target
                    .to_str()
                    .ok_or_else(|| StoreError::NonUtf8Path {
                        path: path.to_path_buf(),
                    })?
                    .to_string();
                entries.push(Entry::Symlink { path: rel, target });
            } else if kind.is_file() {
                let (sha256, size, mode) = self.store_blob(path, &base, source)?;
                files += 1;
                bytes += size;
                entries.push(Entry::File {
                    path: rel,
                    sha256,
                    size,
                    executable: mode & 0o111 != 0,
                });
            } else {
                skipped.push(format!(
                    "left out {rel}: {} holds no content to freeze",
                    special_kind(kind)
                ));
            }
        }
        entries.sort_by(|a, b| a.path().cmp(b.path()));
        check_links_stay_inside(&entries)?;

        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            entries,
        };
        let encoded = serde_json::to_vec(&manifest)
            .map_err(|e| StoreError::corrupt("artifact manifest", e))?;
        let hex = hex::encode(Sha256::digest(&encoded));
        let manifest_path = self.manifest_path(&hex);
        if !manifest_path.exists() {
            self.write_atomically(&manifest_path, |file| file.write_all(&encoded))?;
        }
        Ok(FrozenArtifact {
            digest: format!("{DIGEST_PREFIX}{hex}"),
            files,
            bytes,
            skipped,
        })
    }

    /// A folder with exactly the artifact's content: `trees/<hex>/`, materialized on first use (or again
    /// if it was deleted) and reused afterwards. Every file is checked against its hash as it is copied.
    pub fn checkout(&self, digest: &str) -> Result<PathBuf> {
        let hex = parse_digest(digest)?;
        let tree = self.root.join("trees").join(hex);
        if tree.is_dir() {
            return Ok(tree);
        }
        let manifest = self.read_manifest(digest, hex)?;
        let staging = self.temp_path("tree");
        let built = self.build_tree(digest, &manifest, &staging);
        if let Err(e) = built {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        if let Err(e) = fs::rename(&staging, &tree) {
            let _ = fs::remove_dir_all(&staging);
            // Someone else (a concurrent checkout) won the race: theirs is identical.
            if !tree.is_dir() {
                return Err(StoreError::io(
                    "cannot move the artifact tree into place at",
                    &tree,
                )(e));
            }
        }
        Ok(tree)
    }

    /// Whether the artifact's manifest is in the store.
    pub fn exists(&self, digest: &str) -> bool {
        parse_digest(digest).is_ok_and(|hex| self.manifest_path(hex).is_file())
    }

    /// The manifest file of an artifact (checked against its digest) and the content blobs it names,
    /// each once, as (sha256 hex, size): what a backup copies of the artifact. Trees are left out:
    /// they are made again from these on first use.
    pub fn files_of(&self, digest: &str) -> Result<(PathBuf, Vec<(String, u64)>)> {
        let hex = parse_digest(digest)?;
        let manifest = self.read_manifest(digest, hex)?;
        Ok((self.manifest_path(hex), blobs_of(&manifest)))
    }

    /// Where the blob of this content lives (it may not exist).
    pub fn blob_file(&self, sha256: &str) -> Result<PathBuf> {
        // The same rule as a digest's: 64 lowercase hex digits, never a path.
        let digest = format!("{DIGEST_PREFIX}{sha256}");
        let hex = parse_digest(&digest)?;
        Ok(self.root.join("blobs").join(hex))
    }

    /// Checks an artifact completely: its manifest against its digest and what a freeze could have
    /// written, and every file's blob against the size and SHA-256 the manifest gives.
    pub fn verify(&self, digest: &str) -> Result<()> {
        let hex = parse_digest(digest)?;
        let manifest = self.read_manifest(digest, hex)?;
        check_manifest(digest, &manifest)?;
        for (sha256, size) in blobs_of(&manifest) {
            let damaged = |detail: String| StoreError::ArtifactCorrupt {
                digest: digest.to_string(),
                detail,
            };
            let path = self.root.join("blobs").join(&sha256);
            let mut file = File::open(&path)
                .map_err(|e| damaged(format!("blob {sha256} cannot be read: {e}")))?;
            let mut hasher = HashingWriter::new(io::sink());
            let read = io::copy(&mut file, &mut hasher)
                .map_err(|e| damaged(format!("blob {sha256} cannot be read: {e}")))?;
            let found = hasher.finish().0;
            if read != size || found != sha256 {
                return Err(damaged(format!(
                    "blob {sha256} holds {read} bytes with SHA-256 {found}; its manifest says {size} bytes with SHA-256 {sha256}"
                )));
            }
        }
        Ok(())
    }

    /// Removes the manifests and trees of every digest not in `keep`, then every blob no kept manifest
    /// references, and leftovers of interrupted freezes and checkouts.
    pub fn prune(&self, keep: &HashSet<String>) -> Result<PruneReport> {
        let keep: HashSet<&str> = keep.iter().filter_map(|d| parse_digest(d).ok()).collect();
        let mut report = PruneReport::default();

        let manifests = self.root.join("manifests");
        for name in list_dir(&manifests)? {
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            if !keep.contains(hex) {
                let path = manifests.join(&name);
                fs::remove_file(&path).map_err(StoreError::io("cannot remove manifest", &path))?;
                report.artifacts.push(format!("{DIGEST_PREFIX}{hex}"));
            }
        }
        report.artifacts.sort();

        let mut referenced = HashSet::new();
        let mut kept = HashSet::new();
        for name in list_dir(&manifests)? {
            let Some(hex) = name.strip_suffix(".json") else {
                continue;
            };
            let manifest = self.read_manifest(&format!("{DIGEST_PREFIX}{hex}"), hex)?;
            referenced.extend(manifest.entries.into_iter().filter_map(|e| match e {
                Entry::File { sha256, .. } => Some(sha256),
                _ => None,
            }));
            kept.insert(hex.to_string());
        }

        let trees = self.root.join("trees");
        for name in list_dir(&trees)? {
            if !kept.contains(&name) {
                let path = trees.join(&name);
                remove_tree(&path)?;
                report.trees += 1;
            }
        }

        let blobs = self.root.join("blobs");
        for name in list_dir(&blobs)? {
            if !referenced.contains(&name) {
                let path = blobs.join(&name);
                let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(StoreError::io("cannot remove blob", &path))?;
                report.blobs += 1;
                report.bytes += size;
            }
        }

        let tmp = self.root.join("tmp");
        for name in list_dir(&tmp)? {
            let path = tmp.join(&name);
            if path.is_dir() {
                remove_tree(&path)?
            } else {
                fs::remove_file(&path).map_err(StoreError::io("cannot remove", &path))?
            }
        }
        Ok(report)
    }

    /// Hashes `path` and copies it into `blobs/` unless that content is already there (an owned
    /// file is linked instead, when the file system allows it). Returns its hash, size and mode.
    fn store_blob(&self, path: &Path, base: &Path, from: Source) -> Result<(String, u64, u32)> {
        let mut source = open_inside(path, base)?;
        let mode = source
            .metadata()
            .map_err(StoreError::io("cannot read", path))?
            .permissions()
            .mode();
        let mut hasher = HashingWriter::new(io::sink());
        let size =
            io::copy(&mut source, &mut hasher).map_err(StoreError::io("cannot read", path))?;
        let hex = hasher.finish().0;
        let blob = self.root.join("blobs").join(&hex);
        if !blob.exists() && from == Source::Owned && link_blob(&source, path, &blob) {
            return Ok((hex, size, mode));
        }
        if !blob.exists() {
            // Copy and hash again: if the file changed since the first read, the blob's name would lie.
            let mut source = open_inside(path, base)?;
            let mut copied = None;
            self.write_atomically(&blob, |file| {
                let mut writer = HashingWriter::new(file);
                io::copy(&mut source, &mut writer)?;
                copied = Some(writer.finish().0);
                Ok(())
            })?;
            if copied.as_deref() != Some(hex.as_str()) {
                let _ = fs::remove_file(&blob);
                return Err(StoreError::ChangedWhileFreezing {
                    path: path.to_path_buf(),
                });
            }
            let _ = fs::set_permissions(&blob, fs::Permissions::from_mode(0o444));
        }
        Ok((hex, size, mode))
    }

    fn build_tree(&self, digest: &str, manifest: &Manifest, staging: &Path) -> Result<()> {
        check_manifest(digest, manifest)?;
        fs::create_dir_all(staging).map_err(StoreError::io("cannot create", staging))?;
        for entry in &manifest.entries {
            let rel = safe_relative(digest, entry.path())?;
            let dest = staging.join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(StoreError::io("cannot create", parent))?;
            }
            match entry {
                Entry::Dir { .. } => {
                    fs::create_dir_all(&dest).map_err(StoreError::io("cannot create", &dest))?
                }
                Entry::Symlink { target, .. } => symlink(target, &dest)
                    .map_err(StoreError::io("cannot create symlink", &dest))?,
                Entry::File {
                    path,
                    sha256,
                    executable,
                    ..
                } => {
                    let blob = self.root.join("blobs").join(sha256);
                    let mut source =
                        File::open(&blob).map_err(|_| StoreError::ArtifactCorrupt {
                            digest: digest.to_string(),
                            detail: format!("the content of {path} (blob {sha256}) is missing"),
                        })?;
                    // `create_new`: never through something already there (a link of the same name).
                    let mut out = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&dest)
                        .map_err(StoreError::io("cannot create", &dest))?;
                    let mut writer = HashingWriter::new(&mut out);
                    io::copy(&mut source, &mut writer)
                        .map_err(StoreError::io("cannot write", &dest))?;
                    if writer.finish().0 != *sha256 {
                        return Err(StoreError::ArtifactCorrupt {
                            digest: digest.to_string(),
                            detail: format!(
                                "the content of {path} (blob {sha256}) does not match its hash"
                            ),
                        });
                    }
                    out.sync_all()
                        .map_err(StoreError::io("cannot write", &dest))?;
                    let mode = if *executable { 0o755 } else { 0o644 };
                    fs::set_permissions(&dest, fs::Permissions::from_mode(mode))
                        .map_err(StoreError::io("cannot set permissions of", &dest))?;
                }
            }
        }
        Ok(())
    }

    fn read_manifest(&self, digest: &str, hex: &str) -> Result<Manifest> {
        let path = self.manifest_path(hex);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::ArtifactNotFound {
                    digest: digest.to_string(),
                });
            }
            Err(e) => return Err(StoreError::io("cannot read manifest", &path)(e)),
        };
        if hex::encode(Sha256::digest(&bytes)) != hex {
            return Err(StoreError::ArtifactCorrupt {
                digest: digest.to_string(),
                detail: "its manifest does not match the digest".into(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StoreError::ArtifactCorrupt {
            digest: digest.to_string(),
            detail: format!("its manifest cannot be read: {e}"),
        })
    }

    fn manifest_path(&self, hex: &str) -> PathBuf {
        self.root.join("manifests").join(format!("{hex}.json"))
    }

    /// A fresh name under `tmp/`, unique across threads and processes.
    fn temp_path(&self, what: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Writes `dest` via a synced temp file and a rename, so readers see all of it or nothing.
    fn write_atomically(
        &self,
        dest: &Path,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<()> {
        let temp = self.temp_path("file");
        let result = (|| {
            let mut file = File::create(&temp)?;
            write(&mut file)?;
            file.sync_all()?;
            fs::rename(&temp, dest)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::io("cannot write", dest)(e));
        }
        Ok(())
    }
}

/// The content blobs a manifest names, each once, as (sha256 hex, size).
fn blobs_of(manifest: &Manifest) -> Vec<(String, u64)> {
    let mut seen = HashSet::new();
    manifest
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::File { sha256, size, .. } if seen.insert(sha256.as_str()) => {
                Some((sha256.clone(), *size))
            }
            _ => None,
        })
        .collect()
}

/// A manifest's bytes as found in a backup: checked against `digest`, parsed and held to what a
/// freeze could have written; the blobs it names, as (sha256 hex, size).
pub(crate) fn manifest_blobs(digest: &str, bytes: &[u8]) -> Result<Vec<(String, u64)>> {
    let hex = parse_digest(digest)?;
    let damaged = |detail: String| StoreError::ArtifactCorrupt {
        digest: digest.to_string(),
        detail,
    };
    if hex::encode(Sha256::digest(bytes)) != hex {
        return Err(damaged("its manifest does not match the digest".into()));
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| damaged(format!("its manifest cannot be read: {e}")))?;
    check_manifest(digest, &manifest)?;
    let blobs = blobs_of(&manifest);
    if let Some((bad, _)) = blobs
        .iter()
        .find(|(h, _)| parse_digest(&format!("{DIGEST_PREFIX}{h}")).is_err())
    {
        return Err(damaged(format!(
            "its manifest names a blob {bad:?} that is not a SHA-256"
        )));
    }
    Ok(blobs)
}

/// `sha256:<64 lowercase hex>` → the hex part. Anything else is refused, so a digest can never name a
/// path outside the store.
fn parse_digest(digest: &str) -> Result<&str> {
    digest
        .strip_prefix(DIGEST_PREFIX)
        .filter(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| StoreError::InvalidDigest(digest.to_string()))
}

/// Opens a file being frozen without following a link in its last component and without blocking
/// (should it have become a FIFO since the walk saw it), and checks it is still a regular file inside
/// `base` (a folder above it swapped for a link would lead elsewhere).
fn open_inside(path: &Path, base: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let changed = || StoreError::ChangedWhileFreezing {
        path: path.to_path_buf(),
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => changed(),
            _ => StoreError::io("cannot read", path)(e),
        })?;
    let meta = file
        .metadata()
        .map_err(StoreError::io("cannot read", path))?;
    if !meta.is_file() {
        return Err(changed());
    }
    // Where the open file really is (Linux names it in /proc; elsewhere this check is skipped).
    if let Ok(real) = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        && !real.starts_with(base)
    {
        return Err(changed());
    }
    Ok(file)
}

/// What a non-file, non-folder, non-link entry is, for the note that says it was left out.
fn special_kind(kind: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device file"
    } else {
        "a special file"
    }
}

/// The links of a manifest, path → target.
fn links_of(entries: &[Entry]) -> HashMap<&str, &str> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Symlink { path, target } => Some((path.as_str(), target.as_str())),
            _ => None,
        })
        .collect()
}

/// At freeze time: every link must lead somewhere inside the folder.
fn check_links_stay_inside(entries: &[Entry]) -> Result<()> {
    check_links(&links_of(entries))
}

/// Every link of `links` (path → target) leads somewhere inside the tree, or the first that does
/// not is the error.
pub(crate) fn check_links(links: &HashMap<&str, &str>) -> Result<()> {
    match tree_rules::escaping_link(links) {
        None => Ok(()),
        Some((path, target, problem)) => Err(StoreError::LinkOutside {
            path: path.to_string(),
            target: target.to_string(),
            why: problem.describe(),
        }),
    }
}

/// At checkout: a manifest is read from disk, so before anything is written it is held to what a
/// freeze could have produced. Every path stays inside the tree, appears once and lies beneath no
/// link, and every link leads somewhere inside the tree.
fn check_manifest(digest: &str, manifest: &Manifest) -> Result<()> {
    let unsafe_entry = |detail: String| StoreError::ArtifactCorrupt {
        digest: digest.to_string(),
        detail,
    };
    let links = links_of(&manifest.entries);
    let mut seen = HashSet::new();
    for entry in &manifest.entries {
        let path = entry.path();
        safe_relative(digest, path)?;
        if !seen.insert(path) {
            return Err(unsafe_entry(format!("{path:?} appears twice")));
        }
        if let Some(link) = tree_rules::link_above(path, |p| links.contains_key(p)) {
            return Err(unsafe_entry(format!(
                "{path:?} lies beneath the symlink {link:?}"
            )));
        }
        if let Entry::Symlink { target, .. } = entry
            && let Err(problem) = tree_rules::destination(&links, path, target)
        {
            return Err(unsafe_entry(format!(
                "unsafe symlink {path:?} -> {target:?}: {}",
                problem.describe()
            )));
        }
    }
    Ok(())
}

/// A manifest path must stay inside the tree (no `..`, no absolute path).
fn safe_relative<'a>(digest: &str, path: &'a str) -> Result<&'a Path> {
    let rel = Path::new(path);
    if rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        && !path.is_empty()
    {
        Ok(rel)
    } else {
        Err(StoreError::ArtifactCorrupt {
            digest: digest.to_string(),
            detail: format!("unsafe path {path:?}"),
        })
    }
}

/// A walk's failure as the crate's error, naming the path it could not read.
pub(crate) fn walk_error(err: walkdir::Error, base: &Path) -> StoreError {
    let path = err.path().unwrap_or(base).to_path_buf();
    let source = err
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("filesystem loop"));
    StoreError::Io {
        action: "cannot read",
        path,
        source,
    }
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io("cannot list", dir))? {
        let entry = entry.map_err(StoreError::io("cannot list", dir))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Removes a tree, first making its folders writable (an app may have made some read-only).
fn remove_tree(path: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
    fs::remove_dir_all(path).map_err(StoreError::io("cannot remove", path))
}

/// Passes bytes through to `inner` while hashing them.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The hex digest of everything written, and the inner writer.
    pub(crate) fn finish(self) -> (String, W) {
        (hex::encode(self.hasher.finalize()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes the owned file at `path` (open as `file`) the blob `blob`: its data synced, as a copied
/// blob's is, then a hard link. `false` when it could not be linked (another file system): the
/// caller copies it.
fn link_blob(file: &File, path: &Path, blob: &Path) -> bool {
    if file.sync_all().is_err() {
        return false;
    }
    match fs::hard_link(path, blob) {
        Ok(()) => {
            let _ = fs::set_permissions(blob, fs::Permissions::from_mode(0o444));
            true
        }
        // Linked by an earlier file with the same content, or by a concurrent freeze.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated() {
        let good = format!("sha256:{}", "0f".repeat(32));
        assert!(parse_digest(&good).is_ok());
        assert!(parse_digest("sha256:../../etc").is_err());
        assert!(parse_digest(&good.to_uppercase()).is_err());
        assert!(parse_digest(&"0f".repeat(32)).is_err());
    }
}
