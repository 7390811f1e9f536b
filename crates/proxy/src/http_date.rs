//! The `Date` header value (RFC 9110 §5.6.7 IMF-fixdate), formatted at most once a second per thread.
//!
//! A proxy forwarding a response without `Date` must add one (RFC 9110 §6.6.1), as hyper does.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const DATE_LEN: usize = 29;

thread_local! {
    static CACHED: Cell<(u64, [u8; DATE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LEN])) };
}

/// Now, as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn now() -> [u8; DATE_LEN] {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let (at, text) = cached.get();
        if at == secs {
            return text;
        }
        let text = format(secs);
        cached.set((secs, text));
        text
    })
}

/// The formatting is `httpdate`'s (hyper's own, so no extra crate); the cache above is what keeps it
/// off the request path.
fn format(secs: u64) -> [u8; DATE_LEN] {
    use std::io::Write;
    let at = UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let mut out = [0u8; DATE_LEN];
    // IMF-fixdate is always 29 ASCII bytes; a year past 9999 (which httpdate refuses) cannot happen
    // with a clock read as unix seconds today.
    let _ = write!(&mut out[..], "{}", httpdate::HttpDate::from(at));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(&format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&format(1_796_083_199), b"Mon, 30 Nov 2026 23:59:59 GMT");
        assert_eq!(now().len(), DATE_LEN);
    }
}
