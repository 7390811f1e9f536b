//! Where a request and a response end, for the relay's one kind of exchange: requests without a body
//! (wrk's GETs), responses framed by `Content-Length`. Pure, shared by both loops so they do the same
//! user-space work and differ only in how they wait and do I/O.

/// The end of the first request head in `buf` (its bytes, `\r\n\r\n` included).
pub fn request_end(buf: &[u8]) -> Option<usize> {
    head_end(buf)
}

/// The end of the first response in `buf` (head and `Content-Length` body), once all of it is there.
pub fn response_end(buf: &[u8]) -> Option<usize> {
    let head = head_end(buf)?;
    let length = content_length(&buf[..head]).unwrap_or(0);
    let end = head + length;
    (buf.len() >= end).then_some(end)
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        if !name.eq_ignore_ascii_case(b"content-length") {
            return None;
        }
        std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            request_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"),
            Some(27)
        );
        assert_eq!(request_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
        assert_eq!(response_end(response), Some(response.len()));
        assert_eq!(response_end(&response[..response.len() - 1]), None);
    }
}
