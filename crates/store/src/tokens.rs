//! API tokens with roles. The store only ever sees a token's hash (hex SHA-256): a copy of the database
//! gives no way in. Making, hashing and checking tokens is the daemon's business; this is their table.

use crate::error::Result;
use crate::store::{Store, Tx};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A token as listed: everything but the secret (whose hash is not listed either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub name: String,
    /// `viewer`, `deployer` or `admin`.
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub created_by: String,
    pub last_used_at: Option<i64>,
}

impl Tx<'_> {
    /// Records a token by its hash; `false` when a token of that name exists (nothing is changed).
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        hash: &str,
        created_by: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let added = self.conn.execute(
            "INSERT INTO api_tokens (name, role, hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (name) DO NOTHING",
            params![name, role, hash, now_ms, created_by],
        )?;
        Ok(added == 1)
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<ApiToken>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, role, created_at, created_by, last_used_at FROM api_tokens ORDER BY name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(ApiToken {
                name: row.get(0)?,
                role: row.get(1)?,
                created_at: row.get(2)?,
                created_by: row.get(3)?,
                last_used_at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every (name, role, hash), for checking a presented token against all of them.
    pub fn token_hashes(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, hash FROM api_tokens")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The role of a token that still exists (a revoked one has none).
    pub fn token_role(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT role FROM api_tokens WHERE name = ?1",
                params![name],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Deletes a token; `false` when there was none of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM api_tokens WHERE name = ?1", params![name])?;
        Ok(n == 1)
    }

    pub fn token_used(&self, name: &str, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE name = ?1",
            params![name, now_ms],
        )?;
        Ok(())
    }
}

impl Store {
    /// Records a token by its hash; `false` when a token of that name exists.
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        hash: &str,
        created_by: &str,
        now_ms: i64,
    ) -> Result<bool> {
        self.transaction(|tx| tx.create_token(name, role, hash, created_by, now_ms))
    }

    pub fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.read(|tx| tx.tokens())
    }

    pub fn token_hashes(&self) -> Result<Vec<(String, String, String)>> {
        self.read(|tx| tx.token_hashes())
    }

    pub fn token_role(&self, name: &str) -> Result<Option<String>> {
        self.read(|tx| tx.token_role(name))
    }

    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        self.transaction(|tx| tx.revoke_token(name))
    }

    pub fn token_used(&self, name: &str, now_ms: i64) -> Result<()> {
        self.transaction(|tx| tx.token_used(name, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::open_temp;

    #[test]
    fn tokens_are_kept_by_hash_and_revoked_by_name() {
        let (_dir, store) = open_temp();
        assert!(
            store
                .create_token("ci", "deployer", "ab12", "root", 5)
                .unwrap()
        );
        assert!(
            !store
                .create_token("ci", "admin", "cd34", "root", 6)
                .unwrap(),
            "a name is taken once"
        );
        assert!(
            store
                .create_token("eve", "nobody", "ef56", "root", 7)
                .is_err()
        );
        let list = store.tokens().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].role.as_str(), list[0].created_at), ("deployer", 5));
        assert_eq!(
            store.token_hashes().unwrap(),
            [("ci".to_string(), "deployer".to_string(), "ab12".to_string())]
        );
        store.token_used("ci", 9).unwrap();
        assert_eq!(store.tokens().unwrap()[0].last_used_at, Some(9));
        assert_eq!(store.token_role("ci").unwrap().as_deref(), Some("deployer"));
        assert!(store.revoke_token("ci").unwrap());
        assert!(!store.revoke_token("ci").unwrap());
        assert_eq!(store.token_role("ci").unwrap(), None);
    }
}
