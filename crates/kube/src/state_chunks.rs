//! How the controller's state (one SQLite snapshot) is laid out in Secrets, pure: cut into chunks
//! that each fit a Secret, in one of two slots, and a manifest naming the slot that is complete.
//!
//! Why two slots: a leader writes the slot the manifest does *not* name, then the manifest. A
//! leader killed halfway leaves the manifest on the previous, whole slot; a reader never sees a
//! half-written state. Why Secrets: the state holds secret material (tokens, `[secrets]` values).
//! Why a digest in the manifest: a chunk a stale leader overwrote after the manifest moved is caught.
//! `state_secrets.rs` does the reads and writes.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Raw bytes per chunk: base64 makes it ~683 KiB in the Secret, under the API server's 1 MiB object
/// limit with room for metadata.
pub const CHUNK_BYTES: usize = 512 * 1024;
/// Chunks per slot the Role names (resourceNames can't take a pattern): up to 8 MiB of state.
pub const MAX_CHUNKS: usize = 16;

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

/// Which slot holds the last complete state, how many chunks, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub slot: Slot,
    pub chunks: usize,
    pub sha256: String,
}

/// The key each chunk's bytes are under in its Secret.
pub const CHUNK_KEY: &str = "chunk";

impl Manifest {
    /// The manifest for `snapshot` written to `slot`.
    pub fn of(snapshot: &[u8], slot: Slot) -> Result<Manifest, String> {
        let chunks = split(snapshot).len();
        if chunks > MAX_CHUNKS {
            return Err(format!(
                "the state is {} KiB, more than the {} KiB the state Secrets hold",
                snapshot.len() / 1024,
                MAX_CHUNKS * CHUNK_BYTES / 1024
            ));
        }
        Ok(Manifest {
            slot,
            chunks,
            sha256: hex::encode(Sha256::digest(snapshot)),
        })
    }

    /// As the manifest Secret's data.
    pub fn to_data(&self) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("slot".to_owned(), self.slot.letter().as_bytes().to_vec()),
            ("chunks".to_owned(), self.chunks.to_string().into_bytes()),
            ("sha256".to_owned(), self.sha256.clone().into_bytes()),
        ])
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
        Ok(Manifest {
            slot,
            chunks,
            sha256: field("sha256")?.to_owned(),
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
        let snapshot = chunks.concat();
        if hex::encode(Sha256::digest(&snapshot)) != self.sha256 {
            return Err("the state's chunks do not match its manifest's digest".to_owned());
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

    #[test]
    fn a_snapshot_goes_through_chunks_and_its_manifest_unchanged() {
        let snapshot: Vec<u8> = (0..CHUNK_BYTES * 2 + 17).map(|i| (i % 251) as u8).collect();
        let chunks: Vec<Vec<u8>> = split(&snapshot).iter().map(|c| c.to_vec()).collect();
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        let manifest = Manifest::of(&snapshot, Slot::B).unwrap();
        let read = Manifest::from_data(&manifest.to_data()).unwrap();
        assert_eq!(read, manifest);
        assert_eq!(read.join(&chunks).unwrap(), snapshot);
    }

    #[test]
    fn a_missing_or_changed_chunk_is_refused() {
        let snapshot = vec![7u8; CHUNK_BYTES + 1];
        let manifest = Manifest::of(&snapshot, Slot::A).unwrap();
        let mut chunks: Vec<Vec<u8>> = split(&snapshot).iter().map(|c| c.to_vec()).collect();
        assert!(manifest.join(&chunks[..1]).is_err());
        chunks[1][0] = 8;
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
        let snapshot = vec![0u8; CHUNK_BYTES * MAX_CHUNKS + 1];
        assert!(Manifest::of(&snapshot, Slot::A).is_err());
    }
}
