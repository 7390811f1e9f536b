//! `slipway logs`: the captured output of an app's instances, release phases and cron runs, interleaved
//! by time, filtered, optionally followed.
//!
//! The runtime writes one file per instance (or job), every line starting with an RFC 3339 UTC timestamp,
//! so sorting lines as text sorts them by time. Files are named by the instance id,
//! `<app>-v<N>-<process>-<suffix>` (`<app>-v<N>-release`, `<app>-v<N>-cron-<job>-<run>` for jobs), so every
//! line shown carries app, release, process type and instance. A full file rotates to `<id>.log.1`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Which lines `slipway logs` wants.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub release: Option<u64>,
    /// A process type (`web`, `worker`), `release`, `rollback`, `cron` or `cron-<job>`.
    pub process: Option<String>,
    /// Lines at or after this RFC 3339 UTC time (compared as text, like the lines' own timestamps).
    pub since: Option<String>,
}

impl LogFilter {
    fn wants_file(&self, id: &str) -> bool {
        let Some(wanted) = &self.process else {
            return true;
        };
        let process = process_of(id);
        process == *wanted || (wanted == "cron" && process.starts_with("cron-"))
    }

    fn wants_line(&self, line: &str) -> bool {
        self.since.as_ref().is_none_or(|since| {
            line.get(..since.len())
                .is_some_and(|ts| ts >= since.as_str())
        })
    }
}

/// The process part of an instance id: `shop-v3-web-1a2b` → `web`, `shop-v3-release` → `release`,
/// `shop-v3-cron-report-7` → `cron-report`.
fn process_of(id: &str) -> String {
    let rest = id
        .split_once("-v")
        .and_then(|(_, r)| r.split_once('-'))
        .map_or(id, |(_, r)| r);
    match rest.rsplit_once('-') {
        Some((process, _suffix)) => process.to_string(),
        None => rest.to_string(),
    }
}

/// Every log file of the app (or of one release): (instance id, path), rotated files first.
fn log_files(app_dir: &Path, filter: &LogFilter) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let Ok(releases) = std::fs::read_dir(app_dir) else {
        return files;
    };
    for dir in releases.flatten() {
        let name = dir.file_name().to_string_lossy().to_string();
        if filter.release.is_some_and(|v| name != format!("v{v}")) {
            continue;
        }
        let Ok(logs) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in logs.flatten() {
            let path = f.path();
            let file = f.file_name().to_string_lossy().to_string();
            let id = file
                .strip_suffix(".log.1")
                .or_else(|| file.strip_suffix(".log"));
            if let Some(id) = id
                && filter.wants_file(id)
            {
                files.push((id.to_string(), path));
            }
        }
    }
    // `x.log.1` sorts after `x.log`; older first reads better, and `read` sorts lines anyway.
    files.sort();
    files
}

/// The last `tail` lines, prefixed with the instance id, in time order; and where each file ends.
pub fn read(app_dir: &Path, filter: &LogFilter, tail: usize) -> (String, HashMap<PathBuf, u64>) {
    let mut lines = Vec::new();
    let mut offsets = HashMap::new();
    for (id, path) in log_files(app_dir, filter) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        offsets.insert(path.clone(), text.len() as u64);
        for line in text.lines().filter(|l| filter.wants_line(l)) {
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
    filter: LogFilter,
    mut offsets: HashMap<PathBuf, u64>,
    tx: mpsc::Sender<String>,
) {
    loop {
        let mut fresh = Vec::new();
        for (id, path) in log_files(&app_dir, &filter) {
            if path.extension().is_some_and(|e| e == "1") {
                // Rotated files are complete; their lines were sent while they were current.
                continue;
            }
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                continue;
            };
            let mut start = *offsets.get(&path).unwrap_or(&0);
            if len < start {
                // The file was rotated: a new one started from zero.
                start = 0;
            }
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
            for line in buf[..whole].lines().filter(|l| filter.wants_line(l)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_names_come_from_instance_ids() {
        assert_eq!(process_of("shop-v3-web-1a2b"), "web");
        assert_eq!(process_of("shop-v12-queue_2-ff"), "queue_2");
        assert_eq!(process_of("my-shop-v3-web-1a2b"), "web");
        assert_eq!(process_of("shop-v3-release"), "release");
        assert_eq!(process_of("shop-v3-cron-report-7"), "cron-report");
    }

    #[test]
    fn filters_by_process_release_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, id: &str, text: &str| {
            let d = dir.path().join(rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{id}.log")), text).unwrap();
        };
        write(
            "v1",
            "shop-v1-web-aa",
            "2026-11-30T10:00:00.000Z [stdout] web one\n",
        );
        write(
            "v2",
            "shop-v2-web-bb",
            "2026-11-30T10:05:00.000Z [stdout] web two\n",
        );
        write(
            "v2",
            "shop-v2-worker-cc",
            "2026-11-30T10:01:00.000Z [stdout] worker\n",
        );
        write(
            "v2",
            "shop-v2-cron-report-7",
            "2026-11-30T10:02:00.000Z [stdout] report\n",
        );
        let only = |filter: LogFilter| read(dir.path(), &filter, 100).0;
        let web = only(LogFilter {
            process: Some("web".into()),
            ..Default::default()
        });
        assert!(web.contains("shop-v1-web-aa [stdout] web one") && web.contains("web two"));
        assert!(!web.contains("worker"));
        let cron = only(LogFilter {
            process: Some("cron".into()),
            ..Default::default()
        });
        assert_eq!(cron.lines().count(), 1, "{cron}");
        let v2_since = only(LogFilter {
            release: Some(2),
            since: Some("2026-11-30T10:01:30".into()),
            ..Default::default()
        });
        assert_eq!(v2_since.lines().count(), 2, "{v2_since}");
        assert!(v2_since.starts_with("2026-11-30T10:02:00.000Z shop-v2-cron-report-7"));
    }
}
