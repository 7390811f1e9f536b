//! Procfile parsing: any text gives process types or errors, never a panic. What parses is well formed
//! (valid, unique names; trimmed, one-line, non-empty commands; lines in order) and prints back to a
//! Procfile that parses to the same types; errors point into the text and render with their snippets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_config::fuzzing::parse_procfile;
use slipway_fuzz::{assert_span_within, render};
use std::collections::BTreeSet;
use std::path::Path;

fuzz_target!(|text: &str| {
    let path = Path::new("/app/Procfile");
    let entries = match parse_procfile(text, path) {
        Ok(entries) => entries,
        Err(error) => {
            for issue in error.issues() {
                assert_span_within(&issue.span, text, &issue.message);
            }
            render(error.to_report().as_ref());
            return;
        }
    };
    let lines = text.split_inclusive('\n').count();
    let mut names = BTreeSet::new();
    let mut last_line = 0;
    for (name, cmd, line) in &entries {
        assert!(names.insert(name.as_str()), "`{name}` twice");
        assert!(
            name.starts_with(|c: char| c.is_ascii_lowercase()) && !name.contains([':', ' ', '\n']),
            "name {name:?}"
        );
        assert!(
            !cmd.is_empty() && cmd.trim() == cmd && !cmd.contains('\n'),
            "cmd {cmd:?}"
        );
        assert!(
            *line > last_line && *line <= lines,
            "line {line} of {lines}"
        );
        last_line = *line;
    }
    let printed: String = entries
        .iter()
        .map(|(name, cmd, _)| format!("{name}: {cmd}\n"))
        .collect();
    let again = parse_procfile(&printed, path).expect("a printed Procfile parses");
    let types = |e: &[(String, String, usize)]| {
        e.iter()
            .map(|(n, c, _)| (n.clone(), c.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&again), types(&entries), "printed:\n{printed}");
});
