//! The origin server used as the backend in tests, demos and benchmarks.
//!
//! A small, strict HTTP/1.1 server on blocking `std::net` sockets, one
//! thread per connection. It is a test tool, not part of the proxy: it
//! favours simplicity and predictable behaviour over throughput.
//!
//! Protocol behaviour:
//!
//! - Connections are persistent by default for HTTP/1.1 and closed after
//!   each response for HTTP/1.0 unless the request has
//!   `Connection: keep-alive`; `Connection: close` is honoured. Pipelined
//!   requests are answered in order.
//! - Request heads are parsed with `httparse` (at most 64 KiB and 100 fields,
//!   else 431); bare LF line endings, a missing or repeated `Host` in
//!   HTTP/1.1, invalid or conflicting `Content-Length`, `Transfer-Encoding`
//!   together with `Content-Length`, or in HTTP/1.0, or whose final coding is
//!   not `chunked`, all get 400 and the connection is closed. Other transfer
//!   codings before `chunked` get 501; an `Expect` other than `100-continue`
//!   gets 417. `Expect: 100-continue` is answered with `100 Continue`
//!   before the body is read.
//! - Request bodies are framed by `Content-Length` or chunked coding
//!   ([`ChunkedDecoder`]); an invalid chunked body gets 400 and a close.
//!   Bodies of routes that do not use them are read and discarded, so the
//!   connection stays in sync.
//! - Every response has `X-Backend: <name>`, and `Content-Length` or
//!   chunked framing (except 204 and 304, which have neither), and
//!   `Connection: close` when the server closes afterwards. HEAD gets the
//!   same head as GET and no body.
//!
//! Routes:
//!
//! | request                  | response                                             |
//! |--------------------------|------------------------------------------------------|
//! | `GET /`                  | 200, `Hello from <name>\n`                           |
//! | `GET /health`            | 200, `ok\n`                                          |
//! | `POST /echo`             | 200, the request body and `Content-Type` with `Content-Length`; 411 without `Content-Length` (a chunked body is read and dropped first), unless [`Behaviour::chunked_echo`] (`--chunked-echo`): then chunked in, chunked out |
//! | `GET /sleep?ms=N`        | sleeps N ms (default 2000), then 200, `slept N ms\n` |
//! | `GET /status/N`          | status N (200..=599; 1xx and others get 400), empty body |
//! | `GET /bytes/N`           | N bytes of `abc…z` repeated; `?chunked=1`: chunked in 16 KiB chunks (HTTP/1.1 only) |
//! | known path, other method | 405 with `Allow`                                     |
//! | anything else            | 404, empty body                                      |
//!
//! Echo and `/bytes` stream with a fixed 64 KiB buffer, so bodies can be
//! arbitrarily large. Echo writes while it reads: a client sending a large
//! body must read the response concurrently or both sides stall.
//!
//! A [`Behaviour`] (see [`spawn_with`]) can degrade the server for
//! benchmarks: every request whose path is not `/health` is delayed by
//! `delay` before it is answered, and a deterministic pseudo-random
//! fraction `error_rate` of them is answered with `503` and an empty body
//! instead of its route (the request body is still read, so the connection
//! stays in sync). `/health` is never delayed or failed, so active health
//! checks keep passing.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::chunked::{
    ChunkedDecoder, ChunkedError, LAST_CHUNK, MAX_CHUNK_HEADER_LEN, write_chunk_header,
};

/// Size of the per-connection read buffer and of the write buffer; also the
/// maximum size of a request head.
const BUF_SIZE: usize = 64 * 1024;
/// Maximum number of header fields in a request head.
const MAX_HEADERS: usize = 100;
/// Chunk size of `/bytes/N?chunked=1` responses.
const BYTES_CHUNK: usize = 16 * 1024;
/// Sleep of `/sleep` without `ms`.
const DEFAULT_SLEEP_MS: u64 = 2000;
/// How long a closing connection is drained before it is dropped.
const LINGER: Duration = Duration::from_secs(1);
/// How much a closing connection drains at most.
const LINGER_BYTES: usize = 1 << 20;

/// The `/bytes` pattern: `a..=z` repeated, long enough that any window of
/// `BUF_SIZE` bytes starting at offset `0..26` is available.
const PATTERN_LEN: usize = BUF_SIZE + 26;
static PATTERN: [u8; PATTERN_LEN] = build_pattern();

const fn build_pattern() -> [u8; PATTERN_LEN] {
    let mut p = [0u8; PATTERN_LEN];
    let mut i = 0;
    while i < PATTERN_LEN {
        p[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    p
}

/// How a server degrades its answers; [`Behaviour::default`] does not.
///
/// Applies to every request except those for `/health`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    /// Sleep before answering each request.
    pub delay: Duration,
    /// Fraction of requests, `0.0..=1.0`, answered with `503` and an empty
    /// body.
    pub error_rate: f64,
    /// Seed of the xorshift generator that picks the failed requests; the
    /// same seed fails the same positions in the sequence of requests the
    /// server receives (counted over all connections).
    pub seed: u64,
    /// Echo chunked request bodies. Off, `POST /echo` requires
    /// `Content-Length` and answers `411` to a chunked body, as the upstream
    /// ekilibri command server does.
    pub chunked_echo: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            delay: Duration::ZERO,
            error_rate: 0.0,
            seed: 1,
            chunked_echo: false,
        }
    }
}

impl Behaviour {
    fn check(&self) -> io::Result<()> {
        if (0.0..=1.0).contains(&self.error_rate) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid error rate {}: must be within 0.0..=1.0",
                    self.error_rate
                ),
            ))
        }
    }
}

/// Everything connection threads share: the name, the behaviour and the
/// state of the error generator.
#[derive(Debug)]
struct Origin {
    name: Arc<str>,
    delay: Duration,
    error_rate: f64,
    chunked_echo: bool,
    /// xorshift64 state, never 0.
    rng: AtomicU64,
}

impl Origin {
    fn new(name: String, behaviour: Behaviour) -> io::Result<Arc<Origin>> {
        let name = checked_name(name)?;
        behaviour.check()?;
        Ok(Arc::new(Origin {
            name,
            delay: behaviour.delay,
            error_rate: behaviour.error_rate,
            chunked_echo: behaviour.chunked_echo,
            // xorshift has the fixed point 0: avoid it.
            rng: AtomicU64::new(if behaviour.seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                behaviour.seed
            }),
        }))
    }

    /// Whether the next request is answered with 503.
    fn fail_next(&self) -> bool {
        if self.error_rate <= 0.0 {
            return false;
        }
        let prev = self
            .rng
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| {
                Some(xorshift64(x))
            })
            .unwrap_or_else(|x| x);
        let x = xorshift64(prev);
        // 53 random bits -> [0, 1).
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        u < self.error_rate
    }
}

/// One step of Marsaglia's xorshift64 (13, 7, 17).
fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Starts serving `listener` in the background and returns the handle of the
/// accept thread (which runs until the process exits). Each connection gets
/// its own thread. Every response carries `X-Backend: <name>`.
///
/// Fails, without spawning anything, if `name` cannot be a header value
/// (control characters, or leading/trailing whitespace), or if the thread
/// cannot be spawned.
pub fn spawn(listener: TcpListener, name: String) -> io::Result<JoinHandle<()>> {
    spawn_with(listener, name, Behaviour::default())
}

/// [`spawn`], degraded as `behaviour` says. Also fails if
/// `behaviour.error_rate` is not within `0.0..=1.0`.
pub fn spawn_with(
    listener: TcpListener,
    name: String,
    behaviour: Behaviour,
) -> io::Result<JoinHandle<()>> {
    let origin = Origin::new(name, behaviour)?;
    thread::Builder::new()
        .name("origin-accept".into())
        .spawn(move || accept_loop(listener, origin))
}

/// Serves `listener` on the calling thread, one thread per connection; does
/// not return unless `name` is invalid (see [`spawn`]).
pub fn serve(listener: TcpListener, name: String) -> io::Result<()> {
    serve_with(listener, name, Behaviour::default())
}

/// [`serve`], degraded as `behaviour` says (see [`spawn_with`]).
pub fn serve_with(listener: TcpListener, name: String, behaviour: Behaviour) -> io::Result<()> {
    let origin = Origin::new(name, behaviour)?;
    accept_loop(listener, origin);
    Ok(())
}

fn checked_name(name: String) -> io::Result<Arc<str>> {
    let bytes = name.as_bytes();
    let valid_byte = |b: &u8| matches!(*b, b'\t' | b' '..=0x7E | 0x80..=0xFF);
    let trimmed = bytes.first().is_none_or(|b| !b.is_ascii_whitespace())
        && bytes.last().is_none_or(|b| !b.is_ascii_whitespace());
    if bytes.iter().all(valid_byte) && trimmed {
        Ok(name.into())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid backend name {name:?}: not a valid header value"),
        ))
    }
}

fn accept_loop(listener: TcpListener, origin: Arc<Origin>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let origin = Arc::clone(&origin);
                let spawned = thread::Builder::new()
                    .name("origin-conn".into())
                    .spawn(move || handle_connection(stream, &origin));
                if let Err(e) = spawned {
                    log::warn!("origin: cannot spawn connection thread: {e}");
                }
            }
            Err(e) => {
                log::warn!("origin: accept failed: {e}");
                // Avoid spinning on persistent errors such as EMFILE.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// How a connection ends.
enum End {
    /// The client closed between requests.
    Eof,
    /// We answered with `Connection: close`: drain, then close.
    Close,
    /// I/O error or a response that could not be completed: drop now.
    Abort,
}

fn handle_connection(stream: TcpStream, origin: &Origin) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let end = {
        let mut conn = Conn {
            reader: Reader {
                stream: &stream,
                buf: vec![0; BUF_SIZE].into_boxed_slice(),
                start: 0,
                end: 0,
            },
            out: BufWriter::with_capacity(BUF_SIZE, &stream),
            name: &origin.name,
            origin,
        };
        let end = conn.run();
        if !matches!(end, End::Abort) && conn.out.flush().is_err() {
            End::Abort
        } else {
            end
        }
    };
    log::debug!("origin: connection from {peer:?} ends");
    if let End::Close = end {
        linger_close(&stream);
    }
}

/// Half-closes and drains what the client still sends (bounded), so that
/// unread request bytes do not turn our close into a reset that could
/// destroy the response in flight.
fn linger_close(stream: &TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut total = 0;
    let mut s = stream;
    while total < LINGER_BYTES && Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// The read side: a fixed buffer over the socket.
struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl Reader<'_> {
    /// Reads more bytes after the unconsumed ones. Returns 0 at EOF, or if
    /// the buffer is full of unconsumed bytes.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Ok(0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No `Content-Length` or `Transfer-Encoding`: no body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The parts of a request head the server uses.
struct Head {
    method: String,
    path: String,
    query: String,
    http10: bool,
    keep_alive: bool,
    framing: Framing,
    content_type: Option<Vec<u8>>,
    expect_continue: bool,
}

impl Head {
    fn has_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::Length(0))
    }
}

/// Why a request body could not be read.
enum BodyError {
    /// Socket error.
    Io,
    /// The client closed before the end of the body.
    Eof,
    /// Invalid chunked coding.
    Bad(ChunkedError),
}

impl From<io::Error> for BodyError {
    fn from(_: io::Error) -> Self {
        BodyError::Io
    }
}

/// How a response body is framed.
enum Resp {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither (204, 304).
    NoBody,
}

/// Reads the body framed by `framing` from `reader`, passing each piece of
/// data to `sink` as `Some(data)`. Before blocking on the socket it calls
/// `sink(None)`, so a streaming sink can flush what it has written.
/// Returns once the body is complete.
fn read_body(
    reader: &mut Reader<'_>,
    framing: Framing,
    mut sink: impl FnMut(Option<&[u8]>) -> io::Result<()>,
) -> Result<(), BodyError> {
    /// Makes sure some input is buffered, flushing the sink before blocking.
    fn need_input(
        reader: &mut Reader<'_>,
        sink: &mut impl FnMut(Option<&[u8]>) -> io::Result<()>,
    ) -> Result<(), BodyError> {
        if reader.start == reader.end {
            sink(None)?;
            if reader.fill()? == 0 {
                return Err(BodyError::Eof);
            }
        }
        Ok(())
    }
    match framing {
        Framing::None => Ok(()),
        Framing::Length(mut left) => {
            while left > 0 {
                need_input(reader, &mut sink)?;
                let avail = &reader.buf[reader.start..reader.end];
                let n = left.min(avail.len() as u64) as usize;
                sink(Some(&avail[..n]))?;
                reader.start += n;
                left -= n as u64;
            }
            Ok(())
        }
        Framing::Chunked => {
            let mut dec = ChunkedDecoder::new();
            loop {
                need_input(reader, &mut sink)?;
                let avail = &reader.buf[reader.start..reader.end];
                let step = dec.step(avail).map_err(BodyError::Bad)?;
                if let Some(r) = step.data {
                    sink(Some(&avail[r]))?;
                }
                reader.start += step.consumed;
                if step.done {
                    return Ok(());
                }
            }
        }
    }
}

/// A request head that could not be accepted.
enum HeadError {
    /// Socket error or EOF inside a head.
    Io,
    /// Answer with this status and close.
    Status(u16),
}

/// Requests routed by path.
enum Route<'a> {
    Root,
    Health,
    Echo,
    Sleep,
    Status(&'a str),
    Bytes(&'a str),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/" => Route::Root,
        "/health" => Route::Health,
        "/echo" => Route::Echo,
        "/sleep" => Route::Sleep,
        _ => {
            if let Some(rest) = path.strip_prefix("/status/") {
                Route::Status(rest)
            } else if let Some(rest) = path.strip_prefix("/bytes/") {
                Route::Bytes(rest)
            } else {
                Route::NotFound
            }
        }
    }
}

/// Parses 1*DIGIT into a `u64`, rejecting signs, spaces and overflow.
fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The value of `key` in a `k=v&k=v` query; `Some("")` for a bare `key`.
fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let Some(start) = start else { return &[] };
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(start);
    &v[start..=end]
}

/// Splits a comma-separated list field value into its non-empty elements.
fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Turns a parsed request head into a [`Head`], applying the framing rules.
fn analyze(req: &httparse::Request<'_, '_>) -> Result<Head, u16> {
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    let http10 = req.version == Some(0);

    let mut content_length: Option<u64> = None;
    let mut te_seen = false;
    let mut codings = 0usize;
    let mut last_coding_chunked = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut hosts = 0usize;
    let mut content_type = None;
    let mut expect_continue = false;

    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_digits(h.value).ok_or(400u16)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(400);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            for coding in list_elements(h.value) {
                codings += 1;
                last_coding_chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for opt in list_elements(h.value) {
                if opt.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("content-type") {
            if content_type.is_none() {
                content_type = Some(h.value.to_vec());
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if trim_ows(h.value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(417);
            }
        }
    }

    if hosts > 1 || (!http10 && hosts == 0) {
        return Err(400);
    }
    let framing = if te_seen {
        if http10 || content_length.is_some() || !last_coding_chunked {
            return Err(400);
        }
        if codings > 1 {
            return Err(501);
        }
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::None
    };
    let keep_alive = if http10 {
        conn_keep_alive && !conn_close
    } else {
        !conn_close
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        http10,
        keep_alive,
        framing,
        content_type,
        expect_continue: expect_continue && !http10,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// One connection: its reader, buffered writer, backend name and the
/// server it belongs to.
struct Conn<'a> {
    reader: Reader<'a>,
    out: BufWriter<&'a TcpStream>,
    name: &'a str,
    origin: &'a Origin,
}

impl Conn<'_> {
    fn run(&mut self) -> End {
        loop {
            let head = match self.read_head() {
                Ok(Some(head)) => head,
                Ok(None) => return End::Eof,
                Err(HeadError::Io) => return End::Abort,
                Err(HeadError::Status(status)) => {
                    return match self.simple(status, false, true, false, &[], b"") {
                        Ok(()) => End::Close,
                        Err(_) => End::Abort,
                    };
                }
            };
            log::debug!(
                "origin: {} {}{}{}",
                head.method,
                head.path,
                if head.query.is_empty() { "" } else { "?" },
                head.query
            );
            match self.handle(&head) {
                Ok(true) => {}
                Ok(false) => return End::Close,
                Err(_) => return End::Abort,
            }
        }
    }

    /// Reads and parses the next request head. `Ok(None)` on a clean EOF
    /// before any byte of it.
    fn read_head(&mut self) -> Result<Option<Head>, HeadError> {
        loop {
            let r = &mut self.reader;
            if r.start < r.end {
                let data = &r.buf[r.start..r.end];
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(data) {
                    Ok(httparse::Status::Complete(n)) => {
                        if has_bare_lf(&data[..n]) {
                            return Err(HeadError::Status(400));
                        }
                        let head = analyze(&req).map_err(HeadError::Status)?;
                        r.start += n;
                        return Ok(Some(head));
                    }
                    Ok(httparse::Status::Partial) => {
                        if data.len() >= BUF_SIZE {
                            return Err(HeadError::Status(431));
                        }
                    }
                    Err(httparse::Error::TooManyHeaders) => return Err(HeadError::Status(431)),
                    Err(_) => return Err(HeadError::Status(400)),
                }
            }
            match r.fill() {
                Ok(0) if r.start == r.end => return Ok(None),
                Ok(0) | Err(_) => return Err(HeadError::Io),
                Ok(_) => {}
            }
        }
    }

    /// Answers one request. `Ok(true)` to keep the connection open.
    fn handle(&mut self, head: &Head) -> io::Result<bool> {
        let is_head = head.method == "HEAD";
        let get_like = head.method == "GET" || is_head;
        let route = route(&head.path);

        // Degradation (benchmarks): everything but /health is delayed, and
        // a fraction fails with 503.
        let degraded = !matches!(route, Route::Health);
        let fail = degraded && self.origin.fail_next();
        if degraded && !self.origin.delay.is_zero() {
            thread::sleep(self.origin.delay);
        }

        let echo = matches!(route, Route::Echo) && head.method == "POST";
        // Without `chunked_echo`, a chunked echo is refused with 411 (after
        // its body is read, below), as the upstream command server does.
        let length_required = echo && head.framing == Framing::Chunked && !self.origin.chunked_echo;
        if echo && !fail && !length_required {
            return self.echo(head);
        }

        // Every other route ignores the body: discard it first.
        if head.has_body() {
            self.send_continue(head)?;
            match read_body(&mut self.reader, head.framing, |_| Ok(())) {
                Ok(()) => {}
                Err(BodyError::Bad(e)) => {
                    log::debug!("origin: bad chunked body: {e}");
                    self.simple(400, false, true, false, &[], b"")?;
                    return Ok(false);
                }
                Err(BodyError::Io | BodyError::Eof) => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }

        let keep = head.keep_alive;
        let http10 = head.http10;
        let text: &[(&str, &[u8])] = &[("Content-Type", b"text/plain")];
        let get_only: &[(&str, &[u8])] = &[("Allow", b"GET, HEAD")];

        if fail {
            self.simple(503, is_head, !keep, http10, &[], b"")?;
            return Ok(keep);
        }
        if length_required {
            // The chunked body was read and dropped above.
            self.simple(411, false, !keep, http10, &[], b"")?;
            return Ok(keep);
        }
        match route {
            Route::NotFound => self.simple(404, is_head, !keep, http10, &[], b"")?,
            Route::Echo => self.simple(405, is_head, !keep, http10, &[("Allow", b"POST")], b"")?,
            _ if !get_like => self.simple(405, is_head, !keep, http10, get_only, b"")?,
            Route::Root => {
                let body = format!("Hello from {}\n", self.name);
                self.simple(200, is_head, !keep, http10, text, body.as_bytes())?;
            }
            Route::Health => self.simple(200, is_head, !keep, http10, text, b"ok\n")?,
            Route::Sleep => {
                let ms = match query_param(&head.query, "ms") {
                    None => Some(DEFAULT_SLEEP_MS),
                    Some(v) => parse_digits(v.as_bytes()),
                };
                let Some(ms) = ms else {
                    self.simple(400, is_head, !keep, http10, &[], b"")?;
                    return Ok(keep);
                };
                // Let the client see nothing until the sleep is over.
                self.out.flush()?;
                thread::sleep(Duration::from_millis(ms));
                let body = format!("slept {ms} ms\n");
                self.simple(200, is_head, !keep, http10, text, body.as_bytes())?;
            }
            Route::Status(n) => match parse_digits(n.as_bytes()) {
                Some(s @ 200..=599) => {
                    let s = s as u16;
                    if s == 204 || s == 304 {
                        self.write_head(s, !keep, http10, &[], Resp::NoBody)?;
                        self.out.flush()?;
                    } else {
                        self.simple(s, is_head, !keep, http10, &[], b"")?;
                    }
                }
                _ => self.simple(400, is_head, !keep, http10, &[], b"")?,
            },
            Route::Bytes(n) => {
                let Some(n) = parse_digits(n.as_bytes()) else {
                    self.simple(400, is_head, !keep, http10, &[], b"")?;
                    return Ok(keep);
                };
                let chunked =
                    !http10 && matches!(query_param(&head.query, "chunked"), Some("1" | "true"));
                self.bytes(n, chunked, is_head, keep, http10)?;
            }
        }
        Ok(keep)
    }

    /// Sends `100 Continue` if the client asked for it.
    fn send_continue(&mut self, head: &Head) -> io::Result<()> {
        if head.expect_continue {
            self.out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// Writes a response head.
    fn write_head(
        &mut self,
        status: u16,
        close: bool,
        http10: bool,
        extra: &[(&str, &[u8])],
        framing: Resp,
    ) -> io::Result<()> {
        write_head(
            &mut self.out,
            self.name,
            status,
            close,
            http10,
            extra,
            framing,
        )
    }

    /// Writes and flushes a complete response with a `Content-Length` body
    /// (omitted for HEAD).
    fn simple(
        &mut self,
        status: u16,
        is_head: bool,
        close: bool,
        http10: bool,
        extra: &[(&str, &[u8])],
        body: &[u8],
    ) -> io::Result<()> {
        self.write_head(
            status,
            close,
            http10,
            extra,
            Resp::Length(body.len() as u64),
        )?;
        if !is_head {
            self.out.write_all(body)?;
        }
        self.out.flush()
    }

    /// `POST /echo`.
    fn echo(&mut self, head: &Head) -> io::Result<bool> {
        let keep = head.keep_alive;
        let http10 = head.http10;
        if head.framing == Framing::None {
            self.simple(411, false, !keep, http10, &[], b"")?;
            return Ok(keep);
        }
        let ct: &[u8] = head.content_type.as_deref().unwrap_or(b"text/plain");
        let extra: &[(&str, &[u8])] = &[("Content-Type", ct)];
        self.send_continue(head)?;

        if let Framing::Length(n) = head.framing {
            self.write_head(200, !keep, http10, extra, Resp::Length(n))?;
            let out = &mut self.out;
            return match read_body(&mut self.reader, head.framing, |d| match d {
                Some(d) => out.write_all(d),
                None => out.flush(),
            }) {
                Ok(()) => {
                    self.out.flush()?;
                    Ok(keep)
                }
                Err(_) => Err(io::ErrorKind::UnexpectedEof.into()),
            };
        }

        // Chunked: the head is written with the first data, so that a body
        // that is invalid from the start still gets a clean 400.
        let mut started = false;
        let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
        let result = read_body(&mut self.reader, Framing::Chunked, |d| {
            let Some(d) = d else {
                // About to wait for the client: send what we have.
                return self.out.flush();
            };
            if !started {
                started = true;
                write_head(
                    &mut self.out,
                    self.name,
                    200,
                    !keep,
                    http10,
                    extra,
                    Resp::Chunked,
                )?;
            }
            let n = write_chunk_header(d.len(), &mut hdr);
            self.out.write_all(&hdr[..n])?;
            self.out.write_all(d)?;
            self.out.write_all(b"\r\n")
        });
        match result {
            Ok(()) => {
                if !started {
                    write_head(
                        &mut self.out,
                        self.name,
                        200,
                        !keep,
                        http10,
                        extra,
                        Resp::Chunked,
                    )?;
                }
                self.out.write_all(LAST_CHUNK)?;
                self.out.flush()?;
                Ok(keep)
            }
            Err(BodyError::Bad(e)) if !started => {
                log::debug!("origin: bad chunked body: {e}");
                self.simple(400, false, true, http10, &[], b"")?;
                Ok(false)
            }
            Err(_) => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    /// `GET /bytes/N`.
    fn bytes(
        &mut self,
        n: u64,
        chunked: bool,
        is_head: bool,
        keep: bool,
        http10: bool,
    ) -> io::Result<()> {
        let text: &[(&str, &[u8])] = &[("Content-Type", b"application/octet-stream")];
        let framing = if chunked {
            Resp::Chunked
        } else {
            Resp::Length(n)
        };
        self.write_head(200, !keep, http10, text, framing)?;
        if !is_head {
            let piece = if chunked { BYTES_CHUNK } else { BUF_SIZE };
            let mut offset = 0u64;
            let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
            while offset < n {
                let len = (n - offset).min(piece as u64) as usize;
                let at = (offset % 26) as usize;
                let data = &PATTERN[at..at + len];
                if chunked {
                    let h = write_chunk_header(len, &mut hdr);
                    self.out.write_all(&hdr[..h])?;
                    self.out.write_all(data)?;
                    self.out.write_all(b"\r\n")?;
                } else {
                    self.out.write_all(data)?;
                }
                offset += len as u64;
            }
            if chunked {
                self.out.write_all(LAST_CHUNK)?;
            }
        }
        self.out.flush()
    }
}

/// Writes a response head: status line, `X-Backend`, `extra` fields,
/// framing and, when needed, `Connection`.
fn write_head(
    out: &mut BufWriter<&TcpStream>,
    name: &str,
    status: u16,
    close: bool,
    http10: bool,
    extra: &[(&str, &[u8])],
    framing: Resp,
) -> io::Result<()> {
    write!(out, "HTTP/1.1 {status} {}\r\n", reason(status))?;
    write!(out, "X-Backend: {name}\r\n")?;
    for (n, v) in extra {
        out.write_all(n.as_bytes())?;
        out.write_all(b": ")?;
        out.write_all(v)?;
        out.write_all(b"\r\n")?;
    }
    match framing {
        Resp::Length(n) => write!(out, "Content-Length: {n}\r\n")?,
        Resp::Chunked => out.write_all(b"Transfer-Encoding: chunked\r\n")?,
        Resp::NoBody => {}
    }
    if close {
        out.write_all(b"Connection: close\r\n")?;
    } else if http10 {
        out.write_all(b"Connection: keep-alive\r\n")?;
    }
    out.write_all(b"\r\n")
}

/// True if some LF in `head` is not preceded by CR.
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

#[cfg(test)]
mod tests;
