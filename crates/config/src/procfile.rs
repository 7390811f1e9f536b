//! A `Procfile` beside `slipway.toml`: `name: command` lines, Heroku's format.
//!
//! Each line is a process type (`web` gets `$PORT` and traffic); the line named `release` is the release
//! phase's command instead. `[processes.<name>]` in `slipway.toml` can refine a type (replicas, probes,
//! grace) without repeating its command.

use crate::error::{ConfigError, ConfigIssue};
use miette::NamedSource;
use std::path::{Path, PathBuf};

/// One `name: command` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcfileEntry {
    pub(crate) name: String,
    pub(crate) cmd: String,
    pub(crate) line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Procfile {
    pub(crate) path: PathBuf,
    pub(crate) entries: Vec<ProcfileEntry>,
}

impl Procfile {
    pub(crate) fn get(&self, name: &str) -> Option<&ProcfileEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The process types (every line but `release`).
    pub(crate) fn processes(&self) -> impl Iterator<Item = &ProcfileEntry> {
        self.entries.iter().filter(|e| e.name != "release")
    }
}

/// Reads `<dir>/Procfile` if there is one.
pub(crate) fn load(dir: &Path) -> Result<Option<Procfile>, ConfigError> {
    let path = dir.join("Procfile");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(
            vec![issue(
                &path,
                0,
                0..0,
                format!("cannot read the Procfile: {e}"),
                None,
            )],
            None,
        )),
    }
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Procfile, ConfigError> {
    let mut entries: Vec<ProcfileEntry> = Vec::new();
    let mut issues = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let span = offset..offset + raw.trim_end().len();
        offset += raw.len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, cmd)) = line.split_once(':') else {
            issues.push(issue(
                path,
                line_no,
                span,
                format!("Procfile line {line_no} is not `name: command`"),
                Some("write the process type, a colon, then its command, e.g.\nweb: ./server --port $PORT".into()),
            ));
            continue;
        };
        let (name, cmd) = (name.trim(), cmd.trim());
        if !crate::process::valid_name(name) {
            issues.push(issue(
                path,
                line_no,
                span,
                format!("invalid process type `{name}` in the Procfile"),
                Some(format!(
                    "use lowercase letters, digits, `_` and `-`, starting with a letter, e.g. `{}`",
                    name.to_ascii_lowercase()
                        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
                )),
            ));
            continue;
        }
        if cmd.is_empty() {
            issues.push(issue(
                path,
                line_no,
                span,
                format!("the Procfile's `{name}` has no command"),
                Some(format!(
                    "write the command after the colon, e.g.\n{name}: ./run-{name}"
                )),
            ));
            continue;
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            issues.push(issue(
                path,
                line_no,
                span,
                format!(
                    "the Procfile names `{name}` twice (lines {} and {line_no})",
                    first.line
                ),
                Some("each process type has one line; remove or rename one of them".into()),
            ));
            continue;
        }
        entries.push(ProcfileEntry {
            name: name.to_string(),
            cmd: cmd.to_string(),
            line: line_no,
        });
    }
    if issues.is_empty() {
        Ok(Procfile {
            path: path.to_path_buf(),
            entries,
        })
    } else {
        let source = NamedSource::new(path.display().to_string(), text.to_string());
        Err(ConfigError::new(issues, Some(source)))
    }
}

fn issue(
    path: &Path,
    line: usize,
    span: std::ops::Range<usize>,
    message: String,
    help: Option<String>,
) -> ConfigIssue {
    ConfigIssue {
        file: path.to_path_buf(),
        line,
        column: usize::from(line > 0),
        message,
        help,
        span,
        label: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_types_and_skips_comments() {
        let text = "# the app\nweb: ./server --port $PORT\n\nworker:   python3 worker.py  \nrelease: ./migrate\n";
        let p = parse(text, Path::new("Procfile")).unwrap();
        let names: Vec<_> = p.processes().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["web", "worker"]);
        assert_eq!(p.get("worker").unwrap().cmd, "python3 worker.py");
        assert_eq!(p.get("release").unwrap().line, 5);
    }

    #[test]
    fn bad_lines_are_reported_with_their_line() {
        let text = "web: ./a\nnot a line\nWeb2: ./b\nweb: ./c\nclock:\n";
        let e = parse(text, Path::new("/app/Procfile")).unwrap_err();
        let lines: Vec<_> = e.issues().iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(
            e.to_string()
                .contains("/app/Procfile:4:1: the Procfile names `web` twice")
        );
    }
}
