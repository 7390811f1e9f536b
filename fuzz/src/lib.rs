//! Checks shared by the fuzz targets.

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use std::ops::Range;

/// A span the parser reports must point into the text it was given.
pub fn assert_span_within(span: &Range<usize>, text: &str, what: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "{what}: span {span:?} outside a text of {} bytes",
        text.len()
    );
}

/// Renders a diagnostic the way the CLI prints a rejected config (miette's graphical report, with
/// snippets read from the diagnostic's source). A span the source cannot give makes rendering fail, and
/// the CLI's `eprintln!("{:?}", ..)` would then panic.
pub fn render(diagnostic: &dyn Diagnostic) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, diagnostic)
        .expect("a config error renders with its snippets");
    out
}
