//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never on in a real build).
//!
//! The Procfile is only read from disk beside `slipway.toml`; a fuzzer needs its parser on a string.

use crate::error::ConfigError;
use std::path::Path;

/// One parsed Procfile line: process type, command, 1-based line number.
pub type ProcfileLine = (String, String, usize);

/// Parses Procfile `text` as if it were read from `path`.
pub fn parse_procfile(text: &str, path: &Path) -> Result<Vec<ProcfileLine>, ConfigError> {
    crate::procfile::parse(text, path).map(|procfile| {
        procfile
            .entries
            .into_iter()
            .map(|entry| (entry.name, entry.cmd, entry.line))
            .collect()
    })
}
