//! Request and response heads: parse with `httparse`, check framing, and
//! rewrite for the other side in one pass.
//!
//! The parsed head borrows the input buffer, so the rewrite into the output
//! buffer happens inside the same call; what survives is a small owned
//! summary ([`RequestHead`], [`ResponseHead`]).

use super::{Framing, Method, Version};
use crate::buf::Buf;

/// Most header fields accepted in one head (more → 431).
pub const MAX_HEADERS: usize = 100;
/// Longest request line accepted (longer → 414).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest header section accepted, request line excluded (longer → 431).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most bytes a rewritten head may add to the original.
const REWRITE_SLACK: usize = 256;
/// Most header names one `Connection` field may list.
const MAX_CONNECTION_TOKENS: usize = 16;

/// Why a head was rejected; each maps to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Malformed message (400 for requests, 502 for responses).
    Malformed(&'static str),
    /// Request line too long (414).
    UriTooLong,
    /// Header section too large or too many fields (431).
    HeadersTooLarge,
    /// HTTP version other than 1.0 and 1.1 (505).
    Version,
    /// A method the proxy does not forward (501).
    NotImplemented,
}

impl HeadError {
    /// Status code sent to the client for a rejected request.
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed(_) => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeadersTooLarge => 431,
            HeadError::Version => 505,
            HeadError::NotImplemented => 501,
        }
    }
}

/// What the proxy keeps of a request head once it was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Method.
    pub method: Method,
    /// Version the client spoke.
    pub version: Version,
    /// Body framing of the request as received.
    pub framing: Framing,
    /// Whether the client wants the connection kept open afterwards.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was present.
    pub expect_continue: bool,
    /// The client asked to switch protocols (`Upgrade` named in
    /// `Connection`); the offer is forwarded so the backend may accept it.
    pub upgrade: bool,
    /// Bytes of the head in the input, final CRLF included.
    pub len: usize,
}

/// What the proxy keeps of a response head once it was rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Body framing as sent by the backend.
    pub framing: Framing,
    /// How the body is framed towards the client.
    pub out: OutCoding,
    /// The backend connection may carry another request afterwards.
    pub backend_reusable: bool,
    /// The client connection stays open after this response.
    pub client_keep_alive: bool,
    /// Bytes of the head in the input, final CRLF included.
    pub len: usize,
}

/// How a body is written to its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutCoding {
    /// Bytes as they are (length known by the receiver, or close-delimited).
    Identity,
    /// Re-encoded as chunks.
    Chunked,
}

/// Where the end of a head is searched from, so that a head trickling in
/// byte by byte is scanned once, not from the start on every read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadScan {
    scanned: usize,
}

impl HeadScan {
    /// Length of the complete head at the start of `buf` (final blank line
    /// included), or `None` if it is not complete yet. Bare LF line endings
    /// count as ends so that they can be rejected by the parser.
    pub fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        let start = self.scanned.saturating_sub(3);
        let mut i = start;
        while let Some(off) = memchr(b'\n', &buf[i..]) {
            let nl = i + off;
            if nl >= 1 && buf[nl - 1] == b'\n' {
                self.scanned = 0;
                return Some(nl + 1);
            }
            if nl >= 2 && buf[nl - 1] == b'\r' && buf[nl - 2] == b'\n' {
                self.scanned = 0;
                return Some(nl + 1);
            }
            i = nl + 1;
        }
        self.scanned = buf.len();
        None
    }

    /// Forgets progress (the buffer was consumed).
    pub fn reset(&mut self) {
        self.scanned = 0;
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Checks limits on an incomplete head that has `buf` so far.
pub fn check_partial_request(buf: &[u8]) -> Result<(), HeadError> {
    match memchr(b'\n', buf) {
        None if buf.len() > MAX_REQUEST_LINE => Err(HeadError::UriTooLong),
        Some(line) if line > MAX_REQUEST_LINE => Err(HeadError::UriTooLong),
        Some(line) if buf.len() - line > MAX_HEADER_BYTES => Err(HeadError::HeadersTooLarge),
        _ => Ok(()),
    }
}

/// Rejects any LF not preceded by CR in a complete head (RFC 9112 §2.2:
/// a recipient of bare LF in a request may reject it; a proxy must, since
/// it cannot know how the next hop reads it).
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    let mut prev = 0u8;
    for &b in head {
        if b == b'\n' && prev != b'\r' {
            return Err(HeadError::Malformed("bare LF"));
        }
        if b == b'\r' && prev == b'\r' {
            return Err(HeadError::Malformed("bare CR"));
        }
        prev = b;
    }
    Ok(())
}

/// Facts collected from header fields common to requests and responses.
#[derive(Default)]
struct FieldFacts<'a> {
    content_length: Option<u64>,
    transfer_encoding: Option<&'a [u8]>,
    te_count: usize,
    close: bool,
    keep_alive: bool,
    connection_tokens: [&'a [u8]; MAX_CONNECTION_TOKENS],
    n_tokens: usize,
    host_count: usize,
    expect_continue: bool,
    /// `Connection` lists `upgrade`.
    connection_upgrade: bool,
    /// The `Upgrade` field's value.
    upgrade: Option<&'a [u8]>,
}

impl<'a> FieldFacts<'a> {
    fn collect(headers: &[httparse::Header<'a>]) -> Result<Self, HeadError> {
        let mut f = FieldFacts::default();
        for h in headers {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                let v = parse_content_length(h.value)?;
                match f.content_length {
                    Some(prev) if prev != v => {
                        return Err(HeadError::Malformed("conflicting Content-Length"));
                    }
                    _ => f.content_length = Some(v),
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                f.te_count += 1;
                f.transfer_encoding = Some(h.value);
            } else if name.eq_ignore_ascii_case(b"connection") {
                for tok in h.value.split(|&b| b == b',') {
                    let tok = trim(tok);
                    if tok.is_empty() {
                        continue;
                    }
                    if tok.eq_ignore_ascii_case(b"close") {
                        f.close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        f.keep_alive = true;
                    } else if tok.eq_ignore_ascii_case(b"upgrade") {
                        f.connection_upgrade = true;
                    } else if f.n_tokens < MAX_CONNECTION_TOKENS {
                        f.connection_tokens[f.n_tokens] = tok;
                        f.n_tokens += 1;
                    } else {
                        return Err(HeadError::Malformed("too many Connection options"));
                    }
                }
            } else if name.eq_ignore_ascii_case(b"host") {
                f.host_count += 1;
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                if f.upgrade.is_some() {
                    return Err(HeadError::Malformed("repeated Upgrade"));
                }
                f.upgrade = Some(h.value);
            } else if name.eq_ignore_ascii_case(b"expect")
                && trim(h.value).eq_ignore_ascii_case(b"100-continue")
            {
                f.expect_continue = true;
            }
        }
        Ok(f)
    }

    /// True for fields that apply to one connection only and are dropped
    /// when forwarding (RFC 9110 §7.6.1), and for the framing fields the
    /// proxy writes itself.
    fn is_hop_by_hop(&self, name: &[u8]) -> bool {
        const FIXED: [&[u8]; 8] = [
            b"connection",
            b"keep-alive",
            b"proxy-connection",
            b"te",
            b"transfer-encoding",
            b"upgrade",
            b"proxy-authorization",
            b"content-length",
        ];
        FIXED.iter().any(|f| name.eq_ignore_ascii_case(f))
            || (!name.eq_ignore_ascii_case(b"host")
                && self.connection_tokens[..self.n_tokens]
                    .iter()
                    .any(|t| name.eq_ignore_ascii_case(t)))
    }

    /// Final transfer coding is `chunked` (and nothing odd around it).
    fn te_chunked(&self) -> Result<bool, HeadError> {
        let Some(te) = self.transfer_encoding else {
            return Ok(false);
        };
        if self.te_count > 1 {
            return Err(HeadError::Malformed("repeated Transfer-Encoding"));
        }
        let mut codings = te.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty());
        let last = codings.next_back().unwrap_or(b"");
        // Chunked may be applied once only, and last (RFC 9112 §6.1).
        if codings.any(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return Err(HeadError::Malformed("chunked applied more than once"));
        }
        Ok(last.eq_ignore_ascii_case(b"chunked"))
    }

    /// The transfer codings applied before the final `chunked` (or all of
    /// them when the last one is not `chunked`), e.g. `gzip` for
    /// `gzip, chunked`: they describe the body and travel with it.
    fn inner_codings(&self) -> Codings<'a> {
        let te = self.transfer_encoding.unwrap_or(b"");
        let mut n = te
            .split(|&b| b == b',')
            .filter(|c| !trim(c).is_empty())
            .count();
        let last_chunked = te
            .split(|&b| b == b',')
            .map(trim)
            .rfind(|c| !c.is_empty())
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        if last_chunked {
            n -= 1;
        }
        Codings { te, n }
    }

    /// `TE` listed `trailers` (the only TE value that is forwarded).
    fn te_trailers(headers: &[httparse::Header<'_>]) -> bool {
        headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("te")
                && h.value.split(|&b| b == b',').any(|t| {
                    trim(t.split(|&b| b == b';').next().unwrap_or(b""))
                        .eq_ignore_ascii_case(b"trailers")
                })
        })
    }
}

/// The transfer codings of a `Transfer-Encoding` value that come before a
/// final `chunked` (all of them if it is not last), empty list elements
/// left out.
#[derive(Clone, Copy)]
struct Codings<'a> {
    te: &'a [u8],
    n: usize,
}

impl Codings<'_> {
    fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Writes them comma-separated.
    fn write(&self, out: &mut Buf) {
        let items = self
            .te
            .split(|&b| b == b',')
            .map(trim)
            .filter(|c| !c.is_empty());
        for (i, c) in items.take(self.n).enumerate() {
            if i > 0 {
                out.put(b", ");
            }
            out.put(c);
        }
    }
}

/// A `Host` value is `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986):
/// no user info, path, spaces or lists.
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(end) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..end];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        (&v[..=end], &v[end + 1..])
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, &v[v.len()..]),
        }
    };
    let host_ok = host.starts_with(b"[")
        || host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=%".contains(&b));
    let port_ok = port.is_empty() || (port[0] == b':' && port[1..].iter().all(u8::is_ascii_digit));
    host_ok && port_ok
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Parses a Content-Length value: digits only; a list of identical values
/// (`5, 5`) is folded into one (RFC 9110 §8.6).
fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    let mut value: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let part = trim(part);
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::Malformed("invalid Content-Length"));
        }
        let n = part
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        match value {
            Some(prev) if prev != n => {
                return Err(HeadError::Malformed("conflicting Content-Length"));
            }
            _ => value = Some(n),
        }
    }
    value.ok_or(HeadError::Malformed("invalid Content-Length"))
}

/// `Transfer-Encoding: chunked`, after the codings the body already had.
fn write_chunked_field(out: &mut Buf, inner: Codings<'_>) {
    out.put(b"Transfer-Encoding: ");
    if !inner.is_empty() {
        inner.write(out);
        out.put(b", ");
    }
    out.put(b"chunked\r\n");
}

fn write_field(out: &mut Buf, name: &[u8], value: &[u8]) {
    out.put(name);
    out.put(b": ");
    out.put(value);
    out.put(b"\r\n");
}

fn ensure_space(out: &mut Buf, need: usize) {
    if !out.reserve_contiguous(need) {
        out.grow_to(out.len() + need);
        let ok = out.reserve_contiguous(need);
        debug_assert!(ok);
    }
}

/// Splits an absolute-form target (`http://host/path`) into authority and
/// origin-form path (RFC 9112 §3.2.2).
fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .or_else(|| target.strip_prefix("HTTP://"))
        .or_else(|| target.strip_prefix("HTTPS://"))?;
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(path_at);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some((authority, path))
}

/// Context the proxy adds to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardInfo<'a> {
    /// The client's address as text, appended to `X-Forwarded-For`.
    pub client_ip: &'a str,
    /// `Host` for requests that came without one (HTTP/1.0): the backend's
    /// address, as nginx does by default.
    pub default_host: &'a str,
    /// Add `X-Forwarded-Proto` and `Forwarded` (RFC 7239).
    pub forwarded: bool,
}

/// The `Via` entry ekilibri adds in both directions (RFC 9110 §7.6.3).
pub const VIA: &[u8] = b"1.1 ekilibri";

/// Parses the complete request head at the start of `input` (its length as
/// found by [`HeadScan::find_end`]) and writes the rewritten head, for the
/// backend, into `out`.
pub fn rewrite_request(
    input: &[u8],
    info: &ForwardInfo<'_>,
    out: &mut Buf,
) -> Result<RequestHead, HeadError> {
    check_partial_request(input)?;
    check_line_endings(input)?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        Err(httparse::Error::Version) => {
            return Err(if looks_like_http_version(input) {
                HeadError::Version
            } else {
                HeadError::Malformed("invalid request line")
            });
        }
        Err(_) => return Err(HeadError::Malformed("invalid request head")),
    };
    let (Some(method_str), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("invalid request line"));
    };
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = Method::from_token(method_str);
    if method == Method::Connect {
        return Err(HeadError::NotImplemented);
    }
    let facts = FieldFacts::collect(req.headers)?;

    let (authority, path) =
        if target.starts_with('/') || (target == "*" && method == Method::Options) {
            (None, target)
        } else if let Some((a, p)) = split_absolute(target) {
            // `p` is empty, or starts with `/` or `?`: origin-form needs
            // the `/` in front of a query (RFC 9112 §3.2.1).
            // An OPTIONS for the whole server is `*` (§3.2.4).
            (
                Some(a),
                if p.is_empty() && method == Method::Options {
                    "*"
                } else {
                    p
                },
            )
        } else {
            return Err(HeadError::Malformed("invalid request target"));
        };
    let bad_host_field = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("host") && !valid_host(trim(h.value)));
    if bad_host_field || authority.is_some_and(|a| !valid_host(a.as_bytes())) {
        return Err(HeadError::Malformed("invalid Host"));
    }
    if facts.host_count > 1
        || (version == Version::Http11 && facts.host_count == 0 && authority.is_none())
    {
        return Err(HeadError::Malformed("missing or repeated Host"));
    }

    let framing = if facts.transfer_encoding.is_some() {
        if facts.content_length.is_some() {
            return Err(HeadError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if version == Version::Http10 || !facts.te_chunked()? {
            return Err(HeadError::Malformed("unsupported Transfer-Encoding"));
        }
        Framing::Chunked
    } else {
        match facts.content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    let keep_alive = match version {
        Version::Http11 => !facts.close,
        Version::Http10 => facts.keep_alive && !facts.close,
    };

    ensure_space(
        out,
        len + REWRITE_SLACK + 2 * info.client_ip.len() + info.default_host.len(),
    );
    out.put(method_str.as_bytes());
    out.put(b" ");
    if !path.starts_with('/') && path != "*" {
        out.put(b"/");
    }
    out.put(path.as_bytes());
    out.put(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        write_field(out, b"Host", a.as_bytes());
    } else if facts.host_count == 0 {
        write_field(out, b"Host", info.default_host.as_bytes());
    }
    let upgrade = facts.connection_upgrade && facts.upgrade.is_some() && framing == Framing::None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if facts.is_hop_by_hop(name)
            || (authority.is_some() && name.eq_ignore_ascii_case(b"host"))
            || name.eq_ignore_ascii_case(b"x-forwarded-for")
            || (info.forwarded
                && (name.eq_ignore_ascii_case(b"forwarded")
                    || name.eq_ignore_ascii_case(b"x-forwarded-proto")))
        {
            continue;
        }
        write_field(out, name, h.value);
    }
    // X-Forwarded-For: every earlier hop, folded into one field, then the client.
    out.put(b"X-Forwarded-For: ");
    for x in req
        .headers
        .iter()
        .filter(|x| x.name.eq_ignore_ascii_case("x-forwarded-for"))
    {
        out.put(trim(x.value));
        out.put(b", ");
    }
    out.put(info.client_ip.as_bytes());
    out.put(b"\r\n");
    if info.forwarded {
        out.put(b"X-Forwarded-Proto: http\r\n");
        out.put(b"Forwarded: ");
        for x in req
            .headers
            .iter()
            .filter(|x| x.name.eq_ignore_ascii_case("forwarded"))
        {
            out.put(trim(x.value));
            out.put(b", ");
        }
        out.put(b"for=");
        if info.client_ip.contains(':') {
            out.put(b"\"[");
            out.put(info.client_ip.as_bytes());
            out.put(b"]\"");
        } else {
            out.put(info.client_ip.as_bytes());
        }
        out.put(b";proto=http\r\n");
    }
    write_field(out, b"Via", VIA);
    if upgrade {
        write_field(out, b"Upgrade", facts.upgrade.unwrap_or_default());
    }
    match framing {
        Framing::Length(n) => {
            out.put(b"Content-Length: ");
            out.put_u64(n);
            out.put(b"\r\n");
        }
        Framing::Chunked => write_chunked_field(out, facts.inner_codings()),
        Framing::None if facts.content_length == Some(0) => out.put(b"Content-Length: 0\r\n"),
        _ => {}
    }
    // TE is a connection option: whoever sends it names it in Connection
    // (RFC 9110 §10.1.4), as the Upgrade offer is.
    let te = FieldFacts::te_trailers(req.headers);
    if te {
        out.put(b"TE: trailers\r\n");
    }
    match (te, upgrade) {
        (true, true) => out.put(b"Connection: TE, upgrade\r\n"),
        (true, false) => out.put(b"Connection: TE\r\n"),
        (false, true) => out.put(b"Connection: upgrade\r\n"),
        (false, false) => {}
    }
    out.put(b"\r\n");

    Ok(RequestHead {
        method,
        version,
        framing,
        keep_alive,
        expect_continue: facts.expect_continue,
        upgrade,
        len,
    })
}

/// A well-formed request line (`method SP target SP HTTP/x.y`) whose only
/// fault is the version: that is a 505, anything else a 400.
fn looks_like_http_version(input: &[u8]) -> bool {
    let line_end = memchr(b'\r', input).unwrap_or(input.len());
    let mut parts = input[..line_end].split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !m.is_empty()
        && !t.is_empty()
        && v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

/// The request facts a response rewrite depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// The request was HEAD (the response has no body).
    pub head_request: bool,
    /// Version the client spoke.
    pub client_version: Version,
    /// The client asked to keep the connection open.
    pub client_keep_alive: bool,
    /// The request offered a protocol upgrade.
    pub upgrade: bool,
}

/// Parses the complete response head at the start of `input` and writes the
/// rewritten head, for the client, into `out`. Interim (1xx) responses are
/// returned with [`Framing::None`]; the caller then waits for the next head.
pub fn rewrite_response(
    input: &[u8],
    ctx: &RequestContext,
    out: &mut Buf,
) -> Result<ResponseHead, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        Err(_) => return Err(HeadError::Malformed("invalid response head")),
    };
    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
        return Err(HeadError::Malformed("invalid status line"));
    };
    if !(100..=999).contains(&status) {
        return Err(HeadError::Malformed("invalid status code"));
    }
    let reason = resp.reason.unwrap_or("");
    let facts = FieldFacts::collect(resp.headers)?;
    let backend_version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let interim = (100..200).contains(&status) && status != 101;
    let switching = status == 101;
    if switching
        && !(ctx.upgrade && ctx.client_version == Version::Http11 && facts.upgrade.is_some())
    {
        // Only an upgrade the client offered may be accepted.
        return Err(HeadError::Malformed("unexpected 101"));
    }

    let framing = if interim || switching || ctx.head_request || status == 204 || status == 304 {
        Framing::None
    } else if facts.transfer_encoding.is_some() {
        if facts.te_chunked()? {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = facts.content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let backend_reusable = !interim
        && !switching
        && framing != Framing::UntilClose
        && !facts.close
        && (backend_version == Version::Http11 || facts.keep_alive);

    let client_11 = ctx.client_version == Version::Http11;
    let (out_coding, mut client_keep_alive) = match framing {
        Framing::None | Framing::Length(_) => (OutCoding::Identity, ctx.client_keep_alive),
        Framing::Chunked | Framing::UntilClose if client_11 => {
            (OutCoding::Chunked, ctx.client_keep_alive)
        }
        Framing::Chunked | Framing::UntilClose => (OutCoding::Identity, false),
    };
    if interim {
        client_keep_alive = true;
    }

    let head = ResponseHead {
        status,
        framing,
        out: out_coding,
        backend_reusable,
        client_keep_alive,
        len,
    };
    if interim && !client_11 {
        // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
        return Ok(head);
    }

    ensure_space(out, len + REWRITE_SLACK);
    out.put(b"HTTP/1.1 ");
    out.put_u64(u64::from(status));
    out.put(b" ");
    out.put(reason.as_bytes());
    out.put(b"\r\n");
    let keep_framing_fields = framing == Framing::None && !interim && !switching;
    for h in resp.headers.iter() {
        let name = h.name.as_bytes();
        let framing_field = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        if keep_framing_fields && framing_field {
            // HEAD, 204 and 304 carry the framing of the would-be body as is.
            if client_11 || !name.eq_ignore_ascii_case(b"transfer-encoding") {
                write_field(out, name, h.value);
            }
            continue;
        }
        if facts.is_hop_by_hop(name) {
            continue;
        }
        write_field(out, name, h.value);
    }
    match (framing, out_coding) {
        (Framing::Length(n), _) => {
            out.put(b"Content-Length: ");
            out.put_u64(n);
            out.put(b"\r\n");
        }
        (Framing::Chunked | Framing::UntilClose, OutCoding::Chunked) => {
            write_chunked_field(out, facts.inner_codings());
        }
        (Framing::Chunked | Framing::UntilClose, OutCoding::Identity)
            if !facts.inner_codings().is_empty() =>
        {
            // An HTTP/1.0 client gets the body close-delimited; the codings
            // that remain on it are still named.
            out.put(b"Transfer-Encoding: ");
            facts.inner_codings().write(out);
            out.put(b"\r\n");
        }
        _ => {}
    }
    write_field(out, b"Via", VIA);
    if switching {
        write_field(out, b"Upgrade", facts.upgrade.unwrap_or_default());
        out.put(b"Connection: upgrade\r\n");
    } else if !interim {
        if !client_keep_alive {
            out.put(b"Connection: close\r\n");
        } else if !client_11 {
            out.put(b"Connection: keep-alive\r\n");
        }
    }
    out.put(b"\r\n");
    Ok(head)
}

#[cfg(test)]
mod tests;
