//! A consistent copy of the live database while the daemon keeps writing, and read-only access to
//! such a copy (a backup being made or restored).
//!
//! Why SQLite's online backup API and not a file copy: the database lives in WAL mode, so its state
//! is the main file *plus* the `-wal` beside it, and a copy of either taken while a transaction
//! commits can be torn. The backup API reads pages through SQLite itself, from one read transaction
//! on a connection of its own: in WAL mode that reader sees one snapshot and never blocks the
//! daemon's writers, which carry on meanwhile.

use crate::error::{Result, StoreError};
use crate::store::{MIGRATIONS, Store};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a snapshot waits for a lock it cannot take (another process holding the database in a
/// non-WAL mode, e.g. `sqlite3` running a VACUUM by hand).
const BUSY_FOR: Duration = Duration::from_secs(10);

impl Store {
    /// Writes a consistent copy of the database to `dest` (a new file) with SQLite's online backup
    /// API. The copy is a standalone file in rollback-journal mode: nothing beside it is needed.
    pub fn snapshot_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(StoreError::io("will not overwrite", dest)(
                std::io::ErrorKind::AlreadyExists.into(),
            ));
        }
        let open_err = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        let source = Connection::open(&self.path).map_err(open_err)?;
        source.busy_timeout(BUSY_FOR).map_err(open_err)?;
        let mut copy = Connection::open(dest).map_err(|source| StoreError::Open {
            path: dest.to_path_buf(),
            source,
        })?;
        {
            let backup = Backup::new(&source, &mut copy)?;
            let until = Instant::now() + BUSY_FOR;
            // -1: every page in one step, i.e. from one read transaction — one consistent snapshot.
            // (Steps of a few pages each would restart whenever another connection writes.)
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::Busy | StepResult::Locked | StepResult::More
                        if Instant::now() < until =>
                    {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        return Err(StoreError::SnapshotLocked {
                            secs: BUSY_FOR.as_secs(),
                        });
                    }
                }
            }
        }
        // The copy carries the source's WAL flag in its header; a single file is what a backup wants.
        let _: String = copy.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))?;
        copy.close().map_err(|(_, e)| StoreError::Sqlite(e))?;
        Ok(())
    }

    /// Opens a copy of a database (a snapshot, a restored backup) read-only, after checking that this
    /// slipway knows its schema. Nothing is migrated: the file is left exactly as it is.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(open_err)?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        Ok(Store::over(conn, path))
    }

    /// The schema version (`PRAGMA user_version`: how many migrations were applied).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// What `PRAGMA integrity_check` finds: empty when the database is sound.
    pub fn integrity_problems(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let found = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(found.into_iter().filter(|line| line != "ok").collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::new_release;
    use crate::{Store, StoreError};
    use std::sync::Arc;

    #[test]
    fn a_snapshot_is_one_file_with_everything_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.db")).unwrap();
        store.create_release(new_release("web")).unwrap();
        store.set_stable("web", 1).unwrap();
        store.add_event("web", Some(1), "k", "m", 1).unwrap();
        let copy = dir.path().join("copy.db");
        store.snapshot_to(&copy).unwrap();
        assert!(!dir.path().join("copy.db-wal").exists());
        let read = Store::open_read_only(&copy).unwrap();
        assert_eq!(read.stable("web").unwrap(), Some(1));
        assert_eq!(read.events(None, 0, 10).unwrap().len(), 1);
        assert!(read.integrity_problems().unwrap().is_empty());
        assert_eq!(
            read.schema_version().unwrap(),
            store.schema_version().unwrap()
        );
        // Read-only means read-only.
        assert!(read.add_event("web", None, "k", "m", 2).is_err());
        // An existing file is never overwritten.
        assert!(store.snapshot_to(&copy).is_err());
    }

    #[test]
    fn writers_carry_on_while_snapshots_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("live.db")).unwrap());
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    store.add_event("web", None, "k", "m", i).unwrap();
                }
            })
        };
        let mut seen = Vec::new();
        for n in 0..5 {
            let copy = dir.path().join(format!("copy-{n}.db"));
            store.snapshot_to(&copy).unwrap();
            let read = Store::open_read_only(&copy).unwrap();
            assert!(read.integrity_problems().unwrap().is_empty());
            let events = read.events(None, 0, 1000).unwrap();
            // A snapshot holds a prefix of the journal: no gaps, nothing half-written.
            assert!(events.windows(2).all(|w| w[1].id == w[0].id + 1));
            seen.push(events.len());
        }
        writer.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    #[test]
    fn a_newer_schema_is_refused_read_only_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(Store::open(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open_read_only(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }
}
