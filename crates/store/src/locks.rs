//! Named locks (e.g. `release-phase:web`, `rollout:web`), recorded with who holds them and which daemon
//! took them. A daemon gets a fresh id each start, so after a crash the new daemon can find the locks its
//! predecessor left behind and resume or clean up what they protected, instead of waiting forever.

use crate::error::{Result, StoreError};
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub name: String,
    /// What holds it, for humans: e.g. `rollout #12` or `release phase of v4`.
    pub holder: String,
    /// The daemon instance that took it.
    pub daemon_id: String,
    /// Unix milliseconds.
    pub since_ms: i64,
}

impl Tx<'_> {
    /// Takes lock `name`, or fails with `LockHeld` if anyone holds it (locks are not re-entrant).
    pub fn acquire_lock(
        &self,
        name: &str,
        holder: &str,
        daemon_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        if let Some(held) = self.lock(name)? {
            return Err(StoreError::LockHeld {
                name: held.name,
                holder: held.holder,
                since_ms: held.since_ms,
            });
        }
        self.conn.execute(
            "INSERT INTO locks (name, holder, daemon_id, since_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, holder, daemon_id, now_ms],
        )?;
        Ok(())
    }

    /// Releases lock `name`; releasing a lock nobody holds is a no-op.
    pub fn release_lock(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM locks WHERE name = ?1", [name])?;
        Ok(())
    }

    pub fn lock(&self, name: &str) -> Result<Option<Lock>> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, holder, daemon_id, since_ms FROM locks WHERE name = ?1",
                [name],
                read_lock,
            )
            .optional()?)
    }

    /// Re-assigns to `daemon_id` every lock taken by another daemon id, and returns them (as now held).
    pub fn recover_locks(&self, daemon_id: &str) -> Result<Vec<Lock>> {
        let mut stmt = self.conn.prepare(
            "UPDATE locks SET daemon_id = ?1 WHERE daemon_id != ?1
             RETURNING name, holder, daemon_id, since_ms",
        )?;
        let mut locks = stmt
            .query_map([daemon_id], read_lock)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        locks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(locks)
    }
}

fn read_lock(row: &rusqlite::Row<'_>) -> rusqlite::Result<Lock> {
    Ok(Lock {
        name: row.get(0)?,
        holder: row.get(1)?,
        daemon_id: row.get(2)?,
        since_ms: row.get(3)?,
    })
}

impl Store {
    /// Takes lock `name`; `Err(StoreError::LockHeld { name, holder, since_ms })` if it is held.
    pub fn acquire_lock(
        &self,
        name: &str,
        holder: &str,
        daemon_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.transaction(|tx| tx.acquire_lock(name, holder, daemon_id, now_ms))
    }

    pub fn release_lock(&self, name: &str) -> Result<()> {
        self.transaction(|tx| tx.release_lock(name))
    }

    pub fn lock(&self, name: &str) -> Result<Option<Lock>> {
        self.read(|tx| tx.lock(name))
    }

    /// Locks taken by another daemon id (a daemon that crashed): re-assigned to `daemon_id` and
    /// returned, so the new daemon can resume or clean up what they protected.
    pub fn recover_locks(&self, daemon_id: &str) -> Result<Vec<Lock>> {
        self.transaction(|tx| tx.recover_locks(daemon_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::open_temp;

    #[test]
    fn held_lock_is_refused_with_its_holder() {
        let (_dir, store) = open_temp();
        store
            .acquire_lock("rollout:web", "rollout #1", "daemon-a", 100)
            .unwrap();
        let err = store
            .acquire_lock("rollout:web", "rollout #2", "daemon-a", 200)
            .unwrap_err();
        match err {
            StoreError::LockHeld {
                name,
                holder,
                since_ms,
            } => {
                assert_eq!(
                    (name.as_str(), holder.as_str(), since_ms),
                    ("rollout:web", "rollout #1", 100)
                );
            }
            other => panic!("expected LockHeld, got {other}"),
        }
        store.release_lock("rollout:web").unwrap();
        assert!(store.lock("rollout:web").unwrap().is_none());
        store
            .acquire_lock("rollout:web", "rollout #2", "daemon-a", 300)
            .unwrap();
        store.release_lock("never-taken").unwrap();
    }

    #[test]
    fn locks_of_a_crashed_daemon_are_recovered() {
        let (_dir, store) = open_temp();
        store
            .acquire_lock(
                "release-phase:web",
                "release phase of v3",
                "daemon-old",
                100,
            )
            .unwrap();
        store
            .acquire_lock("rollout:api", "rollout #7", "daemon-old", 110)
            .unwrap();
        store
            .acquire_lock("rollout:web", "rollout #8", "daemon-new", 120)
            .unwrap();

        let recovered = store.recover_locks("daemon-new").unwrap();
        let names: Vec<_> = recovered.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["release-phase:web", "rollout:api"]);
        assert!(recovered.iter().all(|l| l.daemon_id == "daemon-new"));
        assert_eq!(recovered[0].holder, "release phase of v3");
        assert_eq!(recovered[0].since_ms, 100);
        assert_eq!(
            store.lock("rollout:api").unwrap().unwrap().daemon_id,
            "daemon-new"
        );
        assert!(
            store.recover_locks("daemon-new").unwrap().is_empty(),
            "nothing left to recover"
        );
    }
}
