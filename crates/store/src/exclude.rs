//! `[artifact] exclude`: which paths of a folder are left out of a release (and of an upload).

use crate::error::{Result, StoreError};
use globset::{GlobBuilder, GlobMatcher};
use std::path::Path;

/// `artifact.exclude`, gitignore-lite: a pattern without `/` matches a name at any depth (and so the
/// whole subtree of a matching folder); a pattern with `/` matches the path from the artifact root; a
/// trailing `/` matches folders only.
pub(crate) struct Excluder {
    rules: Vec<Rule>,
}

struct Rule {
    matcher: GlobMatcher,
    anchored: bool,
    dir_only: bool,
}

impl Excluder {
    pub(crate) fn new(patterns: &[String]) -> Result<Excluder> {
        let mut rules = Vec::new();
        for pattern in patterns {
            let trimmed = pattern.trim();
            let dir_only = trimmed.ends_with('/');
            let body = trimmed.trim_end_matches('/');
            let anchored = body.contains('/');
            let body = body.trim_start_matches('/');
            if body.is_empty() {
                continue;
            }
            let glob = GlobBuilder::new(body)
                .literal_separator(true)
                .build()
                .map_err(|source| StoreError::Pattern {
                    pattern: pattern.clone(),
                    source,
                })?;
            rules.push(Rule {
                matcher: glob.compile_matcher(),
                anchored,
                dir_only,
            });
        }
        Ok(Excluder { rules })
    }

    pub(crate) fn excludes(&self, rel: &Path, is_dir: bool) -> bool {
        self.rules.iter().any(|rule| {
            if rule.dir_only && !is_dir {
                return false;
            }
            if rule.anchored {
                rule.matcher.is_match(rel)
            } else {
                rel.file_name()
                    .is_some_and(|name| rule.matcher.is_match(name))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluder_follows_gitignore_lite_rules() {
        let ex = Excluder::new(&[
            "target".into(),
            "*.log".into(),
            "docs/*.md".into(),
            "cache/".into(),
        ])
        .unwrap();
        let is = |p: &str, dir: bool| ex.excludes(Path::new(p), dir);
        assert!(is("target", true));
        assert!(is("sub/target", true));
        assert!(is("a/b/debug.log", false));
        assert!(is("docs/readme.md", false));
        assert!(!is("docs/deep/readme.md", false), "* does not cross /");
        assert!(
            !is("other/docs/readme.md", false),
            "patterns with / are anchored"
        );
        assert!(is("x/cache", true));
        assert!(!is("x/cache", false), "trailing / matches folders only");
        assert!(!is("src/main.rs", false));
    }

    #[test]
    fn bad_pattern_is_reported() {
        let err = Excluder::new(&["a[".into()]).err().unwrap();
        assert!(err.to_string().contains("a["), "{err}");
    }
}
