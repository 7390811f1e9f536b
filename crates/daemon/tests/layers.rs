//! The daemon's layers point down only: `http` → `ops` → `flags` → `control` → leaves. A file may use
//! `crate::X` only when X is in its own layer or one below; this test reads the sources and fails on an
//! arrow pointing up, naming the file and the import.

use std::path::{Path, PathBuf};

/// Each top-level module's layer; a module not listed is a leaf (layer 0).
fn layer(module: &str) -> u8 {
    match module {
        "http" => 4,
        "ops" => 3,
        "flags" => 2,
        "control" => 1,
        // Certificates for the TLS listener: used by `http` (the certs routes), uses only leaves.
        "tls" => 1,
        _ => 0,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::X` (comments skipped), grouped imports included.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 40, "read the daemon's sources");
    let mut upward = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" {
            continue; // `serve` wires every layer together: it is above them all
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for target in imports(&text) {
            if layer(&target) > layer(&top) {
                upward.push(format!("{}: uses crate::{target}", rel.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a layer (http → ops → flags → control → leaves):\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_import_reader_sees_plain_and_grouped_paths() {
    let text = "use crate::control::x;\nuse crate::{http::a, ops};\n// crate::flags in a comment\n";
    assert_eq!(imports(text), ["control", "http", "ops"]);
}
