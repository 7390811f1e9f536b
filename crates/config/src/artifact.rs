//! `[artifact]`: the folder frozen into every release, and what to leave out of it.

use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::ArtifactSpec;
use std::path::Path;

const KEYS: &[&str] = &["path", "exclude"];

/// Left out unless the config says otherwise: VCS data, build output, dependencies, local state.
pub const DEFAULT_EXCLUDE: &[&str] = &[".git", "target", "node_modules", "state"];

/// Reads `[artifact]`; the path is made absolute against `base_dir` (the config's folder).
pub(crate) fn read(r: &mut Report, root: &Section, base_dir: &Path) -> ArtifactSpec {
    let mut spec = ArtifactSpec {
        path: absolute(base_dir, Path::new(".")),
        exclude: DEFAULT_EXCLUDE.iter().map(|s| s.to_string()).collect(),
    };
    let Some(artifact) = root.table(r, "artifact", "artifact") else {
        return spec;
    };
    artifact.check_keys(r, KEYS);
    if let Some(path) = artifact.text(r, "path", "\".\"") {
        spec.path = absolute(base_dir, Path::new(path.get_ref()));
    }
    if let Some(patterns) = artifact.string_list(r, "exclude") {
        // The user's list replaces the defaults: they may want `node_modules` in, say.
        spec.exclude.clear();
        for pattern in patterns {
            match globset::Glob::new(pattern.get_ref()) {
                Ok(_) if !pattern.get_ref().trim().is_empty() => {
                    spec.exclude.push(pattern.into_inner())
                }
                Ok(_) => {
                    r.error(pattern.span(), "[artifact]: empty exclude pattern")
                        .help("remove it");
                }
                Err(e) => {
                    r.error(
                        pattern.span(),
                        format!("[artifact]: invalid glob pattern: {}", e.kind()),
                    )
                    .label("invalid pattern")
                    .help("e.g. \"target\", \"*.log\", \"docs/**/*.pdf\"");
                }
            }
        }
    }
    spec
}

/// `base/rel`, absolute and without `.` parts (`..` is kept: it may cross a symlink).
pub(crate) fn absolute(base: &Path, rel: &Path) -> std::path::PathBuf {
    let joined = base.join(rel);
    std::path::absolute(&joined).unwrap_or(joined)
}
