//! Fuzz harnesses for the parsing and framing code, shared by the
//! `cargo fuzz` targets in `fuzz/` and the regression tests that replay
//! what the fuzzer found (`tests/fuzz_regressions/`).
//!
//! Each harness takes arbitrary bytes. The first bytes are configuration
//! (flags, destination buffer size, how fast the destination drains, how
//! the rest is split into reads); the rest is the byte stream a peer sends.
//! The stream is fed to the code the way the reactor does, read by read,
//! and every invariant the proxy relies on is asserted: a failed assertion
//! or a panic is a finding.
//!
//! Compiled for tests and with the `fuzzing` feature only.

pub mod chunked_ref;

use self::chunked_ref::RefOutcome;
use super::body::{BodyError, BodyRelay};
use super::chunked::ChunkedDecoder;
use super::head::{
    ForwardInfo, HeadScan, MAX_HEADERS, OutCoding, RequestContext, RequestHead, ResponseHead,
    check_partial_request, rewrite_request, rewrite_response,
};
use super::{Framing, Version};
use crate::buf::{BUF_SIZE, Buf, LARGE_BUF_SIZE};

/// Most exchanges (pipelined requests, or interim + final responses) one
/// input drives.
const MAX_EXCHANGES: usize = 6;
/// Most bytes a chunk header and its CRLF add around chunk data.
const CHUNK_OVERHEAD: usize = 16 + 2 + 2;
/// Header slots for the independent re-parse (the rewrite may add a few
/// fields to a head that had [`MAX_HEADERS`]).
const CHECK_HEADERS: usize = MAX_HEADERS + 8;

fn take(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((&b, rest)) => {
            *data = rest;
            b
        }
        None => 0,
    }
}

/// The peer's byte stream, delivered in reads whose sizes the input chose.
pub struct Stream<'a> {
    sizes: &'a [u8],
    k: usize,
    payload: &'a [u8],
    pos: usize,
}

impl<'a> Stream<'a> {
    /// First byte: how many size bytes follow (mod 32); each size byte is
    /// one read of `size + 1` bytes, cycled. No size bytes: one big read.
    pub fn new(mut data: &'a [u8]) -> Stream<'a> {
        let n = usize::from(take(&mut data) % 32).min(data.len());
        let (sizes, payload) = data.split_at(n);
        Stream {
            sizes,
            k: 0,
            payload,
            pos: 0,
        }
    }

    /// Everything the peer sends.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Bytes delivered so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn next_len(&mut self) -> usize {
        if self.sizes.is_empty() {
            return usize::MAX;
        }
        let n = usize::from(self.sizes[self.k % self.sizes.len()]) + 1;
        self.k += 1;
        n
    }

    /// The next piece, or `None` at the end.
    pub fn next_piece(&mut self) -> Option<&'a [u8]> {
        if self.pos == self.payload.len() {
            return None;
        }
        let n = self.next_len().min(self.payload.len() - self.pos);
        let piece = &self.payload[self.pos..self.pos + n];
        self.pos += n;
        Some(piece)
    }

    /// One read into `buf` the way `proxy::io::read_into` does it (through
    /// `spare_mut`/`commit`). Returns 0 at the end of the stream.
    fn read(&mut self, buf: &mut Buf) -> usize {
        let want = self.next_len();
        let spare = buf.spare_mut();
        let n = want.min(spare.len()).min(self.payload.len() - self.pos);
        spare[..n].copy_from_slice(&self.payload[self.pos..self.pos + n]);
        buf.commit(n);
        self.pos += n;
        n
    }
}

/// Drains `dst` into `sink`: everything when `rate` is 0, else `rate` bytes.
fn drain(dst: &mut Buf, rate: u8, sink: &mut Vec<u8>) -> bool {
    let n = if rate == 0 {
        dst.len()
    } else {
        dst.len().min(usize::from(rate))
    };
    sink.extend_from_slice(&dst.data()[..n]);
    dst.consume(n);
    n > 0
}

fn dst_capacity(sel: u8) -> usize {
    if sel == 255 {
        BUF_SIZE
    } else {
        26 + usize::from(sel) * 4
    }
}

// ------------------------------------------------------------- chunked

/// `chunked` target: [`ChunkedDecoder::step`] over arbitrary splits,
/// against [`chunked_ref::decode`].
pub fn chunked(data: &[u8]) {
    let mut stream = Stream::new(data);
    let payload = stream.payload();
    let expected = chunked_ref::decode(payload);

    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut failed = false;
    let mut done = false;
    'feed: while let Some(piece) = stream.next_piece() {
        let mut rest = piece;
        loop {
            match dec.step(rest) {
                Err(e) => {
                    assert_eq!(dec.step(b"0\r\n\r\n"), Err(e), "errors are sticky");
                    failed = true;
                    break 'feed;
                }
                Ok(step) => {
                    assert!(step.consumed <= rest.len());
                    if let Some(r) = step.data.clone() {
                        assert!(!r.is_empty() && r.end <= step.consumed, "{r:?} {step:?}");
                        assert!(!step.done);
                        out.extend_from_slice(&rest[r]);
                    }
                    consumed += step.consumed;
                    rest = &rest[step.consumed..];
                    if step.done {
                        assert!(dec.is_done());
                        let again = dec.step(rest).unwrap();
                        assert_eq!((again.consumed, again.done), (0, true));
                        done = true;
                        break 'feed;
                    }
                    if rest.is_empty() {
                        break;
                    }
                    assert!(step.consumed > 0, "no progress on non-empty input");
                }
            }
        }
    }
    match &expected {
        RefOutcome::Done {
            data,
            consumed: c,
            trailers,
        } => {
            assert!(done && !failed, "reference accepted: {expected:?}");
            assert_eq!(&out, data);
            assert_eq!(consumed, *c);
            assert_eq!(dec.trailers(), &trailers[..]);
        }
        RefOutcome::Incomplete { data } => {
            assert!(!done && !failed, "reference says incomplete: {expected:?}");
            assert_eq!(&out, data);
            assert_eq!(consumed, payload.len());
        }
        RefOutcome::Invalid { data } => {
            assert!(failed, "reference rejected: {expected:?}");
            assert_eq!(&out, data);
        }
    }

    // The same decoder, reset, decodes the whole input in one go the same.
    dec.reset();
    let mut rest = payload;
    let mut out2 = Vec::new();
    let mut failed2 = false;
    loop {
        match dec.step(rest) {
            Err(_) => {
                failed2 = true;
                break;
            }
            Ok(step) => {
                if let Some(r) = step.data {
                    out2.extend_from_slice(&rest[r]);
                }
                rest = &rest[step.consumed..];
                if step.done || step.consumed == 0 {
                    break;
                }
            }
        }
    }
    assert_eq!((out2, failed2), (out, failed));
}

/// Checks the bytes one `pump` wrote: identity data, or whole chunks.
fn check_pump_output(out: OutCoding, bytes: &[u8], consumed: usize, moved: u64) {
    assert!(
        moved as usize <= consumed,
        "moved {moved} > consumed {consumed}"
    );
    match out {
        OutCoding::Identity => assert_eq!(bytes.len() as u64, moved),
        OutCoding::Chunked => {
            let mut i = 0;
            let mut chunks = 0;
            let mut data = 0;
            let mut last = false;
            // Trailer fields were consumed with the last chunk, possibly in
            // an earlier call: they do not count against this call's input.
            let mut trailer = 0;
            while i < bytes.len() {
                assert!(!last, "bytes after the last chunk");
                let digits = bytes[i..]
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    .count();
                assert!((1..=16).contains(&digits), "bad chunk header {bytes:?}");
                let hex = std::str::from_utf8(&bytes[i..i + digits]).unwrap();
                assert!(digits == 1 || !hex.starts_with('0'), "leading zero");
                let n = usize::from_str_radix(hex, 16).unwrap();
                i += digits;
                assert_eq!(&bytes[i..i + 2], b"\r\n");
                i += 2;
                if n == 0 {
                    // Forwarded trailer fields, then the empty line.
                    while &bytes[i..i + 2] != b"\r\n" {
                        let end = bytes[i..]
                            .windows(2)
                            .position(|w| w == b"\r\n")
                            .expect("trailer line");
                        assert!(bytes[i..i + end].contains(&b':'), "bad trailer line");
                        trailer += end + 2;
                        i += end + 2;
                    }
                    i += 2;
                    last = true;
                    continue;
                }
                i += n;
                assert_eq!(&bytes[i..i + 2], b"\r\n");
                i += 2;
                chunks += 1;
                data += n;
            }
            assert_eq!(data as u64, moved);
            let bound = consumed + chunks * CHUNK_OVERHEAD + if last { 5 + trailer } else { 0 };
            assert!(bytes.len() <= bound, "wrote {} > {bound}", bytes.len());
        }
    }
}

/// Outcome of relaying one body through a small, slowly drained buffer.
struct Relayed {
    relay: BodyRelay,
    failed: Option<BodyError>,
}

/// Relays a body the way the reactor does: read, pump, (on EOF: `on_eof`
/// and pump again, when `call_on_eof`), drain; until nothing moves.
#[allow(clippy::too_many_arguments)]
fn relay_body(
    stream: &mut Stream<'_>,
    src: &mut Buf,
    dst: &mut Buf,
    sink: &mut Vec<u8>,
    eof: &mut bool,
    relay: BodyRelay,
    out: OutCoding,
    rate: u8,
    call_on_eof: bool,
) -> Relayed {
    let mut relay = relay;
    let mut failed = None;
    let mut rounds = 0u32;
    let pump = |relay: &mut BodyRelay, src: &mut Buf, dst: &mut Buf| {
        let (src_before, dst_before, moved_before) = (src.len(), dst.len(), relay.moved());
        let r = relay.pump(src, dst);
        let consumed = src_before - src.len();
        check_pump_output(
            out,
            &dst.data()[dst_before..],
            consumed,
            relay.moved() - moved_before,
        );
        r
    };
    loop {
        rounds += 1;
        assert!(rounds < 1_000_000, "relay livelock");
        let mut progress = false;
        if !*eof && src.space() > 0 {
            if stream.read(src) == 0 {
                *eof = true;
            } else {
                progress = true;
            }
        }
        match pump(&mut relay, src, dst) {
            Ok(p) => progress |= p,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        if call_on_eof && *eof && !relay.is_done() {
            if let Err(e) = relay.on_eof() {
                failed = Some(e);
                break;
            }
            match pump(&mut relay, src, dst) {
                Ok(p) => progress |= p,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        progress |= drain(dst, rate, sink);
        if relay.is_done() {
            break;
        }
        if !progress {
            assert!(*eof, "relay stalled before the end of the input");
            break;
        }
    }
    while drain(dst, 0, sink) {}
    Relayed { relay, failed }
}

/// The field values named `name` in `head` (parsed with slack).
fn fields<'h>(headers: &[httparse::Header<'h>], name: &str) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

fn trim(s: &[u8]) -> &[u8] {
    let s = &s[s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count()..];
    let end = s.len()
        - s.iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
    &s[..end]
}

/// Lower-cased options listed in the `Connection` fields of `headers`.
fn connection_options(headers: &[httparse::Header<'_>]) -> Vec<Vec<u8>> {
    fields(headers, "connection")
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| trim(t).to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != b"close" && t != b"keep-alive")
        .collect()
}

/// Fields never forwarded. (`Trailer` is end-to-end since RFC 9110 and is
/// forwarded; RFC 7230 had listed it as hop-by-hop.)
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "proxy-authorization",
];

// ------------------------------------------------------------- request

const INFO4: ForwardInfo<'static> = ForwardInfo {
    client_ip: b"203.0.113.7",
    default_host: "backend:8080",
    forwarded: true,
};
const INFO6: ForwardInfo<'static> = ForwardInfo {
    client_ip: b"2001:db8::ffff:1",
    default_host: "[2001:db8::2]:80",
    forwarded: false,
};

/// The rewritten head `out` parses, and is nothing but the head.
fn assert_whole_head(parsed: httparse::Result<usize>, out: &[u8]) {
    match parsed {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, out.len(), "rewritten head length"),
        other => panic!(
            "rewritten head does not parse: {other:?}: {:?}",
            String::from_utf8_lossy(out)
        ),
    }
}

/// Checks a rewritten request head against the original.
fn check_request_rewrite(orig: &[u8], req: &RequestHead, out: &[u8], info: &ForwardInfo<'_>) {
    // Read as the proxy does: empty lines before the request line skipped
    // (RFC 9112 §2.2), HTTP/1.2 to 1.9 as HTTP/1.1 (RFC 9110 §2.5).
    let mut orig = orig[super::head::leading_empty_lines(orig)..].to_vec();
    if let Some(line_end) = orig.iter().position(|&b| b == b'\r')
        && line_end >= 8
        && orig[line_end - 8..line_end - 1] == *b"HTTP/1."
        && (b'2'..=b'9').contains(&orig[line_end - 1])
    {
        orig[line_end - 1] = b'1';
    }
    let orig = &orig[..];
    let mut oh = [httparse::EMPTY_HEADER; CHECK_HEADERS];
    let mut o = httparse::Request::new(&mut oh);
    assert!(matches!(o.parse(orig), Ok(httparse::Status::Complete(_))));
    let options = connection_options(o.headers);

    let mut h = [httparse::EMPTY_HEADER; CHECK_HEADERS];
    let mut r = httparse::Request::new(&mut h);
    assert_whole_head(r.parse(out), out);
    assert_eq!(r.version, Some(1));
    assert_eq!(r.method, o.method);
    let path = r.path.unwrap();
    assert!(path.starts_with('/') || path == "*", "target {path:?}");

    let names: Vec<String> = r
        .headers
        .iter()
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    for n in &names {
        // `TE: trailers` and `Connection: TE` / `upgrade` are ekilibri's own.
        assert!(
            !HOP_BY_HOP.contains(&n.as_str()) || n == "te" || n == "connection",
            "hop-by-hop {n} forwarded"
        );
        let ours = [
            "host",
            "x-forwarded-for",
            "content-length",
            "transfer-encoding",
            "te",
            "upgrade",
            "via",
        ];
        assert!(
            ours.contains(&n.as_str()) || !options.contains(&n.as_bytes().to_vec()),
            "Connection option {n} forwarded"
        );
    }
    for v in fields(r.headers, "connection") {
        assert!(
            [&b"TE"[..], b"upgrade", b"TE, upgrade"].contains(&v),
            "Connection: {:?} forwarded",
            String::from_utf8_lossy(v)
        );
    }
    assert_eq!(fields(r.headers, "host").len(), 1, "one Host");
    let xff = fields(r.headers, "x-forwarded-for");
    assert_eq!(xff.len(), 1, "one X-Forwarded-For");
    assert!(xff[0].ends_with(info.client_ip));
    let cl = fields(r.headers, "content-length");
    let te = fields(r.headers, "transfer-encoding");
    match req.framing {
        Framing::Length(n) => {
            assert_eq!(cl, [n.to_string().as_bytes()]);
            assert!(te.is_empty());
        }
        Framing::Chunked => {
            assert!(cl.is_empty());
            assert_eq!(te, [b"chunked"]);
        }
        Framing::None => {
            assert!(te.is_empty());
            assert!(cl.is_empty() || cl == [b"0"]);
        }
        Framing::UntilClose => panic!("close-delimited request"),
    }

    // Ekilibri itself reads the rewritten head the same way.
    if r.headers.len() <= MAX_HEADERS {
        let mut again = Buf::with_capacity(out.len() + 512);
        let r2 = rewrite_request(out, info, &mut again)
            .unwrap_or_else(|e| panic!("rewritten head rejected: {e:?}"));
        assert_eq!(
            (r2.method, r2.version, r2.framing, r2.len),
            (req.method, Version::Http11, req.framing, out.len())
        );
    }
}

/// `request` target: a client's byte stream through head scanning, limit
/// checks, `rewrite_request` and the request body relay, for up to
/// [`MAX_EXCHANGES`] pipelined requests.
pub fn request(data: &[u8]) {
    let mut cfg = data;
    let flags = take(&mut cfg);
    let dst_cap = dst_capacity(take(&mut cfg));
    let rate = take(&mut cfg);
    let info = if flags & 1 == 0 { INFO4 } else { INFO6 };
    let mut stream = Stream::new(cfg);
    let payload = stream.payload();

    let mut inbuf = Buf::with_capacity(BUF_SIZE);
    let mut scratch = Buf::with_capacity(LARGE_BUF_SIZE);
    let mut scan = HeadScan::default();
    let mut eof = false;
    for _ in 0..MAX_EXCHANGES {
        // The head: scanned incrementally as it arrives.
        let len = loop {
            if !inbuf.is_empty() {
                let found = scan.find_end(inbuf.data());
                assert_eq!(found, HeadScan::default().find_end(inbuf.data()));
                match found {
                    Some(len) => break len,
                    None => {
                        if check_partial_request(inbuf.data()).is_err() {
                            return;
                        }
                        if inbuf.is_full() {
                            if inbuf.capacity() < LARGE_BUF_SIZE {
                                inbuf.grow_to(LARGE_BUF_SIZE);
                                continue;
                            }
                            return;
                        }
                    }
                }
            }
            if eof {
                return;
            }
            if stream.read(&mut inbuf) == 0 {
                eof = true;
            }
        };
        scan.reset();
        scratch.clear();
        let head_at = stream.pos() - inbuf.len();
        let orig = &payload[head_at..head_at + len];
        assert_eq!(orig, &inbuf.data()[..len]);
        let Ok(req) = rewrite_request(orig, &info, &mut scratch) else {
            return;
        };
        assert_eq!(req.len, len, "httparse and HeadScan disagree on the head");
        check_request_rewrite(orig, &req, scratch.data(), &info);

        // As `start_exchange`: the head goes into a fresh backend buffer.
        let mut dst = Buf::with_capacity(dst_cap);
        if !dst.reserve_contiguous(scratch.len()) {
            dst.grow_to(scratch.len());
        }
        dst.put(scratch.data());
        let mut sink = Vec::new();
        while drain(&mut dst, 0, &mut sink) {}
        assert_eq!(sink, scratch.data());
        sink.clear();

        inbuf.consume(len);
        let body_at = head_at + len;
        let out = if req.framing == Framing::Chunked {
            OutCoding::Chunked
        } else {
            OutCoding::Identity
        };
        let relay = BodyRelay::new(req.framing, out);
        // The head may have grown the buffer: the body goes through one of
        // the chosen (small) size.
        let mut dst = Buf::with_capacity(dst_cap);
        let r = relay_body(
            &mut stream,
            &mut inbuf,
            &mut dst,
            &mut sink,
            &mut eof,
            relay,
            out,
            rate,
            false,
        );
        let body_in = &payload[body_at..stream.pos()];
        let body_len = check_body(req.framing, out, body_in, &sink, &r, false, dst_cap);
        let Some(body_len) = body_len else { return };
        assert_eq!(stream.pos() - inbuf.len(), body_at + body_len);
    }
}

/// Checks a relayed body against the input it came from. Returns the
/// length of the body in the input if it was relayed completely.
fn check_body(
    framing: Framing,
    out: OutCoding,
    body_in: &[u8],
    body_out: &[u8],
    r: &Relayed,
    eof_called: bool,
    dst_cap: usize,
) -> Option<usize> {
    let decoded_out = |complete: bool| -> Vec<u8> {
        match out {
            OutCoding::Identity => body_out.to_vec(),
            OutCoding::Chunked => match chunked_ref::decode(body_out) {
                RefOutcome::Done { data, consumed, .. } => {
                    assert!(complete, "last chunk written for an unfinished body");
                    assert_eq!(consumed, body_out.len(), "bytes after the last chunk");
                    data
                }
                RefOutcome::Incomplete { data } => {
                    assert!(!complete, "no last chunk for a finished body");
                    data
                }
                RefOutcome::Invalid { .. } => panic!("re-encoded body is invalid: {body_out:?}"),
            },
        }
    };
    match framing {
        Framing::None => {
            assert!(r.relay.is_done() && r.failed.is_none());
            assert!(body_out.is_empty());
            Some(0)
        }
        Framing::Length(n) => {
            let n = n as usize;
            let moved = r.relay.moved() as usize;
            assert_eq!(body_out, &body_in[..moved]);
            if body_in.len() >= n {
                assert!(
                    r.failed.is_none(),
                    "{:?} with the whole body there",
                    r.failed
                );
                assert!(r.relay.is_done(), "Length body not finished");
                assert_eq!(moved, n);
                Some(n)
            } else {
                assert!(!r.relay.is_done());
                if eof_called {
                    assert_eq!(r.failed, Some(BodyError::Truncated));
                }
                None
            }
        }
        Framing::UntilClose => {
            assert!(r.failed.is_none(), "{:?}", r.failed);
            assert!(
                r.relay.is_done(),
                "close-delimited body not finished at EOF"
            );
            assert_eq!(decoded_out(true), body_in, "close-delimited body altered");
            Some(body_in.len())
        }
        Framing::Chunked => match chunked_ref::decode(body_in) {
            // The last chunk and the trailers are written in one piece: a
            // destination smaller than them never takes it (the proxy's
            // 16 KiB buffers always hold the 4 KiB trailer limit).
            RefOutcome::Done { trailers, .. }
                if out == OutCoding::Chunked && trailers.len() + 5 > dst_cap =>
            {
                assert!(!r.relay.is_done());
                None
            }
            RefOutcome::Done { data, consumed, .. } => {
                assert!(r.failed.is_none(), "{:?} for a valid body", r.failed);
                assert!(r.relay.is_done(), "valid chunked body not finished");
                assert_eq!(decoded_out(true), data);
                Some(consumed)
            }
            RefOutcome::Incomplete { data } => {
                assert!(!r.relay.is_done());
                if eof_called {
                    assert_eq!(r.failed, Some(BodyError::Truncated));
                } else {
                    assert_eq!(r.failed, None);
                }
                assert_eq!(decoded_out(false), data);
                None
            }
            RefOutcome::Invalid { data } => {
                assert!(
                    matches!(r.failed, Some(BodyError::Chunked(_))),
                    "invalid chunked body accepted: {:?}",
                    r.failed
                );
                assert_eq!(decoded_out(false), data);
                None
            }
        },
    }
}

// ------------------------------------------------------------ response

/// Checks a rewritten response head against the original.
fn check_response_rewrite(orig: &[u8], ctx: &RequestContext, head: &ResponseHead, out: &[u8]) {
    let interim = (100..200).contains(&head.status);
    let client_11 = ctx.client_version == Version::Http11;
    if interim && !client_11 {
        assert!(out.is_empty(), "1xx sent to an HTTP/1.0 client");
        return;
    }
    // Parsed as the proxy does: whitespace before a colon allowed (RFC 9112
    // §5.1), HTTP/1.2 to 1.9 read as HTTP/1.1 (RFC 9110 §2.5).
    let mut orig = orig.to_vec();
    if orig.len() > 8 && orig.starts_with(b"HTTP/1.") && (b'2'..=b'9').contains(&orig[7]) {
        orig[7] = b'1';
    }
    let orig = &orig[..];
    let mut oh = [httparse::EMPTY_HEADER; CHECK_HEADERS];
    let mut o = httparse::Response::new(&mut oh);
    let parsed = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response(&mut o, orig);
    assert!(matches!(parsed, Ok(httparse::Status::Complete(_))));
    let options = connection_options(o.headers);

    let mut h = [httparse::EMPTY_HEADER; CHECK_HEADERS];
    let mut r = httparse::Response::new(&mut h);
    assert_whole_head(r.parse(out), out);
    assert_eq!(r.version, Some(1));
    assert_eq!(r.code, Some(head.status));
    assert_eq!(o.code, Some(head.status));

    let keep_framing = head.framing == Framing::None && !interim;
    for hd in r.headers.iter() {
        let n = hd.name.to_ascii_lowercase();
        if n == "connection" {
            continue;
        }
        assert!(
            !HOP_BY_HOP.contains(&n.as_str()),
            "hop-by-hop {n} forwarded"
        );
        let ours = ["content-length", "transfer-encoding"];
        assert!(
            ours.contains(&n.as_str()) || !options.contains(&n.as_bytes().to_vec()),
            "Connection option {n} forwarded"
        );
    }
    let conn = fields(r.headers, "connection");
    if interim {
        assert!(conn.is_empty());
    } else if !head.client_keep_alive {
        assert_eq!(conn, [b"close"]);
    } else if !client_11 {
        assert_eq!(conn, [b"keep-alive"]);
    } else {
        assert!(conn.is_empty());
    }
    if !ctx.client_keep_alive {
        assert!(!head.client_keep_alive || interim);
    }
    let cl = fields(r.headers, "content-length");
    let te = fields(r.headers, "transfer-encoding");
    if keep_framing {
        // HEAD and 304: the would-be body's framing, Transfer-Encoding (to
        // HTTP/1.1 clients) or else one folded Content-Length; 204: none.
        let orig_cl = fields(o.headers, "content-length");
        let orig_te = fields(o.headers, "transfer-encoding");
        if head.status == 204 {
            assert!(cl.is_empty() && te.is_empty(), "framing fields on a 204");
        } else if !orig_te.is_empty() {
            assert!(cl.is_empty(), "Content-Length beside Transfer-Encoding");
            if client_11 {
                assert_eq!(te, orig_te);
            } else {
                assert!(te.is_empty());
            }
        } else {
            assert!(te.is_empty());
            match orig_cl.first() {
                None => assert!(cl.is_empty()),
                Some(v) => {
                    // The value, folded and without leading zeros (`03` is 3).
                    let first = v.split(|&b| b == b',').next().map(trim).unwrap_or_default();
                    let number = |d: &[u8]| std::str::from_utf8(d).ok()?.parse::<u64>().ok();
                    assert_eq!(cl.len(), 1);
                    assert_eq!(number(cl[0]), number(first));
                }
            }
        }
    } else {
        match (head.framing, head.out) {
            (Framing::Length(n), OutCoding::Identity) => {
                assert_eq!(cl, [n.to_string().as_bytes()]);
                assert!(te.is_empty());
            }
            (Framing::Chunked | Framing::UntilClose, OutCoding::Chunked) => {
                assert!(client_11);
                assert!(cl.is_empty());
                // Codings the body already had stay in front (`gzip, chunked`).
                assert_eq!(te.len(), 1);
                assert!(
                    te[0].ends_with(b"chunked"),
                    "{:?}",
                    String::from_utf8_lossy(te[0])
                );
            }
            (Framing::Chunked | Framing::UntilClose, OutCoding::Identity) => {
                assert!(!client_11 && !head.client_keep_alive);
                assert!(cl.is_empty() && te.is_empty());
            }
            (Framing::None, _) => {
                assert!(interim);
                assert!(cl.is_empty() && te.is_empty());
            }
            other => panic!("impossible framing {other:?}"),
        }
        if head.framing == Framing::UntilClose || head.framing == Framing::Chunked {
            assert!(head.framing == Framing::Chunked || !head.backend_reusable);
        }
    }

    // A client reading the rewritten head frames the body as it is sent.
    if r.headers.len() <= MAX_HEADERS && !keep_framing && !interim {
        let mut again = Buf::with_capacity(out.len() + 512);
        let r2 = rewrite_response(out, ctx, &mut again)
            .unwrap_or_else(|e| panic!("rewritten head rejected: {e:?}"));
        let expect = match (head.framing, head.out) {
            (Framing::Length(n), _) => Framing::Length(n),
            (_, OutCoding::Chunked) => Framing::Chunked,
            _ => Framing::UntilClose,
        };
        assert_eq!(
            r2.framing, expect,
            "client would frame the body differently"
        );
        assert_eq!(r2.status, head.status);
    }
}

/// `response` target: a backend's byte stream through head scanning,
/// `rewrite_response` (interim responses included) and the response body
/// relay with its out coding and `on_eof`, for one request context chosen
/// by the input.
pub fn response(data: &[u8]) {
    let mut cfg = data;
    let flags = take(&mut cfg);
    let dst_cap = dst_capacity(take(&mut cfg));
    let rate = take(&mut cfg);
    let ctx = RequestContext {
        head_request: flags & 1 != 0,
        client_version: if flags & 2 != 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        client_keep_alive: flags & 4 != 0,
        upgrade: (flags & 8 != 0).then(|| super::head::Protocols::of(b"websocket, h2c")),
        body_pending: flags & 16 != 0,
        // Checked in src/http/head/tests.rs; here it would be one more
        // field for the checks to account for.
        date: None,
    };
    let mut stream = Stream::new(cfg);
    let payload = stream.payload();

    let mut inbuf = Buf::with_capacity(BUF_SIZE);
    let mut out = Buf::with_capacity(dst_cap);
    let mut sink = Vec::new();
    let mut eof = false;
    for _ in 0..MAX_EXCHANGES {
        let mut scan = HeadScan::default();
        let len = loop {
            if !eof && inbuf.space() > 0 && stream.read(&mut inbuf) == 0 {
                eof = true;
            }
            let found = scan.find_end(inbuf.data());
            assert_eq!(found, HeadScan::default().find_end(inbuf.data()));
            match found {
                Some(len) => break len,
                None if inbuf.is_full() => {
                    if inbuf.capacity() < LARGE_BUF_SIZE {
                        inbuf.grow_to(LARGE_BUF_SIZE);
                        continue;
                    }
                    return;
                }
                None if eof => return,
                None => {}
            }
        };
        let head_at = stream.pos() - inbuf.len();
        let orig = &payload[head_at..head_at + len];
        let before = out.len();
        let Ok(head) = rewrite_response(orig, &ctx, &mut out) else {
            return;
        };
        assert_eq!(head.len, len, "httparse and HeadScan disagree on the head");
        check_response_rewrite(orig, &ctx, &head, &out.data()[before..]);
        inbuf.consume(len);
        if (100..200).contains(&head.status) {
            continue;
        }
        // The head reaches the client first.
        while drain(&mut out, 0, &mut sink) {}
        sink.clear();

        let body_at = head_at + len;
        let relay = BodyRelay::new(head.framing, head.out);
        if head.framing == Framing::None || head.framing == Framing::Length(0) {
            assert!(relay.is_done());
        }
        let mut out = Buf::with_capacity(dst_cap);
        let r = relay_body(
            &mut stream,
            &mut inbuf,
            &mut out,
            &mut sink,
            &mut eof,
            relay,
            head.out,
            rate,
            true,
        );
        let body_in = &payload[body_at..stream.pos()];
        check_body(head.framing, head.out, body_in, &sink, &r, true, dst_cap);
        return;
    }
}

#[cfg(test)]
mod tests;
