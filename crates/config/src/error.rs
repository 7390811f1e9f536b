//! What a rejected config looks like to the person who wrote it.
//!
//! A config is checked as a whole and every problem is kept, so one edit-deploy cycle fixes them all.
//! Each problem carries `file:line:column`, a message and usually a `help` that says what to write
//! instead. The same problems render two ways: plain text ([`Display`](fmt::Display), for logs and for
//! the daemon's API) and miette's fancy report with source snippets ([`ConfigError::to_report`]).

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// One problem (or warning) found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The config file, as given to [`crate::load`] / [`crate::parse`].
    pub file: PathBuf,
    /// 1-based line; 0 when the problem concerns the whole file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based column, counted in characters; 0 with `line` 0.
    pub column: usize,
    pub message: String,
    /// What to write instead, when we can tell.
    pub help: Option<String>,
    /// Byte range in the file that the problem points at (empty for a position).
    pub span: Range<usize>,
    /// Short text under the underlined span in fancy output.
    pub label: Option<String>,
}

impl ConfigIssue {
    /// Adds a help line (what to write instead).
    pub(crate) fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }

    /// Adds the short text shown under the underlined span.
    pub(crate) fn label(&mut self, label: impl Into<String>) -> &mut Self {
        self.label = Some(label.into());
        self
    }
}

/// `slipway.toml:5:1: unknown key ...` then, indented on the next line, `help: ...`.
impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        }
        if let Some(help) = &self.help {
            for (i, line) in help.lines().enumerate() {
                let lead = if i == 0 { "help: " } else { "      " };
                write!(f, "\n  {lead}{line}")?;
            }
        }
        Ok(())
    }
}

/// A config that cannot be used, with every problem found in it.
#[derive(Debug)]
pub struct ConfigError {
    issues: Vec<ConfigIssue>,
    /// The text, for snippets; `None` when the file could not be read.
    source: Option<NamedSource<String>>,
}

impl ConfigError {
    pub(crate) fn new(issues: Vec<ConfigIssue>, source: Option<NamedSource<String>>) -> Self {
        debug_assert!(!issues.is_empty(), "a ConfigError without issues");
        Self { issues, source }
    }

    /// Every problem, in file order.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// A miette report that renders well: a one-line title, then each problem with its snippet and help.
    ///
    /// (A report made straight from `ConfigError` also works, but uses the plain text list as its title.)
    pub fn to_report(&self) -> miette::Report {
        miette::Report::new(Fancy {
            issues: self.issues.iter().map(Related::from).collect(),
            file: self
                .issues
                .first()
                .map(|i| i.file.clone())
                .unwrap_or_default(),
            source: self.source.clone(),
        })
    }
}

/// One line per problem (plus its help line), in file order.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("slipway::config"))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.issues.iter().map(|i| i as &dyn Diagnostic)))
    }
}

impl std::error::Error for ConfigIssue {}

/// As a related diagnostic of [`ConfigError`]: the snippet comes from the parent's source.
impl Diagnostic for ConfigIssue {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (self.line > 0).then(|| {
            Box::new(std::iter::once(LabeledSpan::new_with_span(
                self.label.clone(),
                self.span.clone(),
            ))) as Box<dyn Iterator<Item = LabeledSpan>>
        })
    }
}

/// The owned, nicely titled form behind [`ConfigError::to_report`].
#[derive(Debug)]
struct Fancy {
    issues: Vec<Related>,
    file: PathBuf,
    source: Option<NamedSource<String>>,
}

impl fmt::Display for Fancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.issues.len() {
            1 => write!(f, "{} is not a valid slipway config", self.file.display()),
            n => write!(f, "{} has {n} problems", self.file.display()),
        }
    }
}

impl std::error::Error for Fancy {}

impl Diagnostic for Fancy {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("slipway::config"))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.issues.iter().map(|i| i as &dyn Diagnostic)))
    }
}

/// One problem inside [`Fancy`]: titled by its message alone (the snippet shows where).
#[derive(Debug)]
struct Related(ConfigIssue);

impl From<&ConfigIssue> for Related {
    fn from(issue: &ConfigIssue) -> Self {
        Related(issue.clone())
    }
}

impl fmt::Display for Related {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.line == 0 {
            write!(f, "{}: {}", self.0.file.display(), self.0.message)
        } else {
            f.write_str(&self.0.message)
        }
    }
}

impl std::error::Error for Related {}

impl Diagnostic for Related {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.0.labels()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(line: usize, help: Option<&str>) -> ConfigIssue {
        ConfigIssue {
            file: PathBuf::from("slipway.toml"),
            line,
            column: 1,
            message: "unknown key `replica` in [processes.web]".into(),
            help: help.map(String::from),
            span: 40..47,
            label: Some("unknown key".into()),
        }
    }

    #[test]
    fn plain_text_is_one_line_per_problem_with_help_below() {
        let err = ConfigError::new(
            vec![issue(5, Some("did you mean `replicas`?")), issue(7, None)],
            None,
        );
        assert_eq!(
            err.to_string(),
            "slipway.toml:5:1: unknown key `replica` in [processes.web]\n  help: did you mean `replicas`?\n\
             slipway.toml:7:1: unknown key `replica` in [processes.web]"
        );
    }

    #[test]
    fn multi_line_help_stays_indented() {
        let text = issue(5, Some("add:\n[processes.web]")).to_string();
        assert!(
            text.ends_with("  help: add:\n        [processes.web]"),
            "{text}"
        );
    }

    #[test]
    fn whole_file_problems_have_no_position() {
        let mut i = issue(0, None);
        i.column = 0;
        i.message = "cannot read: not found".into();
        assert_eq!(i.to_string(), "slipway.toml: cannot read: not found");
    }
}
