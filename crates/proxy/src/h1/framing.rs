//! Where a request body ends (RFC 9112 §6), decided from its `Content-Length` and `Transfer-Encoding`
//! fields — or refused.
//!
//! Request smuggling lives in the gap between two parsers that frame the same bytes differently, so any
//! request whose framing could be read two ways is refused with a 400 (501 for a transfer coding the proxy
//! does not implement) and its connection closed, never guessed at or handed on: both framing fields at
//! once, lengths that disagree or are not plain digits, a coding after `chunked`, a transfer coding in an
//! HTTP/1.0 request. The same length sent twice is one length, as RFC 9110 §8.6 allows, and the instance
//! gets a single `Content-Length`.

use http::StatusCode;

use crate::h1::request_head::trim;

/// Why a request is refused: the status and what the page says.
pub(crate) type Refusal = (StatusCode, &'static str);

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestBody {
    None,
    Length(u64),
    Chunked,
}

/// The framing fields of one request, collected as its head is read.
#[derive(Debug, Default)]
pub(crate) struct FramingFields {
    length: Option<u64>,
    transfer_encoding: bool,
    /// `chunked` was the last coding seen so far.
    chunked_last: bool,
    /// A coding other than `chunked` was named.
    other_coding: bool,
    error: Option<Refusal>,
}

impl FramingFields {
    /// One `Content-Length` field: a decimal length, equal to any earlier one. (A list in one field,
    /// `4, 4`, is refused as hyper refuses it, so that both paths answer alike.)
    pub(crate) fn content_length(&mut self, value: &[u8]) {
        match (parse_length(value), self.length) {
            (None, _) => self.refuse((StatusCode::BAD_REQUEST, "invalid Content-Length")),
            (Some(n), Some(seen)) if n != seen => {
                self.refuse((StatusCode::BAD_REQUEST, "Content-Length values differ"));
            }
            (Some(n), _) => self.length = Some(n),
        }
    }

    /// One `Transfer-Encoding` field: a list of codings, which must end with a single `chunked`.
    pub(crate) fn transfer_encoding(&mut self, value: &[u8]) {
        self.transfer_encoding = true;
        for coding in value.split(|&b| b == b',').map(trim) {
            if coding.is_empty() {
                continue;
            }
            if self.chunked_last {
                // Anything after `chunked` (even `chunked` again) leaves the end of the body unknown.
                let message = "a transfer coding follows chunked";
                self.refuse((StatusCode::BAD_REQUEST, message));
            }
            self.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            self.other_coding |= !self.chunked_last;
        }
    }

    /// The body's framing, for a request of HTTP/1.`minor_version`.
    pub(crate) fn body(self, minor_version: u8) -> Result<RequestBody, Refusal> {
        if let Some(refusal) = self.error {
            return Err(refusal);
        }
        if !self.transfer_encoding {
            return Ok(match self.length {
                None | Some(0) => RequestBody::None,
                Some(n) => RequestBody::Length(n),
            });
        }
        if minor_version == 0 {
            // RFC 9112 §6.1: an HTTP/1.0 recipient may not know chunked; its framing is faulty.
            return Err((
                StatusCode::BAD_REQUEST,
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if self.length.is_some() {
            return Err((
                StatusCode::BAD_REQUEST,
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if !self.chunked_last {
            return Err((
                StatusCode::BAD_REQUEST,
                "Transfer-Encoding must end with chunked",
            ));
        }
        if self.other_coding {
            return Err((
                StatusCode::NOT_IMPLEMENTED,
                "only the chunked transfer coding is supported",
            ));
        }
        Ok(RequestBody::Chunked)
    }

    /// The declared length, forwarded as the one `Content-Length` (also `0`, which some servers require).
    pub(crate) fn declared_length(&self) -> Option<u64> {
        self.length
    }

    fn refuse(&mut self, refusal: Refusal) {
        self.error.get_or_insert(refusal);
    }
}

/// A `Content-Length` value: digits only, no sign, no list, no overflow.
pub(crate) fn parse_length(value: &[u8]) -> Option<u64> {
    let digits = trim(value);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(fields: &[(&str, &str)], minor: u8) -> Result<RequestBody, u16> {
        let mut framing = FramingFields::default();
        for (name, value) in fields {
            match *name {
                "cl" => framing.content_length(value.as_bytes()),
                _ => framing.transfer_encoding(value.as_bytes()),
            }
        }
        framing.body(minor).map_err(|(status, _)| status.as_u16())
    }

    #[test]
    fn one_clear_framing_is_read() {
        assert_eq!(framing(&[], 1), Ok(RequestBody::None));
        assert_eq!(framing(&[("cl", "0")], 1), Ok(RequestBody::None));
        assert_eq!(framing(&[("cl", " 12 ")], 0), Ok(RequestBody::Length(12)));
        assert_eq!(
            framing(&[("cl", "5"), ("cl", "5")], 1),
            Ok(RequestBody::Length(5))
        );
        assert_eq!(framing(&[("te", "Chunked")], 1), Ok(RequestBody::Chunked));
        assert_eq!(
            framing(&[("te", " chunked ,")], 1),
            Ok(RequestBody::Chunked)
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for (fields, minor, status) in [
            (&[("cl", "5"), ("te", "chunked")][..], 1, 400),
            (&[("te", "chunked"), ("cl", "5")], 1, 400),
            (&[("te", "chunked")], 0, 400),
            (&[("cl", "5"), ("cl", "6")], 1, 400),
            (&[("cl", "5, 6")], 1, 400),
            (&[("cl", "5, 5")], 1, 400),
            (&[("cl", "+5")], 1, 400),
            (&[("cl", "-1")], 1, 400),
            (&[("cl", "0x5")], 1, 400),
            (&[("cl", "5 5")], 1, 400),
            (&[("cl", "")], 1, 400),
            (&[("cl", "99999999999999999999")], 1, 400),
            (&[("te", "chunked, chunked")], 1, 400),
            (&[("te", "chunked"), ("te", "chunked")], 1, 400),
            (&[("te", "chunked, gzip")], 1, 400),
            (&[("te", "gzip")], 1, 400),
            (&[("te", "")], 1, 400),
            (&[("te", "chunked;q=1")], 1, 400),
            (&[("te", "xchunked")], 1, 400),
            (&[("te", "gzip, chunked")], 1, 501),
            (&[("te", "identity"), ("te", "chunked")], 1, 501),
        ] {
            assert_eq!(framing(fields, minor), Err(status), "{fields:?}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b" 42 "), Some(42));
        assert_eq!(parse_length(b"18446744073709551615"), None);
        assert_eq!(
            parse_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_length(b"1,1"), None);
        assert_eq!(parse_length(b""), None);
    }
}
