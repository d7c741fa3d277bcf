//! Complete error responses the proxy sends on its own behalf.

macro_rules! canned {
    ($code:literal, $reason:literal, $len:literal, $body:literal) => {
        (
            concat!(
                "HTTP/1.1 ",
                $code,
                " ",
                $reason,
                "\r\nContent-Type: text/plain\r\nContent-Length: ",
                $len,
                "\r\nConnection: close\r\n\r\n",
                $body
            )
            .as_bytes(),
            concat!(
                "HTTP/1.1 ",
                $code,
                " ",
                $reason,
                "\r\nContent-Type: text/plain\r\nContent-Length: ",
                $len,
                "\r\n\r\n",
                $body
            )
            .as_bytes(),
        )
    };
}

/// The response for `status`, as (`Connection: close` form, keep-alive form).
/// Unknown codes map to 500.
pub fn response(status: u16) -> (&'static [u8], &'static [u8]) {
    match status {
        400 => canned!("400", "Bad Request", "12", "Bad Request\n"),
        408 => canned!("408", "Request Timeout", "16", "Request Timeout\n"),
        414 => canned!("414", "URI Too Long", "13", "URI Too Long\n"),
        431 => canned!(
            "431",
            "Request Header Fields Too Large",
            "32",
            "Request Header Fields Too Large\n"
        ),
        501 => canned!("501", "Not Implemented", "16", "Not Implemented\n"),
        502 => canned!("502", "Bad Gateway", "12", "Bad Gateway\n"),
        503 => canned!("503", "Service Unavailable", "20", "Service Unavailable\n"),
        504 => canned!("504", "Gateway Timeout", "16", "Gateway Timeout\n"),
        505 => canned!(
            "505",
            "HTTP Version Not Supported",
            "27",
            "HTTP Version Not Supported\n"
        ),
        _ => canned!(
            "500",
            "Internal Server Error",
            "22",
            "Internal Server Error\n"
        ),
    }
}

/// Fields left out of a `TRACE` echo: they may carry credentials (RFC 9110
/// §9.3.8: the final recipient SHOULD exclude sensitive fields).
const TRACE_HIDDEN: [&[u8]; 3] = [b"authorization", b"proxy-authorization", b"cookie"];

/// What an answer says of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: HTTP/1.1 stays open.
    Default,
    /// `Connection: keep-alive`, which an HTTP/1.0 client needs.
    KeepAlive10,
    /// `Connection: close`.
    Close,
}

impl Persistence {
    /// What a response must say for the connection to stay open (`keep`)
    /// or close, to a client speaking `version`.
    pub fn of(keep: bool, version: super::Version) -> Persistence {
        match (keep, version) {
            (false, _) => Persistence::Close,
            (true, super::Version::Http10) => Persistence::KeepAlive10,
            (true, super::Version::Http11) => Persistence::Default,
        }
    }
}

fn put_date(out: &mut crate::buf::Buf, date: &[u8]) {
    out.put(b"Date: ");
    out.put(date);
    out.put(b"\r\n");
}

/// Writes ekilibri's own response for the error `status` (see
/// [`response`]) into `out`, with `Date` (the IMF-fixdate `date`) and what
/// `connection` asks for: an HTTP/1.0 client told nothing would take the
/// connection as closing and wait for the close (RFC 9112 §9.3). The answer
/// to a `HEAD` request (`head_only`) is the head alone, with the
/// `Content-Length` a `GET` would get (RFC 9110 §9.3.2): a body there would
/// be read as the start of the next response.
pub fn error(
    status: u16,
    connection: Persistence,
    head_only: bool,
    date: &[u8],
    out: &mut crate::buf::Buf,
) {
    let (close, keep) = response(status);
    let bytes = if connection == Persistence::Close {
        close
    } else {
        keep
    };
    let bytes = if head_only {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
        &bytes[..end.map_or(bytes.len(), |i| i + 4)]
    } else {
        bytes
    };
    let line = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let need = bytes.len() + 96;
    if out.space() < need {
        out.grow_to(out.len() + need);
    }
    out.put(&bytes[..line]);
    put_date(out, date);
    if connection == Persistence::KeepAlive10 {
        out.put(b"Connection: keep-alive\r\n");
    }
    out.put(&bytes[line..]);
}

/// The answer ekilibri gives as the final recipient of a `TRACE` or
/// `OPTIONS` request with `Max-Forwards: 0` (RFC 9110 §7.6.2): for `TRACE`,
/// 200 with the request head as received (`message/http`, §9.3.8), minus
/// credentials; for `OPTIONS`, an empty 200. `head` is the request head,
/// final blank line included.
pub fn final_hop(
    trace: bool,
    head: &[u8],
    connection: Persistence,
    date: &[u8],
    out: &mut crate::buf::Buf,
) {
    let shown = |line: &&[u8]| {
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        !TRACE_HIDDEN.iter().any(|h| name.eq_ignore_ascii_case(h))
    };
    let lines = || head.split_inclusive(|&b| b == b'\n').filter(shown);
    let body_len: usize = if trace {
        lines().map(<[u8]>::len).sum()
    } else {
        0
    };
    // Status line 17, Date 8 + date, Content-Type 30, Content-Length 16 +
    // up to 20 digits, the connection ending at most 28.
    let need = body_len + 119 + date.len() + 20;
    if out.space() < need {
        out.grow_to(out.len() + need);
    }
    out.put(b"HTTP/1.1 200 OK\r\n");
    put_date(out, date);
    if trace {
        out.put(b"Content-Type: message/http\r\n");
    }
    out.put(b"Content-Length: ");
    out.put_u64(body_len as u64);
    out.put(match connection {
        Persistence::Default => b"\r\n\r\n".as_slice(),
        Persistence::KeepAlive10 => b"\r\nConnection: keep-alive\r\n\r\n",
        Persistence::Close => b"\r\nConnection: close\r\n\r\n",
    });
    if trace {
        for line in lines() {
            out.put(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::response;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn trace_echoes_the_head_without_credentials() {
        let head = b"TRACE / HTTP/1.1\r\nHost: h\r\nCookie: s=1\r\nX-A: b\r\n\
                     authorization: Basic x\r\nMax-Forwards: 0\r\n\r\n";
        let mut out = crate::buf::Buf::with_capacity(64);
        super::final_hop(true, head, super::Persistence::Default, DATE, &mut out);
        let text = String::from_utf8(out.data().to_vec()).unwrap();
        let (resp_head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(resp_head.starts_with(
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: message/http\r\n"
        ));
        assert_eq!(
            body,
            "TRACE / HTTP/1.1\r\nHost: h\r\nX-A: b\r\nMax-Forwards: 0\r\n\r\n"
        );
        assert!(resp_head.ends_with(&format!("Content-Length: {}", body.len())));
        let mut out = crate::buf::Buf::with_capacity(64);
        super::final_hop(false, head, super::Persistence::Close, DATE, &mut out);
        assert_eq!(
            out.data(),
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut out = crate::buf::Buf::with_capacity(64);
        super::final_hop(false, head, super::Persistence::KeepAlive10, DATE, &mut out);
        assert_eq!(
            out.data(),
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn errors_carry_date_and_tell_an_http10_client_the_connection_stays() {
        use super::{Persistence, error};
        let mut out = crate::buf::Buf::with_capacity(16);
        error(502, Persistence::KeepAlive10, false, DATE, &mut out);
        assert_eq!(
            out.data(),
            b"HTTP/1.1 502 Bad Gateway\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Connection: keep-alive\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n\
              Bad Gateway\n"
        );
        let mut out = crate::buf::Buf::with_capacity(16);
        error(408, Persistence::Close, false, DATE, &mut out);
        let text = std::str::from_utf8(out.data()).unwrap();
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\nDate: Sun, 06 Nov 1994"));
        assert!(text.contains("\r\nConnection: close\r\n\r\n"));
        let mut out = crate::buf::Buf::with_capacity(16);
        error(504, Persistence::Default, false, DATE, &mut out);
        assert!(
            !std::str::from_utf8(out.data())
                .unwrap()
                .contains("Connection")
        );
    }

    /// An error answering a HEAD request is its head alone, with the
    /// length a GET would get.
    #[test]
    fn errors_to_head_have_no_body() {
        use super::{Persistence, error};
        for connection in [
            Persistence::Default,
            Persistence::KeepAlive10,
            Persistence::Close,
        ] {
            let mut out = crate::buf::Buf::with_capacity(16);
            error(502, connection, true, DATE, &mut out);
            let text = std::str::from_utf8(out.data()).unwrap();
            assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
            assert!(text.contains("\r\nContent-Length: 12\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\n"), "{text}");
        }
    }

    /// The space reserved must cover the longest answer: a TRACE echo of a
    /// head of 1,000 bytes or more (a four-digit length), to an HTTP/1.0
    /// keep-alive client, into a buffer with no room to spare.
    #[test]
    fn a_long_trace_echo_fits_the_space_it_reserves() {
        let mut head =
            b"TRACE / HTTP/1.0\r\nConnection: keep-alive\r\nMax-Forwards: 0\r\n".to_vec();
        head.extend_from_slice(b"X-Pad: ");
        head.extend(std::iter::repeat_n(b'p', 17_000));
        head.extend_from_slice(b"\r\n\r\n");
        for filler in [0, 1, 100] {
            let mut out = crate::buf::Buf::with_capacity(filler);
            out.put(&vec![b'r'; filler]);
            super::final_hop(true, &head, super::Persistence::KeepAlive10, DATE, &mut out);
            assert!(out.data().ends_with(b"\r\n\r\n"));
        }
    }

    #[test]
    fn lengths_match_bodies() {
        for status in [400, 408, 414, 431, 500, 501, 502, 503, 504, 505] {
            for bytes in [response(status).0, response(status).1] {
                let text = std::str::from_utf8(bytes).unwrap();
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                assert!(head.starts_with(&format!("HTTP/1.1 {status} ")));
                let cl: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(cl, body.len(), "{status}");
            }
        }
    }
}
