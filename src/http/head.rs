//! Request and response heads: parse with `httparse`, check framing, and
//! rewrite for the other side in one pass.
//!
//! The parsed head borrows the input buffer, so the rewrite into the output
//! buffer happens inside the same call; what survives is a small owned
//! summary ([`RequestHead`], [`ResponseHead`]).

use std::mem::MaybeUninit;

use super::{Framing, HopNames, Method, Version};
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
    /// HTTP version other than 1.x (505).
    Version,
    /// A method the proxy does not forward (501).
    NotImplemented,
    /// A valid response this client cannot receive (502): a transfer
    /// coding other than chunked for an HTTP/1.0 client. Not the backend's
    /// fault, unlike [`HeadError::Malformed`].
    Undeliverable,
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
            HeadError::Undeliverable => 502,
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
    /// `Connection`) to these; the offer is forwarded so the backend may
    /// accept one of them.
    pub upgrade: Option<Protocols>,
    /// Fields the `Connection` field names, dropped from the trailers too.
    pub hop_names: HopNames,
    /// A `TRACE` or `OPTIONS` request with `Max-Forwards: 0`: ekilibri is
    /// its final recipient and answers it itself (RFC 9110 §7.6.2).
    pub final_hop: bool,
    /// The head went out with `Host: <default_host>` (an HTTP/1.0 request
    /// without `Host`): it names the backend it was written for.
    pub default_host: bool,
    /// Bytes of the head in the input, final CRLF included.
    pub len: usize,
}

/// The protocol names of an `Upgrade` value, kept without allocating as a
/// 64-bit set of hashes (two bits per name, compared case-insensitively,
/// versions ignored), to check that a `101` switches to a protocol the
/// client offered (RFC 9110 §7.8). A hash collision can only let an
/// unoffered protocol through, never refuse an offered one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Protocols(u64);

impl Protocols {
    /// The protocols of both sets (several `Upgrade` lines make one list).
    pub fn union(self, other: Protocols) -> Protocols {
        Protocols(self.0 | other.0)
    }

    /// The names listed in an `Upgrade` value.
    pub fn of(value: &[u8]) -> Protocols {
        let mut bits = 0;
        for name in Self::names(value) {
            bits |= Self::bits(name);
        }
        Protocols(bits)
    }

    /// Every protocol an `Upgrade` value (of a `101`) names is one of
    /// these; false for a value naming none.
    pub fn offers_all(self, value: &[u8]) -> bool {
        let mut any = false;
        for name in Self::names(value) {
            let b = Self::bits(name);
            if self.0 & b != b {
                return false;
            }
            any = true;
        }
        any
    }

    fn names(value: &[u8]) -> impl Iterator<Item = &[u8]> {
        value
            .split(|&b| b == b',')
            .map(|p| trim(p.split(|&b| b == b'/').next().unwrap_or(b"")))
            .filter(|n| !n.is_empty())
    }

    fn bits(name: &[u8]) -> u64 {
        // FNV-1a over the lower-cased name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in name {
            h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
        }
        (1 << (h & 63)) | (1 << ((h >> 6) & 63))
    }
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
    /// Fields the `Connection` field names, dropped from the trailers too.
    pub hop_names: HopNames,
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
        // The end is an LF after LF, or after CR LF.
        let is_end = |nl: usize| {
            nl >= 1 && (buf[nl - 1] == b'\n' || (nl >= 2 && buf[nl - 2..nl] == *b"\n\r"))
        };
        let mut at = self.scanned.saturating_sub(3);
        while let Some(w) = word_at(buf, at) {
            let mut lf = eq_mask(w, b'\n');
            while lf != 0 {
                let nl = at + (lf.trailing_zeros() / 8) as usize;
                if is_end(nl) {
                    self.scanned = 0;
                    return Some(nl + 1);
                }
                lf &= lf - 1;
            }
            at += 8;
        }
        for (nl, &b) in buf.iter().enumerate().skip(at) {
            if b == b'\n' && is_end(nl) {
                self.scanned = 0;
                return Some(nl + 1);
            }
        }
        self.scanned = buf.len();
        None
    }

    /// Nothing was scanned yet: the bytes, if any, have not been looked at.
    pub fn is_fresh(&self) -> bool {
        self.scanned == 0
    }

    /// Forgets progress (the buffer was consumed).
    pub fn reset(&mut self) {
        self.scanned = 0;
    }
}

const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const ONES: u64 = 0x0101_0101_0101_0101;

/// The eight bytes of `buf` at `at`, if there are eight.
fn word_at(buf: &[u8], at: usize) -> Option<u64> {
    let w = buf.get(at..at + 8)?;
    Some(u64::from_le_bytes([
        w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
    ]))
}

/// The high bit of each byte of `w` that equals `b`, and no other bit.
fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    // A byte's high bit ends up set only if the byte of `x` is zero; the
    // low seven bits cannot carry into the next byte.
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Position of the first `needle` in `hay`, eight bytes at a time.
pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(w) = word_at(hay, at) {
        let m = eq_mask(w, needle);
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    hay[at..].iter().position(|&b| b == needle).map(|i| at + i)
}

/// Header names are tokens, so comparing each byte with the 0x20 bit set
/// against a lowercase literal of letters and `-` is a case-insensitive
/// comparison (the only other byte that maps to `-`, CR, is no token byte).
fn eq_lower(name: &[u8], lit: &[u8]) -> bool {
    if name.len() != lit.len() {
        return false;
    }
    let mut at = 0;
    while let (Some(a), Some(b)) = (word_at(name, at), word_at(lit, at)) {
        if a | (ONES * 0x20) != b {
            return false;
        }
        at += 8;
    }
    name[at..]
        .iter()
        .zip(&lit[at..])
        .all(|(&a, &b)| a | 0x20 == b)
}

/// Bytes of empty lines (CRLF) at the start of `buf`, which a server
/// ignores before a request line (RFC 9112 §2.2; a client may send one
/// after a request body).
pub fn leading_empty_lines(buf: &[u8]) -> usize {
    buf.chunks_exact(2).take_while(|p| *p == b"\r\n").count() * 2
}

/// Checks an incomplete head that has `buf` so far: the size limits, and
/// a request line, once complete, that can never become valid.
pub fn check_partial_request(buf: &[u8]) -> Result<(), HeadError> {
    let buf = &buf[leading_empty_lines(buf)..];
    let first_lf = memchr(b'\n', buf);
    check_sizes(buf, first_lf)?;
    if first_lf.is_some() && !request_line_may_be_valid(buf) {
        return Err(HeadError::Malformed("no HTTP version in the request line"));
    }
    Ok(())
}

/// The size limits on a request head, whole or partial (`first_lf`: where
/// its first LF is): request line, then the header section.
fn check_sizes(buf: &[u8], first_lf: Option<usize>) -> Result<(), HeadError> {
    match first_lf {
        None if buf.len() > MAX_REQUEST_LINE => Err(HeadError::UriTooLong),
        Some(line) if line > MAX_REQUEST_LINE => Err(HeadError::UriTooLong),
        Some(line) if buf.len() - line > MAX_HEADER_BYTES => Err(HeadError::HeadersTooLarge),
        _ => Ok(()),
    }
}

/// Whether the first complete line of `buf` can be an HTTP/1.x request
/// line: it ends in a token starting `HTTP/`. An HTTP/0.9 request
/// (`GET /path`) is refused when its line ends, not when the header
/// timeout does (RFC 9112 §3).
fn request_line_may_be_valid(buf: &[u8]) -> bool {
    let Some(end) = memchr(b'\n', buf) else {
        return true;
    };
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.iter()
        .rposition(|&b| b == b' ')
        .is_some_and(|sp| line[sp + 1..].starts_with(b"HTTP/"))
}

/// Rejects any LF not preceded by CR, and any CR not followed by LF, in a
/// complete head (RFC 9112 §2.2: a recipient of bare LF in a request may
/// reject it; a proxy must, since it cannot know how the next hop reads
/// it; a bare CR is rejected too).
fn check_line_endings(head: &[u8]) -> Result<(), HeadError> {
    // Line ends are right when the CR positions shifted by one byte are
    // exactly the LF positions; `carry` is a CR in the last byte of the
    // previous word.
    let mut carry = 0u64;
    let mut at = 0;
    loop {
        let w = match word_at(head, at) {
            Some(w) => w,
            None if at >= head.len() => break,
            None => {
                // The tail, padded with zero bytes (neither CR nor LF).
                let mut tail = [0u8; 8];
                tail[..head.len() - at].copy_from_slice(&head[at..]);
                u64::from_le_bytes(tail)
            }
        };
        let (lf, cr) = (eq_mask(w, b'\n'), eq_mask(w, b'\r'));
        let after_cr = (cr << 8) | carry;
        if lf & !after_cr != 0 {
            return Err(HeadError::Malformed("bare LF"));
        }
        if after_cr != lf {
            return Err(HeadError::Malformed("bare CR"));
        }
        carry = cr >> 56;
        at += 8;
    }
    if carry != 0 {
        return Err(HeadError::Malformed("bare CR"));
    }
    Ok(())
}

/// The header fields the proxy acts on, each recognised once per head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Field {
    #[default]
    Other,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    ProxyAuthorization,
    Host,
    /// `Date`: a response without one gets the proxy's (RFC 9110 §6.6.1).
    Date,
    Expect,
    XForwardedFor,
    XForwardedProto,
    Forwarded,
    /// An underscore spelling of a framing or hop-by-hop field: dropped.
    Alias,
}

impl Field {
    fn of(name: &[u8]) -> Field {
        // The length picks one or two candidates; the first letter rules
        // out most other names before the full comparison.
        let is = |lit: &[u8]| name[0] | 0x20 == lit[0] && eq_lower(name, lit);
        match name.len() {
            2 if is(b"te") => Field::Te,
            4 if is(b"host") => Field::Host,
            4 if is(b"date") => Field::Date,
            6 if is(b"expect") => Field::Expect,
            7 if is(b"upgrade") => Field::Upgrade,
            9 if is(b"forwarded") => Field::Forwarded,
            10 if is(b"connection") => Field::Connection,
            10 if is(b"keep-alive") => Field::KeepAlive,
            14 if is(b"content-length") => Field::ContentLength,
            15 if is(b"x-forwarded-for")
                || super::aliases_with_underscores(name, b"x-forwarded-for") =>
            {
                Field::XForwardedFor
            }
            16 if is(b"proxy-connection") => Field::ProxyConnection,
            17 if is(b"transfer-encoding") => Field::TransferEncoding,
            17 if is(b"x-forwarded-proto")
                || super::aliases_with_underscores(name, b"x-forwarded-proto") =>
            {
                Field::XForwardedProto
            }
            19 if is(b"proxy-authorization") => Field::ProxyAuthorization,
            10 | 14 | 16 | 17 | 19 if name.contains(&b'_') => {
                // An underscore spelling of a framing or hop-by-hop field
                // (`Transfer_Encoding`, `Content_Length`): never forwarded,
                // so no backend can read it as the real one.
                let aliases = [
                    &b"keep-alive"[..],
                    b"content-length",
                    b"proxy-connection",
                    b"transfer-encoding",
                    b"proxy-authorization",
                ];
                if aliases
                    .iter()
                    .any(|lit| super::aliases_with_underscores(name, lit))
                {
                    Field::Alias
                } else {
                    Field::Other
                }
            }
            _ => Field::Other,
        }
    }

    /// Fields that apply to one connection only and are dropped when
    /// forwarding (RFC 9110 §7.6.1), and the framing fields the proxy
    /// writes itself.
    fn always_hop_by_hop(self) -> bool {
        matches!(
            self,
            Field::Connection
                | Field::KeepAlive
                | Field::ProxyConnection
                | Field::Te
                | Field::TransferEncoding
                | Field::Upgrade
                | Field::ProxyAuthorization
                | Field::ContentLength
                | Field::Alias
        )
    }
}

/// Facts collected from header fields common to requests and responses.
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
    /// Some `Upgrade` field is present (its lines: `upgrade_values`).
    upgrade: bool,
    /// A `Host` field is not a valid `uri-host [ ":" port ]`.
    bad_host: bool,
    /// A `TE` field lists `trailers`.
    te_trailers: bool,
    /// A `Date` field is present.
    date: bool,
    /// `X-Forwarded-For` fields.
    xff_count: usize,
    /// `Forwarded` fields.
    forwarded_count: usize,
    /// What each header field is, by index.
    kinds: [Field; MAX_HEADERS],
}

impl Default for FieldFacts<'_> {
    fn default() -> Self {
        FieldFacts {
            content_length: None,
            transfer_encoding: None,
            te_count: 0,
            close: false,
            keep_alive: false,
            connection_tokens: [b""; MAX_CONNECTION_TOKENS],
            n_tokens: 0,
            host_count: 0,
            expect_continue: false,
            connection_upgrade: false,
            upgrade: false,
            bad_host: false,
            te_trailers: false,
            date: false,
            xff_count: 0,
            forwarded_count: 0,
            kinds: [Field::Other; MAX_HEADERS],
        }
    }
}

impl<'a> FieldFacts<'a> {
    /// Fills the facts from `headers` (into `self`, which starts as
    /// [`Default`]: the struct is large, so it is not moved around).
    fn collect(&mut self, headers: &[httparse::Header<'a>]) -> Result<(), HeadError> {
        let f = self;
        for (i, h) in headers.iter().enumerate() {
            let kind = Field::of(h.name.as_bytes());
            f.kinds[i] = kind;
            match kind {
                Field::Other => {}
                Field::ContentLength => {
                    let v = parse_content_length(h.value)?;
                    match f.content_length {
                        Some(prev) if prev != v => {
                            return Err(HeadError::Malformed("conflicting Content-Length"));
                        }
                        _ => f.content_length = Some(v),
                    }
                }
                Field::TransferEncoding => {
                    f.te_count += 1;
                    f.transfer_encoding = Some(h.value);
                }
                Field::Connection => f.connection_options(h.value)?,
                Field::Host => {
                    f.host_count += 1;
                    f.bad_host |= !valid_host(trim(h.value));
                }
                // Several lines make one list (RFC 9110 §5.3, §7.8), read
                // by `upgrade_values` when needed.
                Field::Upgrade => f.upgrade = true,
                Field::Expect => {
                    f.expect_continue |= trim(h.value).eq_ignore_ascii_case(b"100-continue");
                }
                Field::Te => f.te_trailers |= lists_trailers(h.value),
                Field::XForwardedFor => f.xff_count += 1,
                Field::Date => f.date = true,
                Field::Forwarded => f.forwarded_count += 1,
                Field::KeepAlive
                | Field::ProxyConnection
                | Field::ProxyAuthorization
                | Field::XForwardedProto
                | Field::Alias => {}
            }
        }
        Ok(())
    }

    /// The values of every `Upgrade` field line of `headers` (the ones
    /// these facts were collected from), in order.
    fn upgrade_values<'h>(
        &'h self,
        headers: &'h [httparse::Header<'a>],
    ) -> impl Iterator<Item = &'a [u8]> + 'h {
        headers
            .iter()
            .zip(&self.kinds)
            .filter(|(_, k)| **k == Field::Upgrade)
            .map(|(h, _)| h.value)
    }

    /// The custom options of `Connection`, for the trailers.
    fn hop_names(&self) -> HopNames {
        if self.n_tokens == 0 {
            return HopNames::default();
        }
        HopNames::of(self.connection_tokens[..self.n_tokens].iter().copied())
    }

    /// Records the options one `Connection` field lists.
    fn connection_options(&mut self, value: &'a [u8]) -> Result<(), HeadError> {
        for tok in value.split(|&b| b == b',') {
            let tok = trim(tok);
            if tok.is_empty() {
                continue;
            }
            if tok.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if tok.eq_ignore_ascii_case(b"upgrade") {
                self.connection_upgrade = true;
            } else if self.n_tokens < MAX_CONNECTION_TOKENS {
                self.connection_tokens[self.n_tokens] = tok;
                self.n_tokens += 1;
            } else {
                return Err(HeadError::Malformed("too many Connection options"));
            }
        }
        Ok(())
    }

    /// True for the field at `index` when it is dropped on forwarding:
    /// always for the fixed hop-by-hop fields, and for any field the
    /// `Connection` field names (but never `Host`).
    fn is_hop_by_hop(&self, index: usize, name: &[u8]) -> bool {
        let kind = self.kinds[index];
        kind.always_hop_by_hop()
            || (self.n_tokens > 0
                && kind != Field::Host
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
    /// `identity` (no coding; RFC 2616's, removed by RFC 7230) is left out.
    fn inner_codings(&self) -> Codings<'a> {
        let te = self.transfer_encoding.unwrap_or(b"");
        let last_chunked = te
            .split(|&b| b == b',')
            .map(trim)
            .rfind(|c| !c.is_empty())
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        let mut n = Codings { te, n: usize::MAX }.items().count();
        if last_chunked {
            n -= 1;
        }
        Codings { te, n }
    }
}

/// A `TE` value lists `trailers` (the only TE value that is forwarded).
fn lists_trailers(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| {
        trim(t.split(|&b| b == b';').next().unwrap_or(b"")).eq_ignore_ascii_case(b"trailers")
    })
}

/// The transfer codings of a `Transfer-Encoding` value that come before a
/// final `chunked` (all of them if it is not last), empty list elements
/// and `identity` left out.
#[derive(Clone, Copy)]
struct Codings<'a> {
    te: &'a [u8],
    n: usize,
}

impl Codings<'_> {
    fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The codings, with empty elements and `identity` left out.
    fn items(&self) -> impl Iterator<Item = &[u8]> {
        self.te
            .split(|&b| b == b',')
            .map(trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"))
            .take(self.n)
    }

    /// Writes them comma-separated.
    fn write(&self, out: &mut Buf) {
        for (i, c) in self.items().enumerate() {
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
    let (host_ok, port) = if v.first() == Some(&b'[') {
        let Some(end) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..end];
        let ok = !inner.is_empty()
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        (ok, &v[end + 1..])
    } else {
        // One pass: reg-name or IPv4 bytes up to the first byte that is
        // not one (`:` is not), which must start the port.
        let end = v
            .iter()
            .position(|&b| !HOST_BYTES[usize::from(b)])
            .unwrap_or(v.len());
        (true, &v[end..])
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((&b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    host_ok && port_ok
}

/// Copies the parts of a head that are forwarded unchanged: consecutive
/// lines already in canonical form (`name: value CRLF`) go out in one copy
/// instead of field by field.
struct Copier<'a> {
    input: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> Copier<'a> {
    fn new(input: &'a [u8]) -> Self {
        Copier {
            input,
            start: 0,
            end: 0,
        }
    }

    /// Adds `input[from..to]` to the pending copy.
    fn keep(&mut self, out: &mut Buf, from: usize, to: usize) {
        if from != self.end {
            self.flush(out);
            self.start = from;
        }
        self.end = to;
    }

    /// Writes the pending copy.
    fn flush(&mut self, out: &mut Buf) {
        if self.end > self.start {
            out.put(&self.input[self.start..self.end]);
        }
        self.start = self.end;
    }

    /// Forwards field `h` of the input as `name: value CRLF`.
    fn field(&mut self, out: &mut Buf, h: &httparse::Header<'_>) {
        match self.canonical_line(h) {
            Some((from, to)) => self.keep(out, from, to),
            None => {
                self.flush(out);
                write_field(out, h.name.as_bytes(), h.value);
            }
        }
    }

    /// Where the line of `h` lies in the input, if it reads exactly
    /// `name: value CRLF` (one space, no trailing whitespace).
    fn canonical_line(&self, h: &httparse::Header<'_>) -> Option<(usize, usize)> {
        if h.value.is_empty() {
            return None;
        }
        let base = self.input.as_ptr() as usize;
        let from = (h.name.as_ptr() as usize).checked_sub(base)?;
        let colon = from + h.name.len();
        let value = (h.value.as_ptr() as usize).checked_sub(base)?;
        let to = value + h.value.len() + 2;
        (value == colon + 2
            && self.input.get(colon..value)? == b": "
            && self.input.get(to - 2..to)? == b"\r\n")
            .then_some((from, to))
    }
}

/// Bytes allowed in a reg-name or IPv4 host (RFC 3986 unreserved,
/// sub-delims and `%` of pct-encoded).
const HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b';'
                    | b'='
                    | b'%'
            );
        b += 1;
    }
    t
};

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

/// A `Max-Forwards` value (`1*DIGIT`), leading zeros aside, at most
/// 2^63 − 1: the proxy's own maximum (RFC 9110 §7.6.2 has it send the
/// lesser of that and the value less one), which any signed 64-bit parser
/// downstream holds.
fn parse_hop_count(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = &v[v.iter().take_while(|&&d| d == b'0').count()..];
    Some(
        digits
            .iter()
            .try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .map_or(MAX_HOPS, |n| n.min(MAX_HOPS)),
    )
}

/// The largest `Max-Forwards` ekilibri sends on, plus one (see
/// [`parse_hop_count`]).
const MAX_HOPS: u64 = i64::MAX as u64 + 1;

/// A `1*DIGIT` value of at most 19 digits (the significant digits of a
/// `Content-Length`).
fn parse_decimal(v: &[u8]) -> Option<u64> {
    (!v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit)).then(|| {
        v.iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'))
    })
}

/// Parses a Content-Length value: digits only, any number of leading
/// zeros (as nginx and HAProxy accept); a list of identical values (`5, 5`,
/// `5, 005`) is folded into one (RFC 9110 §8.6).
fn parse_content_length(v: &[u8]) -> Result<u64, HeadError> {
    let mut value: Option<u64> = None;
    for part in v.split(|&b| b == b',') {
        let part = trim(part);
        // Leading zeros are not significant digits (`000` keeps one).
        let zeros = part.iter().take_while(|&&d| d == b'0').count();
        let significant = &part[zeros.min(part.len().saturating_sub(1))..];
        let Some(n) = parse_decimal(significant) else {
            return Err(HeadError::Malformed("invalid Content-Length"));
        };
        if n > i64::MAX as u64 {
            // A length no signed 64-bit parser downstream can hold.
            return Err(HeadError::Malformed("invalid Content-Length"));
        }
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
    // The list is rewritten `a, b`: one byte more per comma than a value
    // written `a,b`, which the space reserved for the head does not cover.
    ensure_space(out, inner.te.len() + 2 * inner.n + 32);
    out.put(b"Transfer-Encoding: ");
    if !inner.is_empty() {
        inner.write(out);
        out.put(b", ");
    }
    out.put(b"chunked\r\n");
}

fn write_content_length(out: &mut Buf, n: u64) {
    out.put(b"Content-Length: ");
    out.put_u64(n);
    out.put(b"\r\n");
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
    // The scheme is case-insensitive (RFC 3986 §3.1): `Http://` too.
    let (scheme, rest) = target.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
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
    /// The client's address as text (ASCII), appended to
    /// `X-Forwarded-For`.
    pub client_ip: &'a [u8],
    /// `Host` for requests that came without one (HTTP/1.0): the backend's
    /// address, as nginx does by default.
    pub default_host: &'a str,
    /// Add `X-Forwarded-Proto` and `Forwarded` (RFC 7239).
    pub forwarded: bool,
}

/// The `Via` entry ekilibri adds in both directions (RFC 9110 §7.6.3),
/// as a literal so that it can be joined with its neighbours at compile time.
macro_rules! via {
    () => {
        "1.1 ekilibri"
    };
}

/// The `Via` entry ekilibri adds in both directions (RFC 9110 §7.6.3).
pub const VIA: &[u8] = via!().as_bytes();
/// The whole `Via` field line.
const VIA_FIELD: &[u8] = concat!("Via: ", via!(), "\r\n").as_bytes();
/// The same for a message received as HTTP/1.0: `Via` names the protocol
/// version received (RFC 9110 §7.6.3).
const VIA_FIELD_10: &[u8] = b"Via: 1.0 ekilibri\r\n";

fn via_field(received: Version) -> &'static [u8] {
    match received {
        Version::Http10 => VIA_FIELD_10,
        Version::Http11 => VIA_FIELD,
    }
}

/// Copies `sent` (a head [`rewrite_request`] wrote with `Host: <from>` as
/// the default host, and whatever body bytes follow it) into `out` with
/// that field naming `to` instead, for a request retried on another
/// backend after its head left the client's buffer. Returns false, writing
/// nothing, if the head has no such field.
pub fn retarget_default_host(sent: &[u8], from: &str, to: &str, out: &mut Buf) -> bool {
    let head_end = sent
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 2);
    let line_len = b"\r\nHost: \r\n".len() + from.len();
    let Some(at) = sent[..head_end].windows(line_len).position(|w| {
        w.starts_with(b"\r\nHost: ") && w[8..].starts_with(from.as_bytes()) && w.ends_with(b"\r\n")
    }) else {
        return false;
    };
    let need = sent.len() - from.len() + to.len();
    if out.space() < need {
        out.grow_to(out.len() + need);
    }
    out.put(&sent[..at + 8]);
    out.put(to.as_bytes());
    out.put(&sent[at + 8 + from.len()..]);
    true
}

/// Parses the complete request head at the start of `input` (its length as
/// found by [`HeadScan::find_end`]) and writes the rewritten head, for the
/// backend, into `out`.
pub fn rewrite_request(
    input: &[u8],
    info: &ForwardInfo<'_>,
    out: &mut Buf,
) -> Result<RequestHead, HeadError> {
    let skipped = leading_empty_lines(input);
    if skipped > 0 {
        let mut head = rewrite_request(&input[skipped..], info, out)?;
        head.len += skipped;
        return Ok(head);
    }
    check_sizes(input, memchr(b'\n', input))?;
    check_line_endings(input)?;
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(input, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        Err(httparse::Error::Version) => {
            // RFC 9110 §2.5: a higher minor version of a major version we
            // implement (`HTTP/1.2`) is processed as the highest we do,
            // HTTP/1.1, as nginx and HAProxy do. Rare: a copy is fine.
            if let Some(minor) = higher_http1_minor(input) {
                let mut as_11 = input.to_vec();
                as_11[minor] = b'1';
                return rewrite_request(&as_11, info, out);
            }
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
    if target.as_bytes().contains(&b'#') {
        // No request-target form has a fragment (RFC 9112 §3.2): a client
        // never sends one, and forwarding it leaves its meaning to the backend.
        return Err(HeadError::Malformed("fragment in request target"));
    }
    let mut facts = FieldFacts::default();
    facts.collect(req.headers)?;

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
    if facts.bad_host || authority.is_some_and(|a| !valid_host(a.as_bytes())) {
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
        // A coding before `chunked` (`gzip, chunked`): 501 (RFC 9112 §6.1),
        // as nginx answers. Passed on, it would reach backends that frame
        // only an exact `chunked`, and read the body as the next request.
        let codings = facts
            .transfer_encoding
            .unwrap_or_default()
            .split(|&b| b == b',')
            .filter(|c| !trim(c).is_empty());
        if codings.count() > 1 {
            return Err(HeadError::NotImplemented);
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

    // A field line may grow by one byte (`name:value` gets its space).
    ensure_space(
        out,
        len + req.headers.len()
            + REWRITE_SLACK
            + 2 * info.client_ip.len()
            + info.default_host.len(),
    );
    let mut copy = Copier::new(input);
    let line_len = method_str.len() + target.len() + b"  HTTP/1.1\r\n".len();
    if authority.is_none()
        && version == Version::Http11
        && input.get(line_len - 2..line_len) == Some(b"\r\n")
    {
        // `method SP target SP HTTP/1.1 CRLF` already, single spaces (the
        // parser allows nothing else): forwarded as it is.
        copy.keep(out, 0, line_len);
    } else {
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
    }
    // A server ignores Upgrade in an HTTP/1.0 request (RFC 9110 §7.8); the
    // backend gets HTTP/1.1, so the offer is dropped here.
    let upgrade = version == Version::Http11
        && facts.connection_upgrade
        && facts.upgrade
        && framing == Framing::None;
    let mut expect_forwarded = false;
    // TRACE and OPTIONS: Max-Forwards goes out decremented (RFC 9110
    // §7.6.2); at 0 the request stops here.
    let limits_hops = matches!(method, Method::Trace | Method::Options);
    // A singleton field: of several, the smallest number counts (the
    // request goes no further than any of them allows). One that is not
    // digits is passed on as it is, if no field is digits.
    let max_forwards = if limits_hops {
        req.headers
            .iter()
            .filter(|h| eq_lower(h.name.as_bytes(), b"max-forwards"))
            .filter_map(|h| parse_hop_count(trim(h.value)))
            .min()
    } else {
        None
    };
    let mut max_forwards_seen = false;
    for (i, h) in req.headers.iter().enumerate() {
        let name = h.name.as_bytes();
        if limits_hops && eq_lower(name, b"max-forwards") {
            if max_forwards.is_some() || max_forwards_seen {
                continue;
            }
            max_forwards_seen = true;
        }
        let dropped = match facts.kinds[i] {
            Field::Host => authority.is_some(),
            // An HTTP/1.0 request's 100-continue expectation is ignored
            // (RFC 9110 §10.1.1), so it must not reach the backend in an
            // HTTP/1.1 request, where it would be acted on. Named in
            // `Connection`, it was meant for this hop only (§7.6.1).
            Field::Expect => {
                let drop = version == Version::Http10 || facts.is_hop_by_hop(i, name);
                expect_forwarded |= !drop;
                drop
            }
            Field::XForwardedFor => true,
            Field::Forwarded | Field::XForwardedProto => {
                info.forwarded || facts.is_hop_by_hop(i, name)
            }
            _ => facts.is_hop_by_hop(i, name),
        };
        if !dropped {
            copy.field(out, h);
        }
    }
    copy.flush(out);
    // X-Forwarded-For: every earlier hop, folded into one field, then the client.
    out.put(b"X-Forwarded-For: ");
    if facts.xff_count > 0 {
        for (i, x) in req.headers.iter().enumerate() {
            if facts.kinds[i] == Field::XForwardedFor {
                out.put(trim(x.value));
                out.put(b", ");
            }
        }
    }
    out.put(info.client_ip);
    if info.forwarded {
        out.put(b"\r\nX-Forwarded-Proto: http\r\nForwarded: ");
        if facts.forwarded_count > 0 {
            for (i, x) in req.headers.iter().enumerate() {
                if facts.kinds[i] == Field::Forwarded {
                    out.put(trim(x.value));
                    out.put(b", ");
                }
            }
        }
        if info.client_ip.contains(&b':') {
            out.put(b"for=\"[");
            out.put(info.client_ip);
            out.put(b"]\";proto=http\r\n");
        } else {
            out.put(b"for=");
            out.put(info.client_ip);
            out.put(b";proto=http\r\n");
        }
    } else {
        out.put(b"\r\n");
    }
    out.put(via_field(version));
    if let Some(n) = max_forwards {
        out.put(b"Max-Forwards: ");
        out.put_u64(n.saturating_sub(1));
        out.put(b"\r\n");
    }
    if upgrade {
        for v in facts.upgrade_values(req.headers) {
            write_field(out, b"Upgrade", v);
        }
    }
    match framing {
        Framing::Length(n) => write_content_length(out, n),
        Framing::Chunked => write_chunked_field(out, facts.inner_codings()),
        Framing::None if facts.content_length == Some(0) => out.put(b"Content-Length: 0\r\n"),
        _ => {}
    }
    // TE is a connection option: whoever sends it names it in Connection
    // (RFC 9110 §10.1.4), as the Upgrade offer is.
    // (Not for an HTTP/1.0 client, which gets no trailers.)
    let te = facts.te_trailers && version == Version::Http11;
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
        expect_continue: facts.expect_continue && expect_forwarded,
        final_hop: max_forwards == Some(0),
        default_host: authority.is_none() && facts.host_count == 0,
        hop_names: facts.hop_names(),
        upgrade: upgrade.then(|| {
            facts
                .upgrade_values(req.headers)
                .fold(Protocols::default(), |all, v| all.union(Protocols::of(v)))
        }),
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

/// Where the minor digit of a well-formed request line's `HTTP/1.2` to
/// `HTTP/1.9` is.
fn higher_http1_minor(input: &[u8]) -> Option<usize> {
    let line_end = memchr(b'\r', input)?;
    let version = input[..line_end].get(line_end.checked_sub(8)?..)?;
    (looks_like_http_version(input) && version.starts_with(b"HTTP/1.") && version[7] >= b'2')
        .then(|| line_end - 1)
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
    /// The protocols the request offered to switch to, if any.
    pub upgrade: Option<Protocols>,
    /// Part of the request body has not arrived yet. An error response
    /// (4xx, 5xx) then says `Connection: close`: the connection closes if
    /// the response ends first, and the client should stop sending
    /// (RFC 9112 §9.6). So does a response after which the backend
    /// connection closes: the rest of the body has nowhere to go. A
    /// success on a connection that stays (a full-duplex echo) keeps it.
    pub body_pending: bool,
    /// The proxy's `Date` value for this second, added to a final response
    /// that has none (RFC 9110 §6.6.1: a recipient with a clock appends
    /// one when it forwards such a response); `None` adds nothing.
    pub date: Option<[u8; crate::time::date::HTTP_DATE_LEN]>,
}

/// Parses the complete response head at the start of `input` and writes the
/// rewritten head, for the client, into `out`. Interim (1xx) responses are
/// returned with [`Framing::None`]; the caller then waits for the next head.
pub fn rewrite_response(
    input: &[u8],
    ctx: &RequestContext,
    out: &mut Buf,
) -> Result<ResponseHead, HeadError> {
    rewrite_response_if_complete(input, ctx, out)?.ok_or(HeadError::Malformed("incomplete head"))
}

/// [`rewrite_response`] for `input` that may hold less than a whole head
/// (`Ok(None)`, nothing written) or more (the head's length is
/// [`ResponseHead::len`]). A head that arrived whole is thus parsed without
/// scanning for its end first.
pub fn rewrite_response_if_complete(
    input: &[u8],
    ctx: &RequestContext,
    out: &mut Buf,
) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        // RFC 9112 §5.1: a proxy removes whitespace between a response
        // field name and the colon (the field goes out rewritten).
        .allow_spaces_after_header_name_in_responses(true)
        .parse_response_with_uninit_headers(&mut resp, input, &mut headers)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadersTooLarge),
        // RFC 9110 §2.5: `HTTP/1.2` to `HTTP/1.9` is processed as HTTP/1.1,
        // as for requests. Rare: a copy is fine.
        Err(httparse::Error::Version)
            if input.len() > 8
                && input.starts_with(b"HTTP/1.")
                && (b'2'..=b'9').contains(&input[7])
                && input[8] == b' ' =>
        {
            let mut as_11 = input.to_vec();
            as_11[7] = b'1';
            return rewrite_response_if_complete(&as_11, ctx, out);
        }
        Err(_) => return Err(HeadError::Malformed("invalid response head")),
    };
    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
        return Err(HeadError::Malformed("invalid status line"));
    };
    if !(100..=999).contains(&status) {
        return Err(HeadError::Malformed("invalid status code"));
    }
    // The reason phrase as sent: httparse gives "" for one with obs-text
    // (bytes 0x80-0xFF), which RFC 9112 §4 allows and nginx and HAProxy
    // pass on. (httparse checked its bytes; `HTTP/1.x 200 ` is 13 long.)
    let reason: &[u8] = match resp.reason {
        Some(r) if !r.is_empty() => r.as_bytes(),
        _ => {
            let status_line = &input[..memchr(b'\n', input).unwrap_or(0)];
            let status_line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
            match status_line.get(12) {
                Some(b' ') => &status_line[13..],
                _ => b"",
            }
        }
    };
    let mut facts = FieldFacts::default();
    facts.collect(resp.headers)?;
    let backend_version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let interim = (100..200).contains(&status) && status != 101;
    let switching = status == 101;
    if switching
        && !(ctx.client_version == Version::Http11
            && facts.upgrade
            && ctx.upgrade.is_some_and(|offered| {
                facts
                    .upgrade_values(resp.headers)
                    .all(|chosen| offered.offers_all(chosen))
            }))
    {
        // Only an upgrade the client offered may be accepted, and only to
        // a protocol it named (RFC 9110 §7.8).
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
        && (backend_version == Version::Http11 || facts.keep_alive)
        // Transfer-Encoding in an HTTP/1.0 message: faulty framing, close
        // after it (RFC 9112 §6.1). With Content-Length too: framed by
        // Transfer-Encoding, but a sign of smuggling or a broken server
        // (§6.3), so the connection is not trusted with another request.
        && !(facts.transfer_encoding.is_some()
            && (backend_version == Version::Http10 || facts.content_length.is_some()));

    let client_11 = ctx.client_version == Version::Http11;
    // With request body still to come, the client connection stays only if
    // the rest of the body can go somewhere: not after an error (the client
    // is told to stop, RFC 9112 §9.6), nor when this backend connection
    // closes after the response.
    let keep_alive =
        ctx.client_keep_alive && !(ctx.body_pending && (status >= 400 || !backend_reusable));
    let (out_coding, mut client_keep_alive) = match framing {
        Framing::None | Framing::Length(_) => (OutCoding::Identity, keep_alive),
        Framing::Chunked | Framing::UntilClose if client_11 => (OutCoding::Chunked, keep_alive),
        Framing::Chunked | Framing::UntilClose => {
            if !facts.inner_codings().is_empty() {
                // A transfer coding other than chunked (e.g. gzip) cannot be
                // sent to an HTTP/1.0 client, which knows no Transfer-Encoding
                // (RFC 9112 §6.1), and removing it would hand over coded
                // bytes labelled as plain: 502, as nginx answers.
                return Err(HeadError::Undeliverable);
            }
            (OutCoding::Identity, false)
        }
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
        hop_names: facts.hop_names(),
        len,
    };
    if interim && !client_11 {
        // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
        return Ok(Some(head));
    }

    // Each field line may grow by two bytes (`name:value LF` becomes
    // `name: value CRLF`), the status line by three, plus the added fields.
    ensure_space(out, len + 2 * (resp.headers.len() + 2) + REWRITE_SLACK);
    let mut copy = Copier::new(input);
    let line_len = b"HTTP/1.1 200 \r\n".len() + reason.len();
    if input.starts_with(b"HTTP/1.1 ")
        && !reason.is_empty()
        && input.get(12) == Some(&b' ')
        && input.get(line_len - 2..line_len) == Some(b"\r\n")
    {
        // `HTTP/1.1 SP 3DIGIT SP reason CRLF` already: forwarded as it is.
        copy.keep(out, 0, line_len);
    } else {
        out.put(b"HTTP/1.1 ");
        out.put_u64(u64::from(status));
        out.put(b" ");
        out.put(reason);
        out.put(b"\r\n");
    }
    let keep_framing_fields = framing == Framing::None && !interim && !switching;
    // (A `Date` the backend named in `Connection` is dropped: the
    // proxy's goes out instead.)
    let mut date_kept = false;
    for (i, h) in resp.headers.iter().enumerate() {
        let kind = facts.kinds[i];
        let framing_field = matches!(kind, Field::ContentLength | Field::TransferEncoding);
        if keep_framing_fields && framing_field {
            // HEAD and 304 carry the framing of the would-be body:
            // Transfer-Encoding (HTTP/1.1 clients only), or else one
            // Content-Length, written below. Never both (RFC 9112 §6.2),
            // and neither on a 204 (RFC 9110 §8.6, RFC 9112 §6.1).
            if kind == Field::TransferEncoding && client_11 && status != 204 {
                copy.field(out, h);
            }
            continue;
        }
        if !facts.is_hop_by_hop(i, h.name.as_bytes()) {
            copy.field(out, h);
            date_kept |= kind == Field::Date;
        }
    }
    copy.flush(out);
    let bodiless_length = facts
        .content_length
        .filter(|_| keep_framing_fields && status != 204 && facts.transfer_encoding.is_none());
    match (framing, out_coding) {
        (Framing::Length(n), _) => write_content_length(out, n),
        (Framing::None, _) => {
            if let Some(n) = bodiless_length {
                write_content_length(out, n);
            }
        }
        (Framing::Chunked | Framing::UntilClose, OutCoding::Chunked) => {
            write_chunked_field(out, facts.inner_codings());
        }
        _ => {}
    }
    out.put(via_field(backend_version));
    if let Some(date) = ctx.date.as_ref().filter(|_| !interim && !date_kept) {
        out.put(b"Date: ");
        out.put(date);
        out.put(b"\r\n");
    }
    if switching {
        for v in facts.upgrade_values(resp.headers) {
            write_field(out, b"Upgrade", v);
        }
        out.put(b"Connection: upgrade\r\n");
    } else if !interim {
        // A 426 must say which protocol to upgrade to (RFC 9110 §15.5.22),
        // with `upgrade` in `Connection` (§7.8).
        let upgrade_required = status == 426 && facts.upgrade;
        if upgrade_required {
            for v in facts.upgrade_values(resp.headers) {
                write_field(out, b"Upgrade", v);
            }
        }
        match (client_keep_alive, client_11, upgrade_required) {
            (false, _, false) => out.put(b"Connection: close\r\n"),
            (false, _, true) => out.put(b"Connection: close, upgrade\r\n"),
            (true, false, false) => out.put(b"Connection: keep-alive\r\n"),
            (true, false, true) => out.put(b"Connection: keep-alive, upgrade\r\n"),
            (true, true, false) => {}
            (true, true, true) => out.put(b"Connection: upgrade\r\n"),
        }
    }
    out.put(b"\r\n");
    Ok(Some(head))
}

#[cfg(test)]
mod tests;
