//! The expand/contract guard at deploy time: the new release's migration files (new or changed since the
//! stable release) scanned for statements that would break the release still serving
//! (`slipway_core::migration_guard`). `deploy` shows them as warnings; `deploy --strict` refuses.

use crate::error::Error;
use crate::ops::deploy::Deployer;
use slipway_core::migration_guard;
use slipway_core::release::Release;
use std::path::{Path, PathBuf};

impl Deployer {
    /// One line per destructive statement: `file:line: RULE explanation (statement)`.
    pub(crate) async fn check_migrations(
        &self,
        release: &Release,
        stable: Option<&Release>,
    ) -> Result<Vec<String>, Error> {
        let globs = &release.spec.release_phase.migrations;
        if globs.is_empty() {
            return Ok(Vec::new());
        }
        let mut set = globset::GlobSetBuilder::new();
        for g in globs {
            let glob = globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::bad_request(format!("[release] migrations: {e}")))?;
            set.add(glob);
        }
        let set = set
            .build()
            .map_err(|e| Error::bad_request(format!("[release] migrations: {e}")))?;
        let new_tree = self.checkout(&release.artifact).await?;
        let old_tree = match stable {
            // A controller that took over after the stable release was deployed has no copy of its
            // artifact: every migration file is scanned then, as for a first release.
            Some(s) if s.artifact != release.artifact && !self.artifacts.exists(&s.artifact) => {
                self.event(
                    &release.app,
                    Some(release.version),
                    "migrations_scanned_whole",
                    &format!(
                        "v{}'s artifact is not on this controller (deployed before a takeover): \
                         every migration file of v{} was scanned, not only new ones",
                        s.version, release.version
                    ),
                );
                None
            }
            Some(s) if s.artifact != release.artifact => Some(self.checkout(&s.artifact).await?),
            Some(_) => return Ok(Vec::new()),
            None => None,
        };
        tokio::task::spawn_blocking(move || scan_tree(&new_tree, old_tree.as_deref(), &set))
            .await
            .map_err(|e| Error::internal(e.to_string()))
    }
}

fn scan_tree(new_tree: &Path, old_tree: Option<&Path>, set: &globset::GlobSet) -> Vec<String> {
    let mut files = Vec::new();
    walk(new_tree, new_tree, &mut files);
    files.sort();
    let mut warnings = Vec::new();
    for relative in files.into_iter().filter(|f| set.is_match(f)) {
        let Ok(text) = std::fs::read_to_string(new_tree.join(&relative)) else {
            continue;
        };
        // A migration the stable release already had has already run: only new ones matter.
        if old_tree.is_some_and(|old| {
            std::fs::read_to_string(old.join(&relative)).is_ok_and(|t| t == text)
        }) {
            continue;
        }
        for f in migration_guard::scan(&text) {
            warnings.push(format!(
                "{}:{}: {} (`{}`)",
                relative.display(),
                f.line,
                f.rule.explain(),
                f.statement
            ));
        }
    }
    warnings
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(root, &path, out),
            Ok(t) if t.is_file() => {
                if let Ok(relative) = path.strip_prefix(root) {
                    out.push(relative.to_path_buf());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_or_changed_migrations_are_scanned() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        for dir in [old.path(), new.path()] {
            std::fs::create_dir_all(dir.join("migrations")).unwrap();
            std::fs::write(dir.join("migrations/001.sql"), "DROP TABLE legacy;").unwrap();
        }
        std::fs::write(
            new.path().join("migrations/002.sql"),
            "ALTER TABLE users ADD COLUMN age int;\nALTER TABLE users DROP COLUMN email;",
        )
        .unwrap();
        std::fs::write(new.path().join("notes.sql"), "DROP TABLE x;").unwrap();
        let mut set = globset::GlobSetBuilder::new();
        set.add(globset::Glob::new("migrations/**/*.sql").unwrap());
        let set = set.build().unwrap();
        let found = scan_tree(new.path(), Some(old.path()), &set);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("migrations/002.sql:2: DROP COLUMN"),
            "{}",
            found[0]
        );
        // A first deploy has no stable release: everything is new.
        assert_eq!(scan_tree(new.path(), None, &set).len(), 2);
    }
}
