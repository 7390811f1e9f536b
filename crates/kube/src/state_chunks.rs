//! How the controller's state (one SQLite snapshot) is laid out in Secrets, pure: cut into chunks
//! that each fit a Secret, in one of two slots, and a manifest naming the slot that is complete.
//!
//! Why two slots: a leader writes the slot the manifest does *not* name, then the manifest. A
//! leader killed halfway leaves the manifest on the previous, whole slot; a reader never sees a
//! half-written state. Why Secrets: the state holds secret material (tokens, `[secrets]` values).
//! Why a digest in the manifest: a chunk a stale leader overwrote after the manifest moved is caught.
//! Why gzip: a SQLite file is mostly empty pages and repeated JSON, so the same Secrets hold
//! several times the state (a manifest without `encoding`, an older leader's, is read as written).
//! `state_secrets.rs` does the reads and writes.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Raw bytes per chunk: base64 makes it ~683 KiB in the Secret, under the API server's 1 MiB object
/// limit with room for metadata.
pub const CHUNK_BYTES: usize = 512 * 1024;
/// Chunks per slot the Role names (resourceNames can't take a pattern): up to 8 MiB of state,
/// gzipped.
pub const MAX_CHUNKS: usize = 16;
/// The most a stored state may unpack to (a bound on reading back a damaged or hostile copy).
const MAX_UNPACKED: u64 = 1 << 30;

/// One of the two alternating places a snapshot is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// The manifest Secret's name for the controller `base` (its Lease's name).
pub fn manifest_name(base: &str) -> String {
    format!("{base}-state")
}

/// The name of chunk `index` of `slot`.
pub fn chunk_name(base: &str, slot: Slot, index: usize) -> String {
    format!("{base}-state-{}-{index}", slot.letter())
}

/// Every Secret name the state may use, for the Role's resourceNames.
pub fn all_names(base: &str) -> Vec<String> {
    let mut names = vec![manifest_name(base)];
    for slot in [Slot::A, Slot::B] {
        names.extend((0..MAX_CHUNKS).map(|i| chunk_name(base, slot, i)));
    }
    names
}

/// Which slot holds the last complete state, how many chunks, their digest, and whether they are
/// gzipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub slot: Slot,
    pub chunks: usize,
    /// Of the bytes stored (the chunks joined).
    pub sha256: String,
    pub gzip: bool,
}

/// The key each chunk's bytes are under in its Secret.
pub const CHUNK_KEY: &str = "chunk";

impl Manifest {
    /// `snapshot` gzipped for `slot`: its manifest, and the bytes to [`split`] into the chunks.
    pub fn pack(snapshot: &[u8], slot: Slot) -> Result<(Manifest, Vec<u8>), String> {
        let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
        let stored = gzip
            .write_all(snapshot)
            .and_then(|()| gzip.finish())
            .map_err(|e| format!("cannot compress the state: {e}"))?;
        let chunks = split(&stored).len();
        if chunks > MAX_CHUNKS {
            return Err(format!(
                "the state is {} KiB ({} KiB gzipped), more than the {} KiB the state Secrets hold",
                snapshot.len() / 1024,
                stored.len() / 1024,
                MAX_CHUNKS * CHUNK_BYTES / 1024
            ));
        }
        let manifest = Manifest {
            slot,
            chunks,
            sha256: hex::encode(Sha256::digest(&stored)),
            gzip: true,
        };
        Ok((manifest, stored))
    }

    /// As the manifest Secret's data.
    pub fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = BTreeMap::from([
            ("slot".to_owned(), self.slot.letter().as_bytes().to_vec()),
            ("chunks".to_owned(), self.chunks.to_string().into_bytes()),
            ("sha256".to_owned(), self.sha256.clone().into_bytes()),
        ]);
        if self.gzip {
            data.insert("encoding".to_owned(), b"gzip".to_vec());
        }
        data
    }

    /// From the manifest Secret's data.
    pub fn from_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Manifest, String> {
        let field = |key: &str| {
            data.get(key)
                .and_then(|v| std::str::from_utf8(v).ok())
                .ok_or_else(|| format!("the state manifest has no {key}"))
        };
        let slot = match field("slot")? {
            "a" => Slot::A,
            "b" => Slot::B,
            other => return Err(format!("the state manifest names no slot {other:?}")),
        };
        let chunks = field("chunks")?
            .parse()
            .map_err(|_| "the state manifest's chunk count is not a number".to_owned())?;
        let gzip = match data.get("encoding").map(Vec::as_slice) {
            None => false,
            Some(b"gzip") => true,
            Some(other) => {
                return Err(format!(
                    "the state manifest's encoding {:?} is not one this slipway reads: upgrade it",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        Ok(Manifest {
            slot,
            chunks,
            sha256: field("sha256")?.to_owned(),
            gzip,
        })
    }

    /// The snapshot again from its chunks, in order; refused if they are not what was written.
    pub fn join(&self, chunks: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        if chunks.len() != self.chunks {
            return Err(format!(
                "the state has {} chunks, its manifest says {}",
                chunks.len(),
                self.chunks
            ));
        }
        let stored = chunks.concat();
        if hex::encode(Sha256::digest(&stored)) != self.sha256 {
            return Err("the state's chunks do not match its manifest's digest".to_owned());
        }
        if !self.gzip {
            return Ok(stored);
        }
        let mut snapshot = Vec::new();
        GzDecoder::new(&stored[..])
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut snapshot)
            .map_err(|e| format!("the state does not unpack: {e}"))?;
        if snapshot.len() as u64 > MAX_UNPACKED {
            return Err("the state unpacks to more than 1 GiB".to_owned());
        }
        Ok(snapshot)
    }
}

/// The snapshot cut into chunks (at least one, so an empty one still has a slot).
pub fn split(snapshot: &[u8]) -> Vec<&[u8]> {
    if snapshot.is_empty() {
        return vec![snapshot];
    }
    snapshot.chunks(CHUNK_BYTES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that do not compress (so sizes stay predictable), `len` of them.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_snapshot_goes_through_chunks_and_its_manifest_unchanged() {
        let snapshot = noise(CHUNK_BYTES * 2 + 17);
        let (manifest, stored) = Manifest::pack(&snapshot, Slot::B).unwrap();
        let chunks: Vec<Vec<u8>> = split(&stored).iter().map(|c| c.to_vec()).collect();
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        let read = Manifest::from_data(&manifest.to_data()).unwrap();
        assert_eq!(read, manifest);
        assert_eq!(read.join(&chunks).unwrap(), snapshot);
    }

    #[test]
    fn a_state_compresses_and_an_older_leader_s_raw_copy_is_still_read() {
        // Like a SQLite file: mostly zeroed pages.
        let mut snapshot = vec![0u8; 6 * CHUNK_BYTES];
        snapshot[..4096].copy_from_slice(&noise(4096));
        let (manifest, stored) = Manifest::pack(&snapshot, Slot::A).unwrap();
        assert_eq!(
            manifest.chunks, 1,
            "3 MiB of mostly empty pages fit one chunk"
        );
        assert!(stored.len() < snapshot.len() / 50);
        // A manifest written before compression: no `encoding`, the digest of the raw bytes.
        let mut raw = manifest.to_data();
        raw.remove("encoding");
        raw.insert(
            "sha256".into(),
            hex::encode(Sha256::digest(&snapshot)).into_bytes(),
        );
        raw.insert("chunks".into(), b"6".to_vec());
        let old = Manifest::from_data(&raw).unwrap();
        assert!(!old.gzip);
        let chunks: Vec<Vec<u8>> = split(&snapshot).iter().map(|c| c.to_vec()).collect();
        assert_eq!(old.join(&chunks).unwrap(), snapshot);
        raw.insert("encoding".into(), b"zstd".to_vec());
        assert!(Manifest::from_data(&raw).unwrap_err().contains("zstd"));
    }

    #[test]
    fn a_missing_or_changed_chunk_is_refused() {
        let snapshot = noise(CHUNK_BYTES + 1);
        let (manifest, stored) = Manifest::pack(&snapshot, Slot::A).unwrap();
        let mut chunks: Vec<Vec<u8>> = split(&stored).iter().map(|c| c.to_vec()).collect();
        assert_eq!(chunks.len(), 2);
        assert!(manifest.join(&chunks[..1]).is_err());
        chunks[1][0] ^= 1;
        assert!(manifest.join(&chunks).is_err());
    }

    #[test]
    fn slots_alternate_and_every_name_is_listed_for_the_role() {
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(chunk_name("slipway", Slot::B, 3), "slipway-state-b-3");
        let names = all_names("slipway");
        assert_eq!(names.len(), 1 + 2 * MAX_CHUNKS);
        assert!(names.contains(&"slipway-state".to_owned()));
        assert!(names.contains(&chunk_name("slipway", Slot::A, MAX_CHUNKS - 1)));
    }

    #[test]
    fn a_state_too_big_for_the_named_secrets_is_refused() {
        let snapshot = noise(CHUNK_BYTES * MAX_CHUNKS + 1);
        let err = Manifest::pack(&snapshot, Slot::A).unwrap_err();
        assert!(err.contains("gzipped"), "{err}");
    }
}
