//! The backup file: one plain tar whose entries are named by where they live in a state dir.
//!
//! ```text
//! slipway-backup.json                 the index, always first: what follows, with sizes and SHA-256s
//! slipway.db                          a consistent snapshot of the state database
//! artifacts/manifests/<sha256>.json   the manifests of the artifacts worth keeping
//! artifacts/blobs/<sha256>            the content they name, each blob once
//! ```
//!
//! Why a tar: it streams (the daemon writes it straight into an HTTP response, the CLI straight to
//! disk), every tool can list and unpack it, and restoring is unpacking a subset of a state dir.
//! Why an index first: a reader knows what must follow and checks each entry as it passes — the
//! database against the index's SHA-256, each manifest against its digest, each blob against its name
//! — then that nothing listed, and no blob a manifest names, is missing. A file cut short or changed
//! by one byte is refused, naming the entry. Nothing in it is a secret: the state store holds none
//! (API tokens and evaluation keys only as hashes), and the daemon's `api-token` file is not included.

use crate::artifact::{HashingWriter, manifest_blobs};
use crate::error::{Result, StoreError};
use serde::{Deserialize, Serialize};
use slipway_core::release::Version;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The version of this layout; a reader refuses a newer one.
pub const FORMAT: u32 = 1;
const INDEX: &str = "slipway-backup.json";
const DB: &str = "slipway.db";
const MANIFESTS: &str = "artifacts/manifests/";
const BLOBS: &str = "artifacts/blobs/";
/// An index or a manifest bigger than this is not one.
const MAX_JSON: u64 = 64 << 20;

/// What a backup holds, written first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupIndex {
    pub format: u32,
    /// `slipway <version>`.
    pub made_by: String,
    /// Unix milliseconds.
    pub made_at_ms: i64,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    pub db: Sum,
    pub apps: Vec<AppContents>,
    /// Digests (`sha256:<hex>`) of the artifacts included.
    pub artifacts: Vec<String>,
    pub blobs: Vec<Sum>,
    /// What could not be included, and why (e.g. an artifact already pruned).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A file's size and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    pub sha256: String,
    pub size: u64,
}

/// One app as the backup holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppContents {
    pub app: String,
    pub stable: Option<Version>,
    /// Releases in its history (all of them: history is in the database).
    pub releases: usize,
    /// The releases whose artifacts are included (they can be rolled back to after a restore).
    pub with_artifacts: Vec<Version>,
}

/// The files that make up a backup, by where they are now.
pub struct BackupParts<'a> {
    pub index: &'a BackupIndex,
    pub db: &'a Path,
    /// (digest, manifest file).
    pub manifests: &'a [(String, PathBuf)],
    /// (sha256 hex, blob file).
    pub blobs: &'a [(String, PathBuf)],
}

/// An entry's role, from its name. Only these names are accepted, so an entry can never name a
/// path outside the folder it is unpacked into.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Index,
    Db,
    Manifest { digest: String },
    Blob { sha256: String },
}

fn is_sha256(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn part_of(name: &str) -> Option<Part> {
    if name == INDEX {
        return Some(Part::Index);
    }
    if name == DB {
        return Some(Part::Db);
    }
    if let Some(hex) = name
        .strip_prefix(MANIFESTS)
        .and_then(|rest| rest.strip_suffix(".json"))
        .filter(|hex| is_sha256(hex))
    {
        return Some(Part::Manifest {
            digest: format!("sha256:{hex}"),
        });
    }
    name.strip_prefix(BLOBS)
        .filter(|hex| is_sha256(hex))
        .map(|hex| Part::Blob { sha256: hex.into() })
}

fn manifest_name(digest: &str) -> String {
    format!(
        "{MANIFESTS}{}.json",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

/// The size and SHA-256 of a file.
pub fn sum_of(path: &Path) -> Result<Sum> {
    let mut file = File::open(path).map_err(StoreError::io("cannot read", path))?;
    let mut hasher = HashingWriter::new(io::sink());
    let size = io::copy(&mut file, &mut hasher).map_err(StoreError::io("cannot read", path))?;
    Ok(Sum {
        sha256: hasher.finish().0,
        size,
    })
}

/// Writes the backup as a tar into `out`: the index, the database, the manifests, the blobs.
pub fn write_backup(out: impl Write, parts: &BackupParts<'_>) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mtime = (parts.index.made_at_ms.max(0) / 1000) as u64;
    let io_err = |what: &str| {
        let what = what.to_string();
        move |e: io::Error| StoreError::Backup(format!("cannot write {what}: {e}"))
    };
    let index = serde_json::to_vec_pretty(parts.index)
        .map_err(|e| StoreError::corrupt("backup index", e))?;
    tar.append_data(
        &mut header(index.len() as u64, 0o600, mtime),
        INDEX,
        index.as_slice(),
    )
    .map_err(io_err(INDEX))?;
    let mut append = |name: &str, path: &Path, mode: u32| -> Result<()> {
        let file = File::open(path).map_err(StoreError::io("cannot read", path))?;
        let size = file
            .metadata()
            .map_err(StoreError::io("cannot read", path))?
            .len();
        tar.append_data(&mut header(size, mode, mtime), name, file)
            .map_err(io_err(name))
    };
    append(DB, parts.db, 0o600)?;
    for (digest, path) in parts.manifests {
        append(&manifest_name(digest), path, 0o644)?;
    }
    for (sha256, path) in parts.blobs {
        append(&format!("{BLOBS}{sha256}"), path, 0o444)?;
    }
    tar.into_inner()
        .and_then(|mut out| out.flush())
        .map_err(io_err("the end of the backup"))?;
    Ok(())
}

fn header(size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h
}

/// Where a checked backup's entries go.
pub trait Unpack {
    /// `name` is the entry's path relative to a state dir (never the index); `content` is its bytes.
    fn entry(&mut self, name: &str, content: &mut dyn Read) -> io::Result<()>;
}

/// Reads every byte and keeps nothing: a backup checked without unpacking it.
pub struct CheckOnly;

impl Unpack for CheckOnly {
    fn entry(&mut self, _name: &str, content: &mut dyn Read) -> io::Result<()> {
        io::copy(content, &mut io::sink()).map(|_| ())
    }
}

/// Unpacks into a folder (the state dir being restored), blobs read-only as the artifact store keeps
/// them. The entries' names were checked before they get here.
pub struct IntoFolder(pub PathBuf);

impl Unpack for IntoFolder {
    fn entry(&mut self, name: &str, content: &mut dyn Read) -> io::Result<()> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dest = self.0.join(name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&dest)?;
        io::copy(content, &mut file)?;
        file.sync_all()?;
        if name.starts_with(BLOBS) {
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o444))?;
        }
        Ok(())
    }
}

/// Counts and hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.write_all(&buf[..n])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads a backup from `input`, checking every entry as it passes (see the module's docs) and
/// handing it to `unpack`; returns the index once everything it lists was found sound. The first
/// problem ends the read with an error that names the entry.
pub fn read_backup(input: impl Read, unpack: &mut dyn Unpack) -> Result<BackupIndex> {
    let bad = |detail: String| StoreError::Backup(detail);
    let mut archive = tar::Archive::new(input);
    let mut entries = archive.entries().map_err(|e| {
        bad(format!(
            "it cannot be read as a tar archive ({e}); is it a file `slipway backup` wrote?"
        ))
    })?;
    let mut next = || -> Result<Option<(String, tar::Entry<'_, _>)>> {
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let entry = entry.map_err(|e| {
            bad(format!(
                "it cannot be read as a tar archive ({e}); it may be cut short"
            ))
        })?;
        let name = entry
            .path()
            .map_err(|e| bad(format!("an entry has an unreadable name: {e}")))?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("{name} is not a regular file")));
        }
        Ok(Some((name, entry)))
    };

    let index: BackupIndex = match next()? {
        Some((name, entry)) if name == INDEX => {
            let mut bytes = Vec::new();
            entry
                .take(MAX_JSON)
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("{INDEX} cannot be read: {e}")))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| bad(format!("its index {INDEX} is not valid: {e}")))?
        }
        Some((name, _)) => {
            return Err(bad(format!(
                "it starts with {name}, not with the index {INDEX}; is it a file `slipway backup` wrote?"
            )));
        }
        None => return Err(bad("it is empty".into())),
    };
    if index.format > FORMAT {
        return Err(bad(format!(
            "it has format {} and this slipway reads at most format {FORMAT}; restore it with the \
             slipway that made it ({}) or a newer one",
            index.format, index.made_by
        )));
    }

    let listed_blobs: BTreeMap<&str, u64> = index
        .blobs
        .iter()
        .map(|b| (b.sha256.as_str(), b.size))
        .collect();
    let listed_manifests: BTreeSet<&str> = index.artifacts.iter().map(String::as_str).collect();
    let mut db_seen = false;
    let mut manifests_seen = BTreeSet::new();
    let mut blobs_seen = BTreeSet::new();
    // Blob → the artifact that names it and the size it says, from every manifest read.
    let mut named: BTreeMap<String, (String, u64)> = BTreeMap::new();

    while let Some((name, entry)) = next()? {
        let size = entry.header().size().unwrap_or(0);
        let part = part_of(&name).ok_or_else(|| {
            bad(format!(
                "it holds {name}, which no slipway backup holds; is it a file `slipway backup` wrote?"
            ))
        })?;
        let unpack_err = |e: io::Error| bad(format!("{name} cannot be read or unpacked: {e}"));
        match part {
            Part::Index => return Err(bad(format!("it holds {INDEX} twice"))),
            Part::Db => {
                if std::mem::replace(&mut db_seen, true) {
                    return Err(bad(format!("it holds {DB} twice")));
                }
                let found = pass(entry, &name, unpack).map_err(unpack_err)?;
                if found != index.db {
                    return Err(bad(format!(
                        "{DB} holds {} bytes with SHA-256 {} but the index says {} bytes with SHA-256 \
                         {}: the file was changed or damaged after it was made",
                        found.size, found.sha256, index.db.size, index.db.sha256
                    )));
                }
            }
            Part::Manifest { digest } => {
                if !listed_manifests.contains(digest.as_str()) {
                    return Err(bad(format!(
                        "it holds {name}, which its index does not list"
                    )));
                }
                if !manifests_seen.insert(digest.clone()) {
                    return Err(bad(format!("it holds {name} twice")));
                }
                if size > MAX_JSON {
                    return Err(bad(format!("{name} is too big to be a manifest")));
                }
                let mut bytes = Vec::new();
                { entry }.read_to_end(&mut bytes).map_err(unpack_err)?;
                let blobs = manifest_blobs(&digest, &bytes).map_err(|e| {
                    bad(format!(
                        "{name}: {e} — the file was changed or damaged after it was made"
                    ))
                })?;
                for (sha256, size) in blobs {
                    named.insert(sha256, (digest.clone(), size));
                }
                unpack
                    .entry(&name, &mut bytes.as_slice())
                    .map_err(unpack_err)?;
            }
            Part::Blob { sha256 } => {
                let Some(&listed) = listed_blobs.get(sha256.as_str()) else {
                    return Err(bad(format!(
                        "it holds {name}, which its index does not list"
                    )));
                };
                if !blobs_seen.insert(sha256.clone()) {
                    return Err(bad(format!("it holds {name} twice")));
                }
                let found = pass(entry, &name, unpack).map_err(unpack_err)?;
                if found.sha256 != sha256 || found.size != listed {
                    return Err(bad(format!(
                        "blob {sha256} ({name}) holds {} bytes with SHA-256 {}: the file was changed or \
                         damaged after it was made",
                        found.size, found.sha256
                    )));
                }
            }
        }
    }

    let cut_short = "it is incomplete (cut short while it was written or copied?)";
    if !db_seen {
        return Err(bad(format!("{cut_short}: {DB} is missing")));
    }
    if let Some(missing) = listed_manifests
        .iter()
        .find(|d| !manifests_seen.contains(**d))
    {
        return Err(bad(format!(
            "{cut_short}: the manifest of artifact {missing} is missing"
        )));
    }
    if let Some(missing) = listed_blobs.keys().find(|b| !blobs_seen.contains(**b)) {
        return Err(bad(format!("{cut_short}: blob {missing} is missing")));
    }
    for (sha256, (digest, size)) in &named {
        if !blobs_seen.contains(sha256) {
            return Err(bad(format!(
                "artifact {digest} names blob {sha256}, which it does not hold"
            )));
        }
        if listed_blobs.get(sha256.as_str()) != Some(size) {
            return Err(bad(format!(
                "artifact {digest} says blob {sha256} holds {size} bytes; the blob does not"
            )));
        }
    }
    Ok(index)
}

/// Hands an entry to `unpack` through a hashing reader; what it did not read is read here, so the
/// sum covers the whole entry.
fn pass(entry: impl Read, name: &str, unpack: &mut dyn Unpack) -> io::Result<Sum> {
    let mut reader = HashingReader {
        inner: entry,
        hasher: HashingWriter::new(io::sink()),
        read: 0,
    };
    unpack.entry(name, &mut reader)?;
    io::copy(&mut reader, &mut io::sink())?;
    Ok(Sum {
        size: reader.read,
        sha256: reader.hasher.finish().0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArtifactStore;

    #[test]
    fn only_known_names_are_parts() {
        let hex = "a".repeat(64);
        assert_eq!(part_of("slipway-backup.json"), Some(Part::Index));
        assert_eq!(part_of("slipway.db"), Some(Part::Db));
        assert_eq!(
            part_of(&format!("artifacts/manifests/{hex}.json")),
            Some(Part::Manifest {
                digest: format!("sha256:{hex}")
            })
        );
        assert_eq!(
            part_of(&format!("artifacts/blobs/{hex}")),
            Some(Part::Blob {
                sha256: hex.clone()
            })
        );
        for bad in [
            "api-token".to_string(),
            "../slipway.db".into(),
            "/slipway.db".into(),
            format!("artifacts/blobs/../../{hex}"),
            format!("artifacts/blobs/{}", "A".repeat(64)),
            format!("artifacts/trees/{hex}"),
            format!("artifacts/manifests/{hex}"),
        ] {
            assert_eq!(part_of(&bad), None, "{bad}");
        }
    }

    /// A backup of one artifact (two files) and a fake database, as bytes.
    fn a_backup(dir: &Path) -> (Vec<u8>, BackupIndex) {
        let src = dir.join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("a.txt"), "alpha").unwrap();
        fs::write(src.join("b.txt"), "bravo bravo").unwrap();
        let store = ArtifactStore::open(&dir.join("artifacts")).unwrap();
        let frozen = store.freeze(&src, &[], &[]).unwrap();
        let (manifest, blob_list) = store.files_of(&frozen.digest).unwrap();
        let db = dir.join("db");
        fs::write(&db, "not really a database").unwrap();
        let blobs: Vec<(String, PathBuf)> = blob_list
            .iter()
            .map(|(h, _)| (h.clone(), store.blob_file(h).unwrap()))
            .collect();
        let index = BackupIndex {
            format: FORMAT,
            made_by: "slipway test".into(),
            made_at_ms: 1_700_000_000_000,
            schema_version: 4,
            db: sum_of(&db).unwrap(),
            apps: Vec::new(),
            artifacts: vec![frozen.digest.clone()],
            blobs: blob_list
                .iter()
                .map(|(h, s)| Sum {
                    sha256: h.clone(),
                    size: *s,
                })
                .collect(),
            notes: Vec::new(),
        };
        let mut out = Vec::new();
        write_backup(
            &mut out,
            &BackupParts {
                index: &index,
                db: &db,
                manifests: &[(frozen.digest, manifest)],
                blobs: &blobs,
            },
        )
        .unwrap();
        (out, index)
    }

    #[test]
    fn a_backup_reads_back_and_unpacks_into_a_working_artifact_store() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, index) = a_backup(dir.path());
        assert_eq!(
            read_backup(bytes.as_slice(), &mut CheckOnly).unwrap(),
            index
        );
        let into = dir.path().join("restored");
        let read = read_backup(bytes.as_slice(), &mut IntoFolder(into.clone())).unwrap();
        assert_eq!(read, index);
        assert_eq!(
            fs::read(into.join("slipway.db")).unwrap(),
            b"not really a database"
        );
        let store = ArtifactStore::open(&into.join("artifacts")).unwrap();
        store.verify(&index.artifacts[0]).unwrap();
        let tree = store.checkout(&index.artifacts[0]).unwrap();
        assert_eq!(
            fs::read_to_string(tree.join("b.txt")).unwrap(),
            "bravo bravo"
        );
    }

    /// Where `needle` is in `bytes`.
    fn find(bytes: &[u8], needle: &[u8]) -> usize {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    #[test]
    fn one_changed_byte_in_a_blob_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, _) = a_backup(dir.path());
        let at = find(&bytes, b"bravo bravo");
        bytes[at] ^= 0x01;
        let err = read_backup(bytes.as_slice(), &mut CheckOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains("artifacts/blobs/"), "{err}");
        assert!(err.contains("changed or damaged"), "{err}");
    }

    #[test]
    fn a_changed_database_or_a_cut_short_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _) = a_backup(dir.path());
        let mut changed = bytes.clone();
        let at = find(&changed, b"not really");
        changed[at] = b'N';
        let err = read_backup(changed.as_slice(), &mut CheckOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains("slipway.db holds"), "{err}");
        // Cut right after the database: manifests and blobs are missing.
        let db_end = find(&bytes, b"not really a database") + 512;
        let err = read_backup(&bytes[..db_end], &mut CheckOnly)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("incomplete") || err.contains("cut short"),
            "{err}"
        );
        // Not a backup at all.
        let err = read_backup(&b"hello"[..], &mut CheckOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a sound slipway backup"), "{err}");
    }

    #[test]
    fn a_newer_format_is_refused_with_who_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _) = a_backup(dir.path());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.contains("\"format\": 1"));
        let mut newer = bytes.clone();
        let at = find(&newer, b"\"format\": 1");
        newer[at + "\"format\": ".len()] = b'9';
        // The tar header's checksum does not cover the data, so this reads as a format-9 index.
        let err = read_backup(newer.as_slice(), &mut CheckOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains("format 9"), "{err}");
        assert!(err.contains("slipway test"), "{err}");
    }
}
