//! Access log lines and the bounded buffer they wait in.
//!
//! [`format_line`] writes one line per exchange in one of three
//! [`LogFormat`]s. Every byte that came from the client (method, target,
//! `Referer`, `User-Agent`) is escaped: in the text formats anything that is
//! not printable ASCII, and `"` and `\`, become `\xNN`; in JSON they become
//! `\u00NN` (or `\"`, `\\`). A client therefore cannot end a field early or
//! inject a line.
//!
//! The reactor appends lines to a [`LogBuffer`] and drains it with
//! non-blocking writes ([`LogBuffer::flush_to`]); when the buffer is full
//! a line is dropped and counted rather than blocking the loop.

use crate::time::date::{MONTHS, civil};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use super::escape::{json_str, log_field};
use crate::buf::Buf;

/// Layout of an access log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// The Common Log Format plus ekilibri's fields:
    ///
    /// ```text
    /// 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 backend=10.0.0.1:8081 upstream_time=0.001 total_time=0.002
    /// ```
    Common,
    /// Common plus `"Referer" "User-Agent"` (Apache/nginx `combined`), then
    /// ekilibri's fields:
    ///
    /// ```text
    /// 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a HTTP/1.1" 200 2326 "http://example.com/" "curl/8.0" backend=10.0.0.1:8081 upstream_time=0.001 total_time=0.002
    /// ```
    Combined,
    /// One JSON object per line:
    ///
    /// ```text
    /// {"time":"2000-10-10T13:55:36Z","client":"127.0.0.1","client_port":51234,"method":"GET","target":"/a","version":"HTTP/1.1","status":200,"bytes":2326,"referer":null,"user_agent":"curl/8.0","backend":"10.0.0.1:8081","upstream_time":0.001234,"total_time":0.002345}
    /// ```
    Json,
}

impl std::fmt::Display for LogFormat {
    /// As written in the file: `common`, `combined` or `json`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Common => "common",
            LogFormat::Combined => "combined",
            LogFormat::Json => "json",
        })
    }
}

/// What is logged of one exchange. Byte fields are logged as received,
/// escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRecord<'a> {
    /// The client's address (text formats log the IP only, like `%h`).
    pub client: SocketAddr,
    /// The request method; empty if the request line could not be read
    /// (the request is then logged as `"-"`).
    pub method: &'a [u8],
    /// The request target as sent.
    pub target: &'a [u8],
    /// The protocol version as written in the request line (`"HTTP/1.1"`).
    pub version: &'a str,
    /// The status sent to the client.
    pub status: u16,
    /// Bytes sent to the client for this response (written as is, `0`
    /// included, like nginx's `$body_bytes_sent`).
    pub bytes: u64,
    /// The backend that answered, if any.
    pub backend: Option<SocketAddr>,
    /// From the request being sent to the backend to its response head.
    pub upstream_time: Option<Duration>,
    /// From the first byte of the request to the last byte of the response.
    pub total_time: Duration,
    /// The `Referer` field value, if present.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` field value, if present.
    pub user_agent: Option<&'a [u8]>,
    /// Wall-clock time of the request, seconds since the Unix epoch (UTC).
    pub unix_time_secs: u64,
}

/// `[10/Oct/2000:13:55:36 +0000]`.
fn clf_date(out: &mut Vec<u8>, unix: u64) {
    let c = civil(unix);
    let _ = write!(
        out,
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    );
}

/// `2000-10-10T13:55:36Z`.
fn rfc3339(out: &mut Vec<u8>, unix: u64) {
    let c = civil(unix);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
}

/// Seconds with millisecond resolution (truncated), nginx style: `0.001`.
fn secs_ms(out: &mut Vec<u8>, d: Duration) {
    let ms = d.as_millis();
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

/// Seconds with microsecond resolution (truncated): `0.001234`.
fn secs_us(out: &mut Vec<u8>, d: Duration) {
    let us = d.as_micros();
    let _ = write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000);
}

fn quoted_or_dash(out: &mut Vec<u8>, v: Option<&[u8]>) {
    out.push(b'"');
    match v {
        Some(v) => log_field(out, v),
        None => out.push(b'-'),
    }
    out.push(b'"');
}

fn json_opt_str(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => json_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends one access log line for `r` in format `fmt` to `out`, newline
/// included.
pub fn format_line(fmt: LogFormat, r: &AccessRecord<'_>, out: &mut Vec<u8>) {
    match fmt {
        LogFormat::Common | LogFormat::Combined => {
            let _ = write!(out, "{} - - ", r.client.ip());
            clf_date(out, r.unix_time_secs);
            out.extend_from_slice(b" \"");
            if r.method.is_empty() {
                out.push(b'-');
            } else {
                log_field(out, r.method);
                out.push(b' ');
                log_field(out, r.target);
                out.push(b' ');
                log_field(out, r.version.as_bytes());
            }
            let _ = write!(out, "\" {} {}", r.status, r.bytes);
            if fmt == LogFormat::Combined {
                out.push(b' ');
                quoted_or_dash(out, r.referer);
                out.push(b' ');
                quoted_or_dash(out, r.user_agent);
            }
            out.extend_from_slice(b" backend=");
            match r.backend {
                Some(b) => {
                    let _ = write!(out, "{b}");
                }
                None => out.push(b'-'),
            }
            out.extend_from_slice(b" upstream_time=");
            match r.upstream_time {
                Some(d) => secs_ms(out, d),
                None => out.push(b'-'),
            }
            out.extend_from_slice(b" total_time=");
            secs_ms(out, r.total_time);
            out.push(b'\n');
        }
        LogFormat::Json => {
            out.extend_from_slice(b"{\"time\":\"");
            rfc3339(out, r.unix_time_secs);
            let _ = write!(
                out,
                "\",\"client\":\"{}\",\"client_port\":{},\"method\":",
                r.client.ip(),
                r.client.port()
            );
            json_str(out, r.method);
            out.extend_from_slice(b",\"target\":");
            json_str(out, r.target);
            out.extend_from_slice(b",\"version\":");
            json_str(out, r.version.as_bytes());
            let _ = write!(
                out,
                ",\"status\":{},\"bytes\":{},\"referer\":",
                r.status, r.bytes
            );
            json_opt_str(out, r.referer);
            out.extend_from_slice(b",\"user_agent\":");
            json_opt_str(out, r.user_agent);
            out.extend_from_slice(b",\"backend\":");
            match r.backend {
                Some(b) => {
                    let _ = write!(out, "\"{b}\"");
                }
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"upstream_time\":");
            match r.upstream_time {
                Some(d) => secs_us(out, d),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"total_time\":");
            secs_us(out, r.total_time);
            out.extend_from_slice(b"}\n");
        }
    }
}

/// Default capacity of a [`LogBuffer`]: 256 KiB.
pub const DEFAULT_LOG_BUFFER: usize = 256 * 1024;

/// A bounded buffer of whole log lines waiting to be written.
///
/// [`LogBuffer::push`] takes a line only if all of it fits (so a line is
/// never cut), and otherwise drops it and counts it.
/// [`LogBuffer::flush_to`] writes as much as the destination takes without
/// blocking. The storage is allocated once.
#[derive(Debug)]
pub struct LogBuffer {
    buf: Buf,
    dropped: u64,
    /// What was written last ends inside a line (a short write, then an
    /// error): the next bytes written must start a new line.
    mid_line: bool,
    /// The buffer starts with the newline that ends such a cut line.
    repair: bool,
}

impl LogBuffer {
    /// An empty buffer holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            buf: Buf::with_capacity(capacity),
            dropped: 0,
            mid_line: false,
            repair: false,
        }
    }

    /// Appends `line` (which should end with `\n`) if it fits entirely;
    /// otherwise drops it, counts it and returns `false`.
    pub fn push(&mut self, line: &[u8]) -> bool {
        if line.len() > self.buf.space() {
            self.dropped += 1;
            return false;
        }
        self.buf.put(line);
        true
    }

    /// Formats `r` into `scratch` (cleared first; keep one around so no
    /// allocation happens per line) and pushes it: [`format_line`] then
    /// [`LogBuffer::push`].
    pub fn push_record(
        &mut self,
        fmt: LogFormat,
        r: &AccessRecord<'_>,
        scratch: &mut Vec<u8>,
    ) -> bool {
        scratch.clear();
        format_line(fmt, r, scratch);
        self.push(scratch)
    }

    /// Writes pending bytes to `w` until the buffer is empty or `w` would
    /// block; returns the bytes written by this call. Partial writes are
    /// resumed where they stopped (on the next call, after `WouldBlock`);
    /// `Interrupted` is retried. Never blocks by itself: with a
    /// non-blocking `w` it returns as soon as `w` stops taking bytes.
    ///
    /// # Errors
    ///
    /// Any error of `w` other than `WouldBlock` and `Interrupted` is
    /// returned; bytes written before it stay written and are gone from the
    /// buffer, the rest stays. A `write` returning `Ok(0)` is reported as
    /// `WriteZero`.
    pub fn flush_to<W: Write + ?Sized>(&mut self, w: &mut W) -> io::Result<usize> {
        let mut written = 0;
        while !self.buf.is_empty() {
            match w.write(self.buf.data()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let n = n.min(self.buf.len());
                    self.mid_line = self.buf.data()[n - 1] != b'\n';
                    self.repair = false;
                    self.buf.consume(n);
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(written)
    }

    /// Drops every pending byte (after a write error) and counts the lines
    /// among them as dropped (a line already partly written among them);
    /// returns how many. If a line was cut, a newline is queued first, so
    /// that the next line written starts on a line of its own.
    pub fn clear(&mut self) -> u64 {
        let newlines = self.buf.data().iter().filter(|&&b| b == b'\n').count() as u64;
        let lines = newlines - u64::from(self.repair);
        self.buf.clear();
        self.dropped += lines;
        self.repair = self.mid_line;
        if self.repair {
            self.buf.put(b"\n");
        }
        lines
    }

    /// The destination was replaced (the file reopened): a newline queued
    /// to end a line cut in the old file does not belong in the new one.
    pub fn reopened(&mut self) {
        if self.repair {
            self.buf.consume(1);
        }
        self.repair = false;
        self.mid_line = false;
    }

    /// Lines dropped because they did not fit.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    fn clone_for_test(&self) -> LogBuffer {
        let mut buf = Buf::with_capacity(self.buf.capacity());
        buf.put(self.buf.data());
        LogBuffer {
            buf,
            dropped: self.dropped,
            mid_line: self.mid_line,
            repair: self.repair,
        }
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl Default for LogBuffer {
    /// A buffer of [`DEFAULT_LOG_BUFFER`] bytes.
    fn default() -> Self {
        LogBuffer::new(DEFAULT_LOG_BUFFER)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::ops::testutil::{Json, parse_json};

    fn record() -> AccessRecord<'static> {
        AccessRecord {
            client: "127.0.0.1:51234".parse().unwrap(),
            method: b"GET",
            target: b"/apache_pb.gif?a=1",
            version: "HTTP/1.0",
            status: 200,
            bytes: 2326,
            backend: Some("10.0.0.1:8081".parse().unwrap()),
            upstream_time: Some(Duration::from_micros(1_234)),
            total_time: Duration::from_micros(2_345),
            referer: Some(b"http://www.example.com/start.html"),
            user_agent: Some(b"Mozilla/4.08 [en] (Win98; I ;Nav)"),
            unix_time_secs: 971_185_336, // 2000-10-10 13:42:16 UTC
        }
    }

    fn line(fmt: LogFormat, r: &AccessRecord<'_>) -> String {
        let mut out = Vec::new();
        format_line(fmt, r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn common_format() {
        assert_eq!(
            line(LogFormat::Common, &record()),
            "127.0.0.1 - - [10/Oct/2000:13:42:16 +0000] \"GET /apache_pb.gif?a=1 HTTP/1.0\" 200 2326 \
             backend=10.0.0.1:8081 upstream_time=0.001 total_time=0.002\n"
        );
    }

    #[test]
    fn combined_format() {
        assert_eq!(
            line(LogFormat::Combined, &record()),
            "127.0.0.1 - - [10/Oct/2000:13:42:16 +0000] \"GET /apache_pb.gif?a=1 HTTP/1.0\" 200 2326 \
             \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\" \
             backend=10.0.0.1:8081 upstream_time=0.001 total_time=0.002\n"
        );
    }

    #[test]
    fn text_formats_without_backend_or_headers() {
        let r = AccessRecord {
            client: "[2001:db8::1]:443".parse().unwrap(),
            method: b"",
            target: b"",
            version: "",
            status: 400,
            bytes: 0,
            backend: None,
            upstream_time: None,
            total_time: Duration::from_millis(12_345),
            referer: None,
            user_agent: None,
            unix_time_secs: 0,
        };
        assert_eq!(
            line(LogFormat::Combined, &r),
            "2001:db8::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\" \
             backend=- upstream_time=- total_time=12.345\n"
        );
        assert_eq!(
            line(LogFormat::Common, &r),
            "2001:db8::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \
             backend=- upstream_time=- total_time=12.345\n"
        );
    }

    #[test]
    fn text_formats_escape_client_bytes() {
        let mut r = record();
        r.method = b"G\"T";
        r.target = b"/x\r\n127.0.0.1 - - [fake] \"GET / HTTP/1.1\" 200 1\\\xff";
        r.referer = Some(b"\x1b[31mred");
        r.user_agent = Some(b"a\"b");
        let l = line(LogFormat::Combined, &r);
        assert_eq!(
            l,
            "127.0.0.1 - - [10/Oct/2000:13:42:16 +0000] \
             \"G\\x22T /x\\x0D\\x0A127.0.0.1 - - [fake] \\x22GET / HTTP/1.1\\x22 200 1\\x5C\\xFF HTTP/1.0\" 200 2326 \
             \"\\x1B[31mred\" \"a\\x22b\" backend=10.0.0.1:8081 upstream_time=0.001 total_time=0.002\n"
        );
        // One line, and exactly the six quotes ekilibri wrote.
        assert_eq!(l.matches('\n').count(), 1);
        assert!(!l.contains('\r'));
        assert_eq!(l.matches('"').count(), 6);
        assert!(l.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\n'));
    }

    #[test]
    fn json_format_exact() {
        assert_eq!(
            line(LogFormat::Json, &record()),
            "{\"time\":\"2000-10-10T13:42:16Z\",\"client\":\"127.0.0.1\",\"client_port\":51234,\
             \"method\":\"GET\",\"target\":\"/apache_pb.gif?a=1\",\"version\":\"HTTP/1.0\",\
             \"status\":200,\"bytes\":2326,\"referer\":\"http://www.example.com/start.html\",\
             \"user_agent\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\",\"backend\":\"10.0.0.1:8081\",\
             \"upstream_time\":0.001234,\"total_time\":0.002345}\n"
        );
    }

    #[test]
    fn json_format_nulls_and_escapes() {
        let r = AccessRecord {
            client: "[::1]:9".parse().unwrap(),
            method: b"GET",
            target: b"/\"}\n{\"status\":200\\\x00\xe9",
            version: "HTTP/1.1",
            status: 502,
            bytes: 0,
            backend: None,
            upstream_time: None,
            total_time: Duration::ZERO,
            referer: None,
            user_agent: Some(b"\x7f"),
            unix_time_secs: 1_735_689_600,
        };
        let l = line(LogFormat::Json, &r);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.ends_with("}\n"));
        assert!(l.is_ascii());
        let v = parse_json(&l).unwrap();
        assert_eq!(v.get("time").str(), "2025-01-01T00:00:00Z");
        assert_eq!(v.get("client").str(), "::1");
        assert_eq!(v.get("client_port").num(), 9.0);
        assert_eq!(v.get("target").str(), "/\"}\n{\"status\":200\\\u{0}\u{e9}");
        assert_eq!(v.get("user_agent").str(), "\u{7f}");
        assert_eq!(v.get("status").num(), 502.0);
        assert_eq!(v.get("referer"), &Json::Null);
        assert_eq!(v.get("backend"), &Json::Null);
        assert_eq!(v.get("upstream_time"), &Json::Null);
        assert_eq!(v.get("total_time").num(), 0.0);
        assert!(l.contains("\"target\":\"/\\\"}\\u000a{\\\"status\\\":200\\\\\\u0000\\u00e9\""));
    }

    #[test]
    fn buffer_drops_lines_that_do_not_fit() {
        let mut b = LogBuffer::new(10);
        assert_eq!(b.capacity(), 10);
        assert!(b.is_empty());
        assert!(b.push(b"abcd\n"));
        assert!(b.push(b"efg\n"));
        assert!(!b.push(b"hi\n")); // 9 + 3 > 10: dropped whole, not cut
        assert!(b.push(b"\n"));
        assert!(!b.push(b"x"));
        assert!(!b.push(&[b'y'; 11]));
        assert_eq!(b.dropped(), 3);
        assert_eq!(b.pending(), 10);
        let mut out = Vec::new();
        assert_eq!(b.flush_to(&mut out).unwrap(), 10);
        assert_eq!(out, b"abcd\nefg\n\n");
        assert!(b.is_empty());
        assert!(b.push(&[b'z'; 10]));
        assert_eq!(b.dropped(), 3);
        assert_eq!(LogBuffer::default().capacity(), DEFAULT_LOG_BUFFER);
    }

    /// A writer following a script: `Ok(n)` takes at most n bytes, errors
    /// are returned as is; when the script ends it would block.
    struct Scripted {
        script: VecDeque<Result<usize, io::ErrorKind>>,
        got: Vec<u8>,
        calls: usize,
    }

    impl Scripted {
        fn new(script: &[Result<usize, io::ErrorKind>]) -> Scripted {
            Scripted {
                script: script.iter().copied().collect(),
                got: Vec::new(),
                calls: 0,
            }
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            match self.script.pop_front() {
                Some(Ok(n)) => {
                    let n = n.min(buf.len());
                    self.got.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
                Some(Err(k)) => Err(k.into()),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn flush_resumes_partial_writes_after_would_block() {
        use io::ErrorKind::{Interrupted, WouldBlock};
        let mut b = LogBuffer::new(64);
        b.push(b"line one\n");
        b.push(b"line two\n");
        let mut w = Scripted::new(&[Ok(3), Err(Interrupted), Ok(4), Err(WouldBlock), Ok(100)]);
        // 3 bytes, a retried EINTR, 4 bytes, then WouldBlock: stop.
        assert_eq!(b.flush_to(&mut w).unwrap(), 7);
        assert_eq!(w.got, b"line on");
        assert_eq!(b.pending(), 11);
        assert_eq!(w.calls, 4);
        // Lines pushed while blocked queue behind the rest.
        b.push(b"three\n");
        assert_eq!(b.flush_to(&mut w).unwrap(), 17);
        assert_eq!(w.got, b"line one\nline two\nthree\n");
        assert!(b.is_empty());
        // Nothing pending: no write at all.
        let calls = w.calls;
        assert_eq!(b.flush_to(&mut w).unwrap(), 0);
        assert_eq!(w.calls, calls);
    }

    #[test]
    fn a_line_cut_by_a_full_disk_is_ended_before_the_next() {
        use io::ErrorKind::StorageFull;
        let mut b = LogBuffer::new(64);
        b.push(b"line one\n");
        b.push(b"line two\n");
        let mut w = Scripted::new(&[Ok(12), Err(StorageFull)]);
        assert!(b.flush_to(&mut w).is_err());
        // "line two" was cut after "lin": dropped, and counted.
        assert_eq!(b.clear(), 1);
        assert_eq!(b.dropped(), 1);
        // Still full: the pending newline is not a line of its own.
        let mut full = Scripted::new(&[Err(StorageFull)]);
        b.push(b"three\n");
        assert!(b.flush_to(&mut full).is_err());
        assert_eq!(b.clear(), 1);
        assert_eq!(b.dropped(), 2);
        // A reopened file does not start with it.
        let mut other = b.clone_for_test();
        other.reopened();
        other.push(b"five\n");
        let mut fresh = Vec::new();
        other.flush_to(&mut fresh).unwrap();
        assert_eq!(fresh, b"five\n");
        // Room again: the cut line is ended first.
        b.push(b"four\n");
        let mut ok = Vec::new();
        b.flush_to(&mut ok).unwrap();
        assert_eq!([w.got, ok].concat(), b"line one\nlin\nfour\n");
    }

    #[test]
    fn flush_would_block_at_once_keeps_everything() {
        let mut b = LogBuffer::new(16);
        b.push(b"abc\n");
        let mut w = Scripted::new(&[]);
        assert_eq!(b.flush_to(&mut w).unwrap(), 0);
        assert_eq!(b.pending(), 4);
        // Room frees only as bytes leave: a full buffer drops, then accepts.
        assert!(b.push(b"0123456789ab"));
        assert!(!b.push(b"x"));
        let mut w = Scripted::new(&[Ok(5)]);
        assert_eq!(b.flush_to(&mut w).unwrap(), 5);
        assert!(b.push(b"wxyz\n"));
        let mut out = Vec::new();
        b.flush_to(&mut out).unwrap();
        assert_eq!(out, b"123456789abwxyz\n");
        assert_eq!(w.got, b"abc\n0");
    }

    #[test]
    fn flush_reports_hard_errors_and_write_zero() {
        let mut b = LogBuffer::new(16);
        b.push(b"abcdef\n");
        let mut w = Scripted::new(&[Ok(2), Err(io::ErrorKind::BrokenPipe)]);
        let e = b.flush_to(&mut w).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(b.pending(), 5); // the 2 bytes written are gone
        let mut w = Scripted::new(&[Ok(0)]);
        assert_eq!(
            b.flush_to(&mut w).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        assert_eq!(b.pending(), 5);
    }

    #[test]
    fn push_record_reuses_scratch() {
        let mut b = LogBuffer::new(1024);
        let mut scratch = Vec::with_capacity(512);
        assert!(b.push_record(LogFormat::Common, &record(), &mut scratch));
        assert!(b.push_record(LogFormat::Json, &record(), &mut scratch));
        let mut out = Vec::new();
        b.flush_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            format!("{}\n", lines[0]),
            line(LogFormat::Common, &record())
        );
        parse_json(lines[1]).unwrap();
        let mut small = LogBuffer::new(10);
        assert!(!small.push_record(LogFormat::Json, &record(), &mut scratch));
        assert_eq!(small.dropped(), 1);
    }

    #[test]
    fn flush_to_a_dyn_writer() {
        let mut b = LogBuffer::new(8);
        b.push(b"ok\n");
        let mut sink: Vec<u8> = Vec::new();
        let w: &mut dyn Write = &mut sink;
        assert_eq!(b.flush_to(w).unwrap(), 3);
        assert_eq!(sink, b"ok\n");
    }
}
