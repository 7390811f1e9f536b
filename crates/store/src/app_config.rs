//! What the CLI sets on an app beside its `slipway.toml`: config vars (`slipway config set`) and the
//! formation (`slipway scale`). Both outlive releases: every later deploy applies them on top of the file,
//! as Heroku does, so a redeploy does not undo a `config set` or a `scale`.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::params;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVar {
    pub value: String,
    /// Unix milliseconds.
    pub set_at: i64,
    pub set_by: String,
}

impl Tx<'_> {
    pub fn set_config_var(
        &self,
        app: &str,
        key: &str,
        value: &str,
        now_ms: i64,
        who: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO config_vars (app, key, value, set_at, set_by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (app, key) DO UPDATE SET value = excluded.value, set_at = excluded.set_at,
             set_by = excluded.set_by",
            params![app, key, value, now_ms, who],
        )?;
        Ok(())
    }

    /// Returns whether the key was set.
    pub fn unset_config_var(&self, app: &str, key: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM config_vars WHERE app = ?1 AND key = ?2",
            params![app, key],
        )? > 0)
    }

    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, ConfigVar>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value, set_at, set_by FROM config_vars WHERE app = ?1")?;
        let rows = stmt.query_map([app], |row| {
            Ok((
                row.get::<_, String>(0)?,
                ConfigVar {
                    value: row.get(1)?,
                    set_at: row.get(2)?,
                    set_by: row.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_formation(&self, app: &str, process: &str, replicas: u32) -> Result<()> {
        self.conn.execute(
            "INSERT INTO formation (app, process, replicas) VALUES (?1, ?2, ?3)
             ON CONFLICT (app, process) DO UPDATE SET replicas = excluded.replicas",
            params![app, process, replicas],
        )?;
        Ok(())
    }

    pub fn formation(&self, app: &str) -> Result<BTreeMap<String, u32>> {
        let mut stmt = self
            .conn
            .prepare("SELECT process, replicas FROM formation WHERE app = ?1")?;
        let rows = stmt.query_map([app], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Store {
    pub fn config_vars(&self, app: &str) -> Result<BTreeMap<String, ConfigVar>> {
        self.read(|tx| tx.config_vars(app))
    }

    pub fn formation(&self, app: &str) -> Result<BTreeMap<String, u32>> {
        self.read(|tx| tx.formation(app))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn vars_and_formation_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .transaction(|tx| {
                tx.set_config_var("shop", "MODE", "fast", 1, "alice")?;
                tx.set_config_var("shop", "MODE", "safe", 2, "bob")?;
                tx.set_config_var("shop", "COLOR", "red", 3, "bob")?;
                tx.set_formation("shop", "web", 4)
            })
            .unwrap();
        let vars = store.config_vars("shop").unwrap();
        assert_eq!(vars["MODE"].value, "safe");
        assert_eq!(vars["MODE"].set_by, "bob");
        assert!(
            store
                .transaction(|tx| tx.unset_config_var("shop", "COLOR"))
                .unwrap()
        );
        assert!(
            !store
                .transaction(|tx| tx.unset_config_var("shop", "COLOR"))
                .unwrap()
        );
        assert_eq!(store.config_vars("shop").unwrap().len(), 1);
        assert_eq!(store.formation("shop").unwrap()["web"], 4);
        assert!(store.config_vars("other").unwrap().is_empty());
    }
}
