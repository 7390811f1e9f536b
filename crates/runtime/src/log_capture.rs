//! Capturing an instance's stdout/stderr into its log file, one timestamped, stream-tagged line per line:
//!
//! ```text
//! 2026-11-22T10:00:00.123Z [stdout] listening on :8080
//! 2026-11-22T10:00:01.456Z [slipway] exited with status 1 after 1.3s
//! ```
//!
//! The file is the 12-factor log stream `slipway logs` reads. The supervisor writes its own `[slipway]`
//! lines (exits, probe kills) into the same file so the story of an instance reads in one place. The last
//! few output lines of the current run are also kept in memory, for the "last output" of exit events.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// Lines longer than this are split, so a process printing without newlines cannot grow our memory.
const MAX_LINE: usize = 16 * 1024;
/// Output lines kept for exit messages.
const TAIL_LINES: usize = 3;
/// A log file is rotated to `<name>.1` (replacing the older one) when it reaches this size, so an
/// instance keeps at most twice this much: a bounded ring, however chatty the app is.
pub const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// The supervisor's own notes about the instance.
    Slipway,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Slipway => "slipway",
        })
    }
}

/// One instance's log file plus the tail of its current run's output.
pub struct LogSink {
    inner: Mutex<SinkInner>,
}

struct SinkInner {
    file: File,
    path: std::path::PathBuf,
    size: u64,
    limit: u64,
    tail: VecDeque<String>,
    write_failed: bool,
}

impl LogSink {
    /// Opens `path` for appending, creating it and its parent folders.
    pub fn open(path: &Path) -> io::Result<Arc<LogSink>> {
        Self::open_with_limit(path, LOG_ROTATE_BYTES)
    }

    pub(crate) fn open_with_limit(path: &Path, limit: u64) -> io::Result<Arc<LogSink>> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Arc::new(LogSink {
            inner: Mutex::new(SinkInner {
                file,
                path: path.to_path_buf(),
                size,
                limit,
                tail: VecDeque::new(),
                write_failed: false,
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, SinkInner> {
        // A panic while holding the lock leaves only a half-written line behind: keep logging.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends one line. The file is opened in append mode and each line is one `write`, so lines from
    /// stdout, stderr and the supervisor never interleave mid-line. This is a blocking write on the async
    /// runtime, like most loggers do: a line to a local file is far cheaper than a task hop.
    pub fn write_line(&self, stream: Stream, line: &str) {
        let formatted = format_line(SystemTime::now(), stream, line);
        let mut inner = self.lock();
        if stream != Stream::Slipway {
            if inner.tail.len() == TAIL_LINES {
                inner.tail.pop_front();
            }
            inner.tail.push_back(line.to_owned());
        }
        if inner.size + formatted.len() as u64 > inner.limit && inner.size > 0 {
            inner.rotate();
        }
        inner.size += formatted.len() as u64;
        if let Err(err) = inner.file.write_all(formatted.as_bytes()) {
            if !inner.write_failed {
                tracing::warn!(error = %err, "cannot write instance log; further errors are not reported");
            }
            inner.write_failed = true;
        }
    }

    /// Forgets the kept output: a new run starts.
    pub fn clear_tail(&self) {
        self.lock().tail.clear();
    }

    /// The last (up to 3) output lines of the current run, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }
}

impl SinkInner {
    /// `x.log` becomes `x.log.1` (dropping the previous one) and a new `x.log` starts.
    fn rotate(&mut self) {
        let mut older = self.path.clone().into_os_string();
        older.push(".1");
        let reopened = std::fs::rename(&self.path, &older).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        });
        match reopened {
            Ok(file) => {
                self.file = file;
                self.size = 0;
            }
            Err(err) => {
                if !self.write_failed {
                    tracing::warn!(error = %err, "cannot rotate an instance log");
                }
            }
        }
    }
}

/// `2026-11-22T10:00:00.123Z [stdout] line\n`
pub(crate) fn format_line(at: SystemTime, stream: Stream, line: &str) -> String {
    format!(
        "{} [{stream}] {line}\n",
        humantime::format_rfc3339_millis(at)
    )
}

/// Copies `reader` line by line into `sink` until EOF. The returned task ends when every holder of the
/// pipe's write end (the process and any children it left behind) has closed it.
pub(crate) fn capture<R>(reader: R, stream: Stream, sink: Arc<LogSink>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_line_capped(&mut reader, &mut buf, MAX_LINE).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.strip_suffix('\n').unwrap_or(&line);
                    sink.write_line(stream, line.strip_suffix('\r').unwrap_or(line));
                }
            }
        }
    })
}

/// Reads up to and including the next `\n`, or `max` bytes, whichever comes first. Returns bytes read.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read);
        }
        let room = max - read;
        let (take, done) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len().min(room), available.len() >= room),
        };
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        read += take;
        if done {
            return Ok(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_carry_utc_millis_and_the_stream() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_341_600_123);
        assert_eq!(
            format_line(at, Stream::Stderr, "boom"),
            "2026-11-22T10:00:00.123Z [stderr] boom\n"
        );
    }

    #[tokio::test]
    async fn capture_tags_lines_and_keeps_a_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/app.log");
        let sink = LogSink::open(&path).expect("open");
        let input: &[u8] = b"one\ntwo\r\nthree\nfour\nno newline";
        capture(input, Stream::Stdout, sink.clone())
            .await
            .expect("capture task");
        sink.write_line(Stream::Slipway, "exited");
        assert_eq!(sink.tail(), ["three", "four", "no newline"]);
        let text = std::fs::read_to_string(&path).expect("read log");
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(' ').expect("timestamp").1)
            .collect();
        assert_eq!(
            lines,
            [
                "[stdout] one",
                "[stdout] two",
                "[stdout] three",
                "[stdout] four",
                "[stdout] no newline",
                "[slipway] exited"
            ]
        );
        sink.clear_tail();
        assert!(sink.tail().is_empty());
    }

    #[test]
    fn files_rotate_into_a_bounded_ring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("i.log");
        let sink = LogSink::open_with_limit(&path, 200).expect("open");
        for i in 0..40 {
            sink.write_line(Stream::Stdout, &format!("line {i}"));
        }
        let current = std::fs::read_to_string(&path).expect("current");
        let older = std::fs::read_to_string(dir.path().join("i.log.1")).expect("older");
        assert!(current.len() <= 200 && older.len() <= 200);
        assert!(current.contains("line 39"));
        assert!(!older.contains("line 0\n"), "the oldest lines are gone");
    }

    #[tokio::test]
    async fn long_lines_are_split_not_buffered_forever() {
        let input = [b'x'; 10];
        let mut reader = BufReader::with_capacity(4, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 6)
                .await
                .expect("read"),
            6
        );
        buf.clear();
        assert_eq!(
            read_line_capped(&mut reader, &mut buf, 6)
                .await
                .expect("read"),
            4
        );
    }
}
