//! `slipway logs`: the captured output of an app's instances, interleaved by time, optionally followed.
//!
//! The runtime writes one file per instance, every line starting with an RFC 3339 UTC timestamp, so
//! sorting lines as text sorts them by time.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Every instance log of the app (or of one release): (instance id, path).
fn log_files(app_dir: &Path, release: Option<u64>) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let Ok(releases) = std::fs::read_dir(app_dir) else {
        return files;
    };
    for dir in releases.flatten() {
        let name = dir.file_name().to_string_lossy().to_string();
        if release.is_some_and(|v| name != format!("v{v}")) {
            continue;
        }
        let Ok(logs) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in logs.flatten() {
            let path = f.path();
            if let Some(id) = path.file_stem().map(|s| s.to_string_lossy().to_string()) {
                files.push((id, path));
            }
        }
    }
    files.sort();
    files
}

/// The last `tail` lines, prefixed with the instance id, in time order.
pub fn read(app_dir: &Path, release: Option<u64>, tail: usize) -> (String, HashMap<PathBuf, u64>) {
    let mut lines = Vec::new();
    let mut offsets = HashMap::new();
    for (id, path) in log_files(app_dir, release) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        offsets.insert(path.clone(), text.len() as u64);
        for line in text.lines() {
            lines.push(prefix(line, &id));
        }
    }
    lines.sort();
    let skip = lines.len().saturating_sub(tail);
    let mut out = lines[skip..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    (out, offsets)
}

/// Inserts the instance id after the timestamp: `<ts> <id> [stdout] text`.
fn prefix(line: &str, id: &str) -> String {
    match line.split_once(' ') {
        Some((ts, rest)) => format!("{ts} {id} {rest}"),
        None => format!("{line} {id}"),
    }
}

/// Sends new lines as they are written, until the receiver goes away. Polls every 200 ms: logs are for
/// people, and polling needs no watcher that could miss files created later.
pub async fn follow(
    app_dir: PathBuf,
    release: Option<u64>,
    mut offsets: HashMap<PathBuf, u64>,
    tx: mpsc::Sender<String>,
) {
    loop {
        let mut fresh = Vec::new();
        for (id, path) in log_files(&app_dir, release) {
            let start = *offsets.get(&path).unwrap_or(&0);
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                continue;
            };
            if len <= start || f.seek(SeekFrom::Start(start)).is_err() {
                continue;
            }
            let mut buf = String::new();
            if f.read_to_string(&mut buf).is_err() {
                continue;
            }
            // Only whole lines; a partial last line waits for the next round.
            let whole = buf.rfind('\n').map_or(0, |i| i + 1);
            offsets.insert(path.clone(), start + whole as u64);
            for line in buf[..whole].lines() {
                fresh.push(prefix(line, &id));
            }
        }
        fresh.sort();
        for line in fresh {
            if tx.send(line + "\n").await.is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
