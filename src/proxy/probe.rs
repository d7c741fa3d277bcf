//! Active health probes: `GET health_check_path` on a connection of its
//! own, success iff the status is 200.

use std::net::SocketAddr;

use mio::net::TcpStream;

use super::conn::Armed;
use super::health::FailureKind;
use super::io::Readiness;
use crate::balance::BackendId;
use crate::buf::Buf;
use crate::time::Tick;

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
    /// Response bytes received (only the status line matters).
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
/// status line is complete (or the bytes cannot be a status line). Any 2xx
/// or 3xx is healthy, as with HAProxy's `option httpchk` and nginx's
/// health checks (a `204` or a redirect from `/health` is common).
pub(super) fn verdict(input: &[u8], eof: bool) -> Option<Result<(), FailureKind>> {
    match input.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let line = &input[..end];
            let ok = (line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 "))
                && line.len() >= 12
                && matches!(line[9], b'2' | b'3')
                && line[10].is_ascii_digit()
                && line[11].is_ascii_digit()
                && line.get(12).is_none_or(|&b| b == b' ' || b == b'\r');
            Some(if ok {
                Ok(())
            } else {
                Err(FailureKind::BadStatus)
            })
        }
        None if eof || input.len() >= 1024 => Some(Err(FailureKind::BadStatus)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(verdict(b"HTTP/1.1 200 OK\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.1 200\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.0 200 OK\r\n", false), Some(Ok(())));
        assert_eq!(
            verdict(b"HTTP/1.1 2000 OK\r\n", false),
            Some(Err(FailureKind::BadStatus))
        );
        assert_eq!(
            verdict(b"HTTP/1.1 503 Busy\r\n", false),
            Some(Err(FailureKind::BadStatus))
        );
        // Any 2xx or 3xx is healthy; 1xx, 4xx and 5xx are not.
        assert_eq!(verdict(b"HTTP/1.1 204 No Content\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.1 301 Moved\r\n", false), Some(Ok(())));
        assert_eq!(verdict(b"HTTP/1.1 399\r\n", false), Some(Ok(())));
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
