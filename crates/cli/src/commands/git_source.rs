//! Where a deploy comes from when the app's folder is a git checkout: who (git's `user.name` and
//! `user.email` as that checkout sees them) and what (the short commit, `-dirty` when tracked files
//! have changes not committed, as `git describe --dirty` says it; untracked files — a state dir, say
//! — do not count). Read with the `git` command; no git, or no checkout, means no source.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// `Ada Lovelace <ada@example.com>`, when git knows who you are.
    pub author: Option<String>,
    pub commit: String,
    pub dirty: bool,
}

impl GitSource {
    /// The release's label when `--version` is not given: `1a2b3c4`, or `1a2b3c4-dirty`.
    pub fn label(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.commit)
        } else {
            self.commit.clone()
        }
    }
}

pub fn read(dir: &Path) -> Option<GitSource> {
    let commit = git(dir, &["rev-parse", "--short", "HEAD"])?;
    let changes = git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
    let name = git(dir, &["config", "user.name"]);
    let email = git(dir, &["config", "user.email"]);
    let author = match (name, email) {
        (Some(name), Some(email)) => Some(format!("{name} <{email}>")),
        (name, email) => name.or(email),
    };
    Some(GitSource {
        author,
        commit,
        dirty: !changes.is_empty(),
    })
}

/// A git command's trimmed output in `dir`; `None` when git is missing or the command fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .status()
            .expect("git runs");
        assert!(ok.success(), "git {args:?}");
    }

    #[test]
    fn a_checkout_gives_author_commit_and_dirtiness() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None, "not a checkout");
        let d = dir.path();
        sh(d, &["init", "-q"]);
        sh(d, &["config", "user.name", "Ada Lovelace"]);
        sh(d, &["config", "user.email", "ada@example.com"]);
        std::fs::write(d.join("slipway.toml"), "app = \"a\"\n").unwrap();
        assert_eq!(read(d), None, "no commit yet");
        sh(d, &["add", "."]);
        sh(d, &["commit", "-q", "-m", "first"]);
        let clean = read(d).unwrap();
        assert_eq!(
            clean.author.as_deref(),
            Some("Ada Lovelace <ada@example.com>")
        );
        assert!(!clean.dirty);
        assert_eq!(clean.label(), clean.commit);
        std::fs::write(d.join("untracked.log"), "x").unwrap();
        assert!(!read(d).unwrap().dirty, "untracked files do not count");
        std::fs::write(d.join("slipway.toml"), "app = \"b\"\n").unwrap();
        let dirty = read(d).unwrap();
        assert!(dirty.dirty);
        assert_eq!(dirty.label(), format!("{}-dirty", clean.commit));
    }
}
