//! The build context: the app's folder as the tar the engine builds from, minus what `.dockerignore`
//! excludes, made deterministic (sorted, no timestamps or owners) so that its digest identifies the
//! content: the same folder always gets the same tag, a changed file a new one.

use crate::error::DockerError;
use globset::{Glob, GlobMatcher};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A packed context.
pub struct BuildContext {
    pub tar: Vec<u8>,
    /// Hex SHA-256 of `tar`.
    pub digest: String,
}

/// `.dockerignore` rules: Go `filepath.Match` patterns (`*` stops at `/`), `**` for any depth, `!` to
/// re-include, the last matching rule wins, and a rule matching a folder covers everything inside it.
pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
            let pattern = pattern.trim_end_matches('/');
            if pattern.is_empty() {
                continue;
            }
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .or_else(|_| Glob::new(&globset::escape(pattern)))
                .map_err(|err| format!(".dockerignore pattern {line:?}: {err}"))?;
            rules.push((glob.compile_matcher(), exclude));
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (matcher, exclude) in &self.rules {
            if matches_path_or_parent(matcher, path) {
                excluded = *exclude;
            }
        }
        excluded
    }

    /// Without `!` rules an excluded folder's content cannot come back, so the walk may skip it.
    fn can_prune(&self) -> bool {
        self.rules.iter().all(|(_, exclude)| *exclude)
    }
}

fn matches_path_or_parent(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    path.match_indices('/')
        .any(|(slash, _)| matcher.is_match(&path[..slash]))
}

/// Packs `dir` (following `.dockerignore`; the Dockerfile and `.dockerignore` are always sent, as the
/// docker CLI does). Reads the whole context into memory: contexts are app folders, not data sets.
pub fn pack(dir: &Path, dockerfile: &str) -> Result<BuildContext, DockerError> {
    let fail = |path: &Path, reason: String| DockerError::BuildContext {
        path: path.to_owned(),
        reason,
    };
    if !dir.join(dockerfile).is_file() {
        return Err(fail(
            dir,
            format!("there is no {dockerfile} in it (a Dockerfile is needed to build an image)"),
        ));
    }
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|reason| fail(dir, reason))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            DockerIgnore::parse("").map_err(|reason| fail(dir, reason))?
        }
        Err(err) => return Err(fail(&dir.join(".dockerignore"), err.to_string())),
    };
    let always = [dockerfile, ".dockerignore"];
    let prune = ignore.can_prune();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut walk = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|err| fail(dir, err.to_string()))?;
        let relative = entry
            .path()
            .strip_prefix(dir)
            .map_err(|err| fail(entry.path(), err.to_string()))?;
        let Some(name) = relative.to_str() else {
            return Err(fail(entry.path(), "the path is not UTF-8".into()));
        };
        let name = name.replace(std::path::MAIN_SEPARATOR, "/");
        if ignore.excludes(&name) && !always.contains(&name.as_str()) {
            if entry.file_type().is_dir() && prune {
                walk.skip_current_dir();
            }
            continue;
        }
        files.push((name, entry.path().to_owned()));
    }

    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for (name, path) in &files {
        append(&mut builder, name, path).map_err(|err| fail(path, err.to_string()))?;
    }
    let tar = builder
        .into_inner()
        .map_err(|err| fail(dir, err.to_string()))?;
    let digest = hex::encode(Sha256::digest(&tar));
    Ok(BuildContext { tar, digest })
}

/// One entry with deterministic metadata: owner root, mtime 0; the permission bits are kept (an
/// executable must stay executable).
fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, path: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
    header.set_mtime(0);
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        builder.append_link(&mut header, name, target)
    } else if meta.is_dir() {
        builder.append_data(&mut header, name, std::io::empty())
    } else if meta.is_file() {
        builder.append_data(&mut header, name, std::fs::File::open(path)?)
    } else {
        // Sockets, fifos, devices: nothing a build can use.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn dockerignore_follows_docker_rules() {
        let rules = ignore("# build output\ntarget\n*.log\n!keep.log\n/secret/**\ndocs/*.md\n");
        assert!(rules.excludes("target"));
        assert!(
            rules.excludes("target/debug/app"),
            "a folder covers its content"
        );
        assert!(rules.excludes("a.log"));
        assert!(!rules.excludes("keep.log"), "! re-includes");
        assert!(!rules.excludes("logs/a.log"), "* does not cross /");
        assert!(rules.excludes("secret/key"));
        assert!(rules.excludes("docs/a.md"));
        assert!(!rules.excludes("docs/sub/a.md"));
        assert!(!rules.excludes("src/main.rs"));
        assert!(ignore("target").can_prune());
        assert!(!rules.can_prune());
    }

    #[test]
    fn any_depth_with_double_star() {
        let rules = ignore("**/*.tmp\n");
        assert!(rules.excludes("a.tmp"));
        assert!(rules.excludes("x/y/z.tmp"));
        assert!(!rules.excludes("x/y/z.rs"));
    }

    fn entries(context: &BuildContext) -> Vec<(String, u32, String)> {
        let mut archive = tar::Archive::new(&context.tar[..]);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().display().to_string();
                let mode = entry.header().mode().unwrap();
                assert_eq!(entry.header().mtime().unwrap(), 0);
                assert_eq!(entry.header().uid().unwrap(), 0);
                let mut body = String::new();
                entry.read_to_string(&mut body).unwrap();
                (path, mode & 0o777, body)
            })
            .collect()
    }

    #[test]
    fn the_context_is_deterministic_and_filtered() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\nCOPY app /app\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "target\nDockerfile\n").unwrap();
        std::fs::write(root.join("app"), "#!binary").unwrap();
        std::fs::set_permissions(root.join("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::write(root.join("target/debug/big"), "x").unwrap();

        let first = pack(root, "Dockerfile").unwrap();
        let names: Vec<(String, u32, String)> = entries(&first);
        assert_eq!(
            names,
            vec![
                (".dockerignore".into(), 0o644, "target\nDockerfile\n".into()),
                (
                    "Dockerfile".into(),
                    0o644,
                    "FROM scratch\nCOPY app /app\n".into()
                ),
                ("app".into(), 0o755, "#!binary".into()),
            ]
        );

        // Touching a file (new mtime) keeps the digest; changing content changes it.
        std::fs::write(root.join("app"), "#!binary").unwrap();
        assert_eq!(pack(root, "Dockerfile").unwrap().digest, first.digest);
        std::fs::write(root.join("app"), "#!binary v2").unwrap();
        assert_ne!(pack(root, "Dockerfile").unwrap().digest, first.digest);
        // What is ignored does not count.
        std::fs::write(root.join("target/debug/big"), "y").unwrap();
        std::fs::write(root.join("app"), "#!binary").unwrap();
        assert_eq!(pack(root, "Dockerfile").unwrap().digest, first.digest);
    }

    #[test]
    fn a_missing_dockerfile_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let err = pack(dir.path(), "Dockerfile").err().unwrap().to_string();
        assert!(err.contains("no Dockerfile"), "{err}");
    }
}
