//! Collects problems while the config is walked, so that one run reports all of them.
//!
//! The walk never stops at the first problem: a bad value is reported and replaced by its default, and
//! the walk goes on. Positions are byte offsets from the TOML parser, turned into line:column here.

use crate::error::ConfigIssue;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub(crate) struct Report<'s> {
    text: &'s str,
    file: PathBuf,
    errors: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
    /// Spans that may hold a secret value (pasted in by mistake), blanked out of snippets.
    redactions: Vec<Range<usize>>,
}

impl<'s> Report<'s> {
    pub(crate) fn new(text: &'s str, file: &Path) -> Self {
        Self {
            text,
            file: file.to_path_buf(),
            errors: Vec::new(),
            warnings: Vec::new(),
            redactions: Vec::new(),
        }
    }

    /// Records a problem that makes the config unusable.
    pub(crate) fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> &mut ConfigIssue {
        let issue = self.issue(span, message.into());
        self.errors.push(issue);
        self.errors.last_mut().expect("just pushed")
    }

    /// Records something that works but is probably not what was meant.
    pub(crate) fn warning(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> &mut ConfigIssue {
        let issue = self.issue(span, message.into());
        self.warnings.push(issue);
        self.warnings.last_mut().expect("just pushed")
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The source text of a span (for "found ..." and "write ..." messages).
    pub(crate) fn text(&self, span: Range<usize>) -> &'s str {
        self.text.get(span).unwrap_or("")
    }

    /// Marks a span whose text must not appear in snippets.
    pub(crate) fn redact(&mut self, span: Range<usize>) {
        self.redactions.push(span);
    }

    /// Errors and warnings, each in file order, and the text to show in snippets.
    pub(crate) fn finish(mut self) -> Finished {
        let order = |i: &ConfigIssue| (i.span.start, i.span.end);
        self.errors.sort_by_key(order);
        self.warnings.sort_by_key(order);
        Finished {
            errors: self.errors,
            warnings: self.warnings,
            snippet_text: redacted(self.text, &self.redactions),
        }
    }

    fn issue(&self, span: Range<usize>, message: String) -> ConfigIssue {
        let (line, column) = line_column(self.text, span.start);
        ConfigIssue {
            file: self.file.clone(),
            line,
            column,
            message,
            help: None,
            span,
            label: None,
        }
    }
}

pub(crate) struct Finished {
    pub(crate) errors: Vec<ConfigIssue>,
    pub(crate) warnings: Vec<ConfigIssue>,
    /// The file's text with redacted spans replaced by `*`, byte for byte (so spans still line up).
    pub(crate) snippet_text: String,
}

fn redacted(text: &str, spans: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for span in spans {
        for b in bytes.get_mut(span.clone()).into_iter().flatten() {
            if *b != b'\n' {
                *b = b'*';
            }
        }
    }
    // Replacing whole characters keeps UTF-8 valid; a span that cut a character is widened by lossy.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// 1-based line and column (in characters) of a byte offset; offsets past the end point after the end.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_line_and_column() {
        let text = "app = \"x\"\n\n[processes.web]\ncmd = 1\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (1, 7));
        assert_eq!(line_column(text, 11), (3, 1));
        assert_eq!(line_column(text, text.find("1\n").unwrap()), (4, 7));
        assert_eq!(line_column(text, 10_000), (5, 1));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "é = \"ü\" x";
        assert_eq!(line_column(text, text.find('x').unwrap()), (1, 9));
        assert_eq!(
            line_column(text, 1),
            (1, 1),
            "inside a character: its start"
        );
    }

    #[test]
    fn issues_come_out_in_file_order() {
        let text = "a\nb\nc\n";
        let mut r = Report::new(text, Path::new("slipway.toml"));
        r.error(4..5, "third");
        r.error(0..1, "first").help("h");
        let Finished {
            errors, warnings, ..
        } = r.finish();
        assert_eq!(errors.iter().map(|i| i.line).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(errors[0].help.as_deref(), Some("h"));
        assert!(warnings.is_empty());
    }

    #[test]
    fn redacted_spans_keep_their_length() {
        let text = "DB = \"pässword\"\nX = 1\n";
        let mut r = Report::new(text, Path::new("slipway.toml"));
        r.redact(6..15);
        let shown = r.finish().snippet_text;
        assert_eq!(shown.len(), text.len());
        assert!(
            !shown.contains("ssword") && shown.ends_with("\"\nX = 1\n"),
            "{shown}"
        );
    }
}
