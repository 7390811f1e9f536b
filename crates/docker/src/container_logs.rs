//! A container's output as lines, tagged stdout/stderr: what `slipway logs` shows and the instance
//! log file records. The engine delivers output in frames that need not end at line ends, so lines are
//! reassembled per stream here.

use crate::engine::Engine;
use crate::error::DockerError;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::{Stream, StreamExt};
use std::collections::VecDeque;

/// Lines longer than this are split, so output without newlines cannot grow our memory.
const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
}

impl Engine {
    /// The container's output so far and, with `follow`, until it ends. Stops with the container (or
    /// the stream's consumer).
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
    ) -> impl Stream<Item = Result<LogLine, DockerError>> + Send + 'static {
        self.logs_since(id, follow, 0)
    }

    /// [`Engine::logs`] from `since` (Unix seconds) on: what an adopted container printed while no
    /// daemon was reading it, without repeating what its log file already has.
    pub fn logs_since(
        &self,
        id: &str,
        follow: bool,
        since: i64,
    ) -> impl Stream<Item = Result<LogLine, DockerError>> + Send + 'static {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: "all".into(),
            since: i32::try_from(since).unwrap_or(0),
            ..LogsOptions::default()
        };
        let engine = self.clone();
        let action = format!("read the logs of {id}");
        let frames = self.docker.logs(id, Some(options));
        let state = (Box::pin(frames), Lines::default(), VecDeque::new(), false);
        futures_util::stream::unfold(
            state,
            move |(mut frames, mut lines, mut ready, mut ended)| {
                let engine = engine.clone();
                let action = action.clone();
                async move {
                    loop {
                        if let Some(line) = ready.pop_front() {
                            return Some((Ok(line), (frames, lines, ready, ended)));
                        }
                        if ended {
                            return None;
                        }
                        match frames.next().await {
                            Some(Ok(
                                LogOutput::StdOut { message } | LogOutput::Console { message },
                            )) => {
                                ready.extend(lines.push(LogStream::Stdout, &message));
                            }
                            Some(Ok(LogOutput::StdErr { message })) => {
                                ready.extend(lines.push(LogStream::Stderr, &message));
                            }
                            Some(Ok(LogOutput::StdIn { .. })) => {}
                            Some(Err(err)) => {
                                ended = true;
                                let err = engine.error(&action, err);
                                return Some((Err(err), (frames, lines, ready, ended)));
                            }
                            None => {
                                ended = true;
                                ready.extend(lines.finish());
                            }
                        }
                    }
                }
            },
        )
    }
}

/// Reassembles lines from chunks, one buffer per stream.
#[derive(Default)]
pub(crate) struct Lines {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Lines {
    /// Adds a chunk; returns the lines it completed (without their `\n` / `\r\n`).
    pub fn push(&mut self, stream: LogStream, chunk: &[u8]) -> Vec<LogLine> {
        let buffer = match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        };
        let mut done = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                done.push(line(stream, buffer));
            } else {
                buffer.push(byte);
                if buffer.len() >= MAX_LINE {
                    done.push(line(stream, buffer));
                }
            }
        }
        done
    }

    /// The unterminated rest of each stream, at the end of the output.
    pub fn finish(&mut self) -> Vec<LogLine> {
        let mut rest = Vec::new();
        if !self.stdout.is_empty() {
            rest.push(line(LogStream::Stdout, &mut self.stdout));
        }
        if !self.stderr.is_empty() {
            rest.push(line(LogStream::Stderr, &mut self.stderr));
        }
        rest
    }
}

fn line(stream: LogStream, buffer: &mut Vec<u8>) -> LogLine {
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    let text = String::from_utf8_lossy(buffer).into_owned();
    buffer.clear();
    LogLine { stream, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: Vec<LogLine>) -> Vec<(LogStream, String)> {
        lines.into_iter().map(|l| (l.stream, l.text)).collect()
    }

    #[test]
    fn lines_are_reassembled_per_stream() {
        let mut lines = Lines::default();
        assert!(lines.push(LogStream::Stdout, b"hel").is_empty());
        assert_eq!(
            texts(lines.push(LogStream::Stderr, b"oops\r\nwa")),
            vec![(LogStream::Stderr, "oops".into())]
        );
        assert_eq!(
            texts(lines.push(LogStream::Stdout, b"lo\nworld\n")),
            vec![
                (LogStream::Stdout, "hello".into()),
                (LogStream::Stdout, "world".into())
            ]
        );
        assert_eq!(
            texts(lines.finish()),
            vec![(LogStream::Stderr, "wa".into())]
        );
        assert!(lines.finish().is_empty());
    }

    #[test]
    fn endless_lines_are_split() {
        let mut lines = Lines::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let done = lines.push(LogStream::Stdout, &long);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].text.len(), MAX_LINE);
        assert_eq!(lines.finish()[0].text.len(), 10);
    }
}
