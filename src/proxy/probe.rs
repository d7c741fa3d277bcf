//! Active health probes: `GET health_check_path` on a connection of its
//! own, success iff a complete response head with a 2xx or 3xx status
//! arrives.

use std::net::SocketAddr;

use mio::net::TcpStream;

use super::conn::Armed;
use super::health::FailureKind;
use super::io::Readiness;
use crate::balance::BackendId;
use crate::buf::Buf;
use crate::http::head::HeadScan;
use crate::time::Tick;

/// Largest response head a probe reads (status line, fields and the empty
/// line), as large as a proxied response's may be. A longer head is a
/// failure.
pub(super) const MAX_HEAD: usize = crate::buf::LARGE_BUF_SIZE;

/// The probe's input buffer at first; it grows to [`MAX_HEAD`] for a head
/// that does not fit.
pub(super) const FIRST_READ: usize = 8 * 1024;

/// Where a probe is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbePhase {
    Connecting,
    Sending,
    Receiving,
}

/// One probe in flight.
#[derive(Debug)]
pub(super) struct Probe {
    pub sock: TcpStream,
    pub generation: u32,
    pub backend: BackendId,
    pub rd: Readiness,
    pub phase: ProbePhase,
    /// Request bytes still to send.
    pub out: Buf,
    /// Response bytes received (only the head matters), at most
    /// [`MAX_HEAD`].
    pub input: Buf,
    /// When the current phase started.
    pub since: Tick,
    pub timer: Armed,
}

/// Bytes of a probe request.
pub(super) fn request(path: &str, host: SocketAddr) -> Buf {
    const TAIL: &[u8] = b"\r\nUser-Agent: ekilibri-health-check\r\nConnection: close\r\n\r\n";
    // (An IPv6 host with a scope id is up to 64 bytes: sized exactly.)
    let host = host.to_string();
    let mut b = Buf::with_capacity(path.len() + host.len() + TAIL.len() + 32);
    b.put(b"GET ");
    b.put(path.as_bytes());
    b.put(b" HTTP/1.1\r\nHost: ");
    b.put(host.as_bytes());
    b.put(TAIL);
    b
}

/// The probe's verdict from the bytes received so far: `None` until the
/// whole head has come (up to the empty line; bare LF line ends count, as
/// for proxied responses). Any 2xx or 3xx is healthy, as with HAProxy's
/// `option httpchk` and nginx's health checks (a `204` or a redirect from
/// `/health` is common). A bad status line fails at once; a head cut by
/// EOF or longer than [`MAX_HEAD`] fails, and one that stalls fails by the
/// probe's read timeout: a backend that sends a status line and hangs is
/// not healthy.
pub(super) fn verdict(input: &[u8], eof: bool) -> Option<Result<(), FailureKind>> {
    let status_line = input
        .iter()
        .position(|&b| b == b'\n')
        .map(|end| &input[..end]);
    match status_line {
        Some(line) if !healthy_status(line) => Some(Err(FailureKind::BadStatus)),
        Some(_) if HeadScan::default().find_end(input).is_some() => Some(Ok(())),
        _ if eof || input.len() >= MAX_HEAD => Some(Err(FailureKind::BadStatus)),
        _ => None,
    }
}

/// `HTTP/1.x` and a 2xx or 3xx status code (the line without its LF).
fn healthy_status(line: &[u8]) -> bool {
    (line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 "))
        && line.len() >= 12
        && matches!(line[9], b'2' | b'3')
        && line[10].is_ascii_digit()
        && line[11].is_ascii_digit()
        && line.get(12).is_none_or(|&b| b == b' ' || b == b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(b"HTTP/1.1 200 OK\r\n\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.1 200\r\n\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.0 200 OK\r\n\r\n", false), Some(Ok(())));
        assert_eq!(
            verdict(b"HTTP/1.1 2000 OK\r\n", false),
            Some(Err(FailureKind::BadStatus))
        );
        assert_eq!(
            verdict(b"HTTP/1.1 503 Busy\r\n", false),
            Some(Err(FailureKind::BadStatus))
        );
        // Any 2xx or 3xx is healthy; 1xx, 4xx and 5xx are not.
        assert_eq!(
            verdict(b"HTTP/1.1 204 No Content\r\n\r\n", false),
            Some(Ok(()))
        );
        assert_eq!(verdict(b"HTTP/1.1 301 Moved\r\n\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.1 399\r\n\r\n", false), Some(Ok(())));
        for bad in [
            &b"HTTP/1.1 404 NF\r\n"[..],
            b"HTTP/1.1 199\r\n",
            b"HTTP/1.1 2x0\r\n",
            b"HTTP/1.1 20\r\n",
        ] {
            assert_eq!(
                verdict(bad, false),
                Some(Err(FailureKind::BadStatus)),
                "{bad:?}"
            );
        }
        assert_eq!(verdict(b"HTTP/1.1 20", false), None);
        assert_eq!(
            verdict(b"HTTP/1.1 20", true),
            Some(Err(FailureKind::BadStatus))
        );
    }

    #[test]
    fn healthy_only_once_the_head_is_complete() {
        // A status line, then a head that stalls: no verdict yet (the read
        // timeout decides), and a failure if the backend closes.
        for partial in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Len",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r",
        ] {
            assert_eq!(verdict(partial, false), None, "{partial:?}");
            assert_eq!(
                verdict(partial, true),
                Some(Err(FailureKind::BadStatus)),
                "{partial:?}"
            );
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(verdict(head, false), Some(Ok(())));
        // A body after the head, or EOF right after it, changes nothing.
        assert_eq!(verdict(b"HTTP/1.1 200 OK\r\n\r\nok", true), Some(Ok(())));
        // Bare LF line ends, which proxied responses may have too.
        assert_eq!(verdict(b"HTTP/1.1 200 OK\nA: b\n\n", false), Some(Ok(())));
        // A bad status does not wait for the rest of the head.
        assert_eq!(
            verdict(b"HTTP/1.1 500 Oops\r\nContent-Len", false),
            Some(Err(FailureKind::BadStatus))
        );
    }

    #[test]
    fn heads_up_to_the_limit_are_read() {
        // A head of 4 KiB: more than the 1024 bytes a probe once read.
        let mut head = b"HTTP/1.1 200 OK\r\nX-Padding: ".to_vec();
        head.resize(4096, b'a');
        head.extend_from_slice(b"\r\n");
        assert_eq!(verdict(&head, false), None);
        head.extend_from_slice(b"\r\n");
        assert_eq!(verdict(&head, false), Some(Ok(())));
        // MAX_HEAD bytes with the empty line last is healthy; without it,
        // the head is too long.
        head.truncate(head.len() - 4);
        head.resize(MAX_HEAD - 4, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), MAX_HEAD);
        assert_eq!(verdict(&head, false), Some(Ok(())));
        head.truncate(MAX_HEAD - 2);
        head[MAX_HEAD - 4..].fill(b'a');
        head.extend_from_slice(b"\r\n");
        assert_eq!(verdict(&head, false), Some(Err(FailureKind::BadStatus)));
        // A status line alone that fills the buffer.
        assert_eq!(
            verdict(&[b'H'; MAX_HEAD], false),
            Some(Err(FailureKind::BadStatus))
        );
    }

    #[test]
    fn request_names_host_and_path() {
        let r = request("/health", "127.0.0.1:8081".parse().unwrap());
        assert!(
            r.data()
                .starts_with(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n")
        );
        assert!(r.data().ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn request_fits_the_longest_host() {
        let host = std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            65535,
            0,
            u32::MAX,
        ));
        let path = "/".repeat(2048);
        let r = request(&path, host);
        let want = format!("Host: {host}\r\n");
        assert!(r.data().windows(want.len()).any(|w| w == want.as_bytes()));
    }
}
