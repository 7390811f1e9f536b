//! The watch after promotion of each app (`[deploy] watch`), while it runs: kept here so a restarted or
//! upgraded daemon watches on until its time is over. The state is the daemon's (JSON); the store keeps
//! one per app and never reads inside it.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::params;

impl Tx<'_> {
    /// Records `app`'s running watch of `release`, replacing any other.
    pub fn save_watch(&self, app: &str, release: u64, state: &serde_json::Value) -> Result<()> {
        self.conn.execute(
            "INSERT INTO watches (app, release, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (app) DO UPDATE SET release = excluded.release, state = excluded.state",
            params![app, release as i64, state.to_string()],
        )?;
        Ok(())
    }

    pub fn clear_watch(&self, app: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM watches WHERE app = ?1", [app])?;
        Ok(())
    }

    /// Every running watch: app and state, by app.
    pub fn watches(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT app, state FROM watches ORDER BY app")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut watches = Vec::new();
        for row in rows {
            let (app, text) = row?;
            // A state this daemon cannot read is skipped by the daemon, not an error here.
            let state = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            watches.push((app, state));
        }
        Ok(watches)
    }
}

impl Store {
    pub fn save_watch(&self, app: &str, release: u64, state: &serde_json::Value) -> Result<()> {
        self.transaction(|tx| tx.save_watch(app, release, state))
    }

    pub fn clear_watch(&self, app: &str) -> Result<()> {
        self.transaction(|tx| tx.clear_watch(app))
    }

    pub fn watches(&self) -> Result<Vec<(String, serde_json::Value)>> {
        self.read(|tx| tx.watches())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{new_release, open_temp};

    #[test]
    fn save_replace_list_and_clear() {
        let (_dir, store) = open_temp();
        for _ in 0..2 {
            store.create_release(new_release("shop")).unwrap();
        }
        store
            .save_watch("shop", 1, &serde_json::json!({"ends_at": 5}))
            .unwrap();
        store
            .save_watch("shop", 2, &serde_json::json!({"ends_at": 9}))
            .unwrap();
        assert_eq!(
            store.watches().unwrap(),
            [("shop".to_string(), serde_json::json!({"ends_at": 9}))]
        );
        store.clear_watch("shop").unwrap();
        assert!(store.watches().unwrap().is_empty());
    }
}
