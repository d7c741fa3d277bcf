//! The access log sink: lines are formatted into a bounded buffer and
//! flushed by the loop with non-blocking writes; when the destination
//! cannot keep up (a slow pipe, a full disk) lines are dropped and counted,
//! and traffic never waits.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::warn;

use crate::config::AccessLog;
use crate::ops::{AccessRecord, LogBuffer, LogFormat};

/// Bytes of request head kept per exchange for the log line.
const MAX_CAPTURE: usize = 2048;

/// What an exchange keeps of its request for the access log: the request
/// line parts, referer and user agent, copied into one reused buffer.
#[derive(Debug, Default)]
pub struct Captured {
    bytes: Vec<u8>,
    method: usize,
    target: usize,
    referer: usize,
    agent: usize,
    /// HTTP/1.0 or HTTP/1.1; `-` for a request line without either.
    pub version: &'static str,
}

impl Captured {
    /// Copies what the log needs from a complete request head.
    pub fn capture(&mut self, head: &[u8]) {
        self.bytes.clear();
        let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
        let line = &head[..line_end];
        let mut parts = line.splitn(3, |&b| b == b' ');
        let method = parts.next().unwrap_or(b"");
        let target = parts.next().unwrap_or(b"");
        // Anything else is a request ekilibri refused (505, or not HTTP).
        self.version = match parts.next() {
            Some(b"HTTP/1.0") => "HTTP/1.0",
            Some(b"HTTP/1.1") => "HTTP/1.1",
            _ => "-",
        };
        let take = |v: &[u8], room: usize| v.len().min(room);
        let m = take(method, MAX_CAPTURE);
        self.bytes.extend_from_slice(&method[..m]);
        self.method = m;
        let t = take(target, MAX_CAPTURE - self.bytes.len());
        self.bytes.extend_from_slice(&target[..t]);
        self.target = t;
        // The first of repeated fields, as nginx's `$http_user_agent`.
        let (mut referer, mut agent): (Option<&[u8]>, Option<&[u8]>) = (None, None);
        for l in head[line_end..].split(|&b| b == b'\n') {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if let Some(colon) = l.iter().position(|&b| b == b':') {
                let (name, value) = (&l[..colon], trim(&l[colon + 1..]));
                if name.eq_ignore_ascii_case(b"referer") {
                    referer = referer.or(Some(value));
                } else if name.eq_ignore_ascii_case(b"user-agent") {
                    agent = agent.or(Some(value));
                }
            }
        }
        let (referer, agent) = (referer.unwrap_or_default(), agent.unwrap_or_default());
        let r = take(referer, MAX_CAPTURE - self.bytes.len());
        self.bytes.extend_from_slice(&referer[..r]);
        self.referer = r;
        let a = take(agent, MAX_CAPTURE - self.bytes.len());
        self.bytes.extend_from_slice(&agent[..a]);
        self.agent = a;
    }

    fn parts(&self) -> (&[u8], &[u8], &[u8], &[u8]) {
        let (m, rest) = self.bytes.split_at(self.method);
        let (t, rest) = rest.split_at(self.target);
        let (r, a) = rest.split_at(self.referer);
        (m, t, r, &a[..self.agent])
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &v[s..e]
}

/// One finished request, as logged.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The client.
    pub client: SocketAddr,
    /// Status sent (ekilibri's own for errors).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// The backend that answered, if any.
    pub backend: Option<SocketAddr>,
    /// Time from the request to the backend's response head.
    pub upstream_time: Option<Duration>,
    /// Time from the request head to the end of the response.
    pub total_time: Duration,
}

enum Dest {
    Stdout(File),
    File(File, PathBuf),
}

/// The access log of one reactor.
pub struct AccessSink {
    format: LogFormat,
    dest: Dest,
    buf: LogBuffer,
    scratch: Vec<u8>,
    /// The request of an answer ekilibri gives itself ([`Self::record_own`]).
    own: Captured,
    reported_drops: u64,
    failing: bool,
}

impl std::fmt::Debug for AccessSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessSink")
            .field("format", &self.format)
            .finish()
    }
}

impl AccessSink {
    /// Opens the destination; `None` when the log is off.
    pub fn open(log: &AccessLog, format: LogFormat) -> io::Result<Option<AccessSink>> {
        let dest = match log {
            AccessLog::Off => return Ok(None),
            AccessLog::Stdout => {
                // A duplicate of stdout, non-blocking, so a slow reader
                // drops lines instead of stalling the loop.
                // SAFETY: dup(2) of fd 1; the new descriptor is owned here.
                let fd = unsafe { libc::dup(1) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `fd` is a fresh descriptor nobody else owns.
                let file = unsafe { File::from_raw_fd(fd) };
                set_nonblocking(&file)?;
                Dest::Stdout(file)
            }
            AccessLog::File(path) => Dest::File(open_append(path)?, path.clone()),
        };
        Ok(Some(AccessSink {
            format,
            dest,
            buf: LogBuffer::new(crate::ops::access_log::DEFAULT_LOG_BUFFER),
            scratch: Vec::with_capacity(1024),
            own: Captured::default(),
            reported_drops: 0,
            failing: false,
        }))
    }

    /// Queues one line.
    pub fn record(&mut self, req: &Captured, o: &Outcome) {
        let (method, target, referer, agent) = req.parts();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let r = AccessRecord {
            client: o.client,
            method,
            target,
            version: if req.version.is_empty() {
                "HTTP/1.1"
            } else {
                req.version
            },
            status: o.status,
            bytes: o.bytes,
            backend: o.backend,
            upstream_time: o.upstream_time,
            total_time: o.total_time,
            referer: (!referer.is_empty()).then_some(referer),
            user_agent: (!agent.is_empty()).then_some(agent),
            unix_time_secs: now.as_secs(),
        };
        self.buf.push_record(self.format, &r, &mut self.scratch);
    }

    /// Queues the line of an answer ekilibri gave itself, with no backend:
    /// a request it refused (`head` is what arrived of it, perhaps not a
    /// request at all: the line shows its first bytes, escaped), a 502 with
    /// no backend in rotation, a `TRACE`/`OPTIONS` it answered as the last
    /// hop. `total_time` runs from the head's first byte.
    pub fn record_own(
        &mut self,
        client: SocketAddr,
        head: &[u8],
        status: u16,
        total_time: Duration,
    ) {
        let mut own = std::mem::take(&mut self.own);
        own.capture(head);
        let o = Outcome {
            client,
            status,
            bytes: 0,
            backend: None,
            upstream_time: None,
            total_time,
        };
        self.record(&own, &o);
        self.own = own;
    }

    /// Writes what is queued without blocking; returns lines dropped since
    /// the last call (for the metrics).
    pub fn flush(&mut self) -> u64 {
        let file = match &mut self.dest {
            Dest::Stdout(f) | Dest::File(f, _) => f,
        };
        match self.buf.flush_to(file) {
            // (Nothing to write says nothing of whether writes succeed.)
            Ok(0) => {}
            Ok(_) => self.failing = false,
            Err(e) => {
                // A full disk or a broken pipe: the lines are lost and
                // counted, traffic goes on; one warning per failing spell.
                let lines = self.buf.clear();
                if !self.failing {
                    warn!(
                        "access log: {e}; dropping lines until writes succeed again ({lines} so far)"
                    );
                }
                self.failing = true;
            }
        }
        let dropped = self.buf.dropped() - self.reported_drops;
        self.reported_drops = self.buf.dropped();
        dropped
    }

    /// Reopens the log file (after logrotate moved it).
    pub fn reopen(&mut self) {
        if let Dest::File(f, path) = &mut self.dest {
            match open_append(path) {
                Ok(new) => {
                    *f = new;
                    self.buf.reopened();
                }
                Err(e) => warn!("access log: cannot reopen {}: {e}", path.display()),
            }
        }
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    set_nonblocking(&f)?;
    Ok(f)
}

fn set_nonblocking(f: &File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Write for Dest {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Dest::Stdout(f) | Dest::File(f, _) => f.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_request_line_referer_and_agent() {
        let mut c = Captured::default();
        c.capture(
            b"GET /a?b HTTP/1.0\r\nHost: h\r\nUser-Agent: curl/8\r\nReferer:  http://x/ \r\n\r\n",
        );
        assert_eq!(
            c.parts(),
            (&b"GET"[..], &b"/a?b"[..], &b"http://x/"[..], &b"curl/8"[..])
        );
        assert_eq!(c.version, "HTTP/1.0");
        c.capture(b"POST / HTTP/1.1\r\n\r\n");
        assert_eq!(c.parts(), (&b"POST"[..], &b"/"[..], &b""[..], &b""[..]));
    }

    #[test]
    fn repeated_referer_and_agent_log_the_first_as_nginx_does() {
        let mut c = Captured::default();
        c.capture(b"GET / HTTP/1.1\r\nUser-Agent: one\r\nReferer: r1\r\nuser-agent: two\r\nReferer: r2\r\n\r\n");
        assert_eq!(c.parts(), (&b"GET"[..], &b"/"[..], &b"r1"[..], &b"one"[..]));
    }
}
