//! Finding where a chunked body ends (RFC 9112 §7.1) while its bytes are relayed as they are.
//!
//! The fast path forwards chunked bodies verbatim (framing, extensions and trailers included), so it only
//! needs to know which bytes belong to the message and which payload bytes are in them (for the shadow
//! comparison). The decoder is strict about framing — a malformed body must never let the next message's
//! boundary be guessed differently by us and by the peer — and bounds what it accepts outside the data
//! (extensions and trailers), like hyper. Since extensions and trailers are forwarded, their syntax is
//! checked too: a quoted extension value holding a line end, or a trailer line that is not a field, would
//! let a parser that reads them differently find another end.

/// Bytes of chunk extensions and of trailers accepted per message.
const MAX_OVERHEAD: usize = 16 * 1024;

/// The body's framing is broken (or its extensions/trailers too long): the connection cannot be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkedError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size (`digits` so far).
    Size,
    /// After the size: optional whitespace and `;name=value` extensions, until CR.
    Extension,
    /// Inside a quoted extension value, and just after a backslash in one.
    Quoted,
    QuotedEscape,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: a trailer field line, or the CR of the empty line ending the message.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

/// Where one chunked message stands.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Size digits read so far, then the data bytes left in the current chunk.
    size: u64,
    digits: u8,
    overhead: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
            overhead: 0,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads framing from `input`; returns how many of its bytes belong to this message (all of them unless
    /// the message ends inside `input`). `data` gets the payload bytes, in order.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let take = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                data(&input[i..i + take]);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        self.state = match (self.state, byte) {
            (State::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                // 16 hex digits fill a u64; more would overflow.
                if self.digits == 16 {
                    return Err(ChunkedError);
                }
                self.digits += 1;
                self.size = (self.size << 4) | u64::from(hex_value(byte));
                State::Size
            }
            (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
            (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => {
                self.overhead(State::Extension)?
            }
            (State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'"') => self.overhead(State::Quoted)?,
            (State::Extension, b';' | b'=' | b' ' | b'\t') => self.overhead(State::Extension)?,
            (State::Extension, _) if is_tchar(byte) => self.overhead(State::Extension)?,
            (State::Quoted, b'"') => self.overhead(State::Extension)?,
            (State::Quoted, b'\\') => self.overhead(State::QuotedEscape)?,
            (State::Quoted | State::QuotedEscape, _) if is_field_text(byte) => {
                self.overhead(State::Quoted)?
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::TrailerStart,
            (State::SizeLf, b'\n') => State::Data,
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.digits = 0;
                State::Size
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::TrailerName, _) if is_tchar(byte) => {
                self.overhead(State::TrailerName)?
            }
            (State::TrailerName, b':') => self.overhead(State::TrailerValue)?,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_field_text(byte) => {
                self.overhead(State::TrailerValue)?
            }
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            _ => return Err(ChunkedError),
        };
        Ok(())
    }

    fn overhead(&mut self, next: State) -> Result<State, ChunkedError> {
        self.overhead += 1;
        if self.overhead > MAX_OVERHEAD {
            return Err(ChunkedError);
        }
        Ok(next)
    }
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A byte of a field value or quoted string: visible, space, tab or obs-text — no control characters.
fn is_field_text(byte: u8) -> bool {
    matches!(byte, b'\t' | b' '..=b'~' | 0x80..=0xff)
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns (bytes in the message, payload, done).
    fn run(input: &[u8], step: usize) -> Result<(usize, Vec<u8>, bool), ChunkedError> {
        let mut decoder = ChunkedDecoder::new();
        let mut payload = Vec::new();
        let mut used = 0;
        for piece in input.chunks(step) {
            let n = decoder.feed(piece, |d| payload.extend_from_slice(d))?;
            used += n;
            if n < piece.len() {
                break;
            }
        }
        Ok((used, payload, decoder.is_done()))
    }

    #[test]
    fn finds_the_end_in_any_split() {
        let body = b"5\r\nhello\r\n6;name=val ; q=\"a;\\\"b\"\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n";
        let end = body.len() - b"GET / HTTP/1.1\r\n".len();
        for step in [1, 2, 3, 7, body.len()] {
            let (used, payload, done) = run(body, step).expect("valid");
            assert_eq!((used, &payload[..], done), (end, &b"hello world"[..], true));
        }
    }

    #[test]
    fn incomplete_body_is_not_done() {
        let (used, payload, done) = run(b"a\r\n0123", 64).expect("valid so far");
        assert_eq!((used, &payload[..], done), (7, &b"0123"[..], false));
        let (_, _, done) = run(b"0\r\n", 64).expect("valid so far");
        assert!(
            !done,
            "the empty line after the last chunk is still missing"
        );
    }

    #[test]
    fn rejects_broken_framing() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"11111111111111111\r\n",
            b"0\r\nbad\ntrailer\r\n\r\n",
            b"1;a\nb\r\n",
            // A quoted extension must close on its line; no control bytes in it.
            b"1;a=\"x\r\n\"\r\nb\r\n",
            b"1;a=\"x\x01\"\r\nb\r\n",
            b"1;a\x00\r\nb\r\n",
            b"1;a=b\x7f\r\nb\r\n",
            // Trailers are fields: a name, a colon, a value without control bytes.
            b"0\r\nno colon\r\n\r\n",
            b"0\r\n folded: x\r\n\r\n",
            b"0\r\nX: a\x00b\r\n\r\n",
            b"0\r\nX : a\r\n\r\n",
        ] {
            assert_eq!(
                run(bad, 64),
                Err(ChunkedError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_extension = [b"1;".as_slice(), &vec![b'a'; MAX_OVERHEAD + 1]].concat();
        assert_eq!(run(&long_extension, 4096), Err(ChunkedError));
    }

    #[test]
    fn largest_chunk_size_is_accepted() {
        let mut decoder = ChunkedDecoder::new();
        assert_eq!(decoder.feed(b"ffffffffffffffff\r\nab", |_| {}), Ok(20));
        assert!(!decoder.is_done());
    }
}
