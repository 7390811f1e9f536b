//! The fast path's chunked-body decoder: any bytes, split anywhere, decode without a panic to the same
//! end, payload and verdict as when fed whole (the end of a message must not depend on how TCP split
//! it); the payload is never longer than the bytes consumed. A body encoded from chunks, extensions and
//! trailers the decoder must accept ends exactly where the encoding does, with the payload given.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slipway_proxy::fuzzing::{ChunkedDecoder, ChunkedError};

#[derive(Debug, Arbitrary)]
enum Input {
    /// Raw bytes and where to split them.
    Raw { bytes: Vec<u8>, splits: Vec<u16> },
    /// A well-formed body: chunks (empty ones skipped), an extension on each, trailer lines, and the
    /// next request's bytes after it.
    Encoded {
        chunks: Vec<Vec<u8>>,
        extension: Option<(u8, u8)>,
        trailers: Vec<(u8, u8)>,
        uppercase: bool,
        after: Vec<u8>,
        splits: Vec<u16>,
    },
}

/// (bytes in the message, payload, done)
type Outcome = Result<(usize, Vec<u8>, bool), ChunkedError>;

fn decode(pieces: &[&[u8]]) -> Outcome {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = Vec::new();
    let mut used = 0;
    for piece in pieces {
        let n = decoder.feed(piece, |d| payload.extend_from_slice(d))?;
        assert!(n <= piece.len());
        used += n;
        if n < piece.len() {
            assert!(decoder.is_done(), "stopped early without an end");
            break;
        }
    }
    assert!(payload.len() <= used);
    Ok((used, payload, decoder.is_done()))
}

fn split<'a>(bytes: &'a [u8], splits: &[u16]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = splits
        .iter()
        .map(|&s| usize::from(s) % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&bytes[from..cut]);
        from = cut;
    }
    pieces.push(&bytes[from..]);
    pieces
}

const TCHARS: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fuzz_target!(|input: Input| {
    match input {
        Input::Raw { bytes, splits } => {
            let whole = decode(&[&bytes]);
            assert_eq!(
                decode(&split(&bytes, &splits)),
                whole,
                "the split changed the outcome"
            );
            if let Ok((used, _, true)) = whole {
                // Nothing after the end is read: the same message alone decodes the same.
                assert_eq!(decode(&[&bytes[..used]]), whole);
            }
        }
        Input::Encoded {
            chunks,
            extension,
            trailers,
            uppercase,
            after,
            splits,
        } => {
            let token = |b: u8| TCHARS[usize::from(b) % TCHARS.len()];
            let mut body = Vec::new();
            let mut payload = Vec::new();
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                let size = if uppercase {
                    format!("{:X}", chunk.len())
                } else {
                    format!("{:x}", chunk.len())
                };
                body.extend_from_slice(size.as_bytes());
                if let Some((name, value)) = extension {
                    body.extend_from_slice(&[b';', token(name), b'=', token(value)]);
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
                payload.extend_from_slice(chunk);
            }
            body.extend_from_slice(b"0\r\n");
            for (name, value) in trailers.iter().take(20) {
                body.extend_from_slice(&[token(*name), b':', b' ', token(*value), b'\r', b'\n']);
            }
            body.extend_from_slice(b"\r\n");
            let end = body.len();
            body.extend_from_slice(&after);
            let outcome = decode(&split(&body, &splits));
            assert_eq!(
                outcome,
                Ok((end, payload, true)),
                "a well-formed body misread"
            );
        }
    }
});
