//! Tests of the origin server over real loopback sockets.

use super::*;

use std::net::SocketAddr;

/// An origin that echoes chunked bodies too (most tests exercise the echo).
fn start(name: &str) -> SocketAddr {
    start_with(
        name,
        Behaviour {
            chunked_echo: true,
            ..Behaviour::default()
        },
    )
}

/// A parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    chunked: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A minimal HTTP/1.1 client over one connection.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more bytes into `buf`; false at EOF.
    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        let n = self.stream.read(&mut tmp).unwrap();
        self.buf.extend_from_slice(&tmp[..n]);
        n > 0
    }

    /// Reads one response; `head_request` when it answers a HEAD.
    fn read(&mut self, head_request: bool) -> Response {
        let (status, headers, n) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = resp.parse(&self.buf).unwrap() {
                let headers = resp
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), h.value.to_vec()))
                    .collect();
                break (resp.code.unwrap(), headers, n);
            }
            assert!(self.fill(), "EOF in response head");
        };
        self.buf.drain(..n);
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if head_request || status == 204 || status == 304 || status < 200 {
            return r;
        }
        if r.header("transfer-encoding").is_some() {
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert!(r.header("content-length").is_none());
            r.chunked = true;
            let mut dec = ChunkedDecoder::new();
            loop {
                let step = dec.step(&self.buf).unwrap();
                if let Some(range) = step.data.clone() {
                    r.body.extend_from_slice(&self.buf[range]);
                }
                self.buf.drain(..step.consumed);
                if step.done {
                    break;
                }
                if self.buf.is_empty() {
                    assert!(self.fill(), "EOF in chunked body");
                }
            }
        } else {
            let len: usize = r
                .header("content-length")
                .expect("no framing")
                .parse()
                .unwrap();
            while self.buf.len() < len {
                assert!(self.fill(), "EOF in body");
            }
            r.body = self.buf.drain(..len).collect();
        }
        r
    }

    fn request(&mut self, req: &[u8]) -> Response {
        self.send(req);
        self.read(req.starts_with(b"HEAD "))
    }

    /// Asserts that the server has closed the connection and sent nothing
    /// more.
    fn assert_closed(&mut self) {
        assert!(self.buf.is_empty(), "unexpected bytes: {:?}", self.buf);
        let mut tmp = [0u8; 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {}
            Ok(n) => panic!("unexpected bytes: {:?}", &tmp[..n]),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        }
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn keep_alive_sequential_requests() {
    let addr = start("b1");
    let mut c = Client::connect(addr);

    let r = c.request(&get("/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello from b1\n");
    assert_eq!(r.header("x-backend"), Some("b1"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(!r.closes());

    let r = c.request(&get("/health"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
    assert_eq!(r.header("content-length"), Some("3"));

    let r = c.request(&get("/status/503"));
    assert_eq!(r.status, 503);
    assert_eq!(r.body, b"");
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("x-backend"), Some("b1"));

    let r = c.request(&get("/sleep?ms=20"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"slept 20 ms\n");

    let r = c.request(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.closes());
    c.assert_closed();
}

#[test]
fn pipelined_requests_answered_in_order() {
    let addr = start("p");
    let mut c = Client::connect(addr);
    let mut reqs = Vec::new();
    reqs.extend_from_slice(&get("/health"));
    reqs.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    reqs.extend_from_slice(&get("/status/201"));
    reqs.extend_from_slice(
        b"POST /nope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n",
    );
    reqs.extend_from_slice(&get("/"));
    c.send(&reqs);
    assert_eq!(c.read(false).body, b"ok\n");
    assert_eq!(c.read(false).body, b"abc");
    assert_eq!(c.read(false).status, 201);
    assert_eq!(c.read(false).status, 404);
    assert_eq!(c.read(false).body, b"Hello from p\n");
}

#[test]
fn echo_content_length() {
    let addr = start("e");
    let mut c = Client::connect(addr);
    let r = c.request(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"a\":\"\r\n\x00\xff\"}",
    );
    assert_eq!(r.status, 200);
    assert!(!r.chunked);
    assert_eq!(r.body, b"{\"a\":\"\r\n\x00\xff\"}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-length"), Some("12"));

    // Default content type, empty body.
    let r = c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"");
    assert_eq!(r.header("content-type"), Some("text/plain"));

    // Still in sync.
    assert_eq!(c.request(&get("/health")).body, b"ok\n");
}

#[test]
fn echo_chunked() {
    let addr = start("e");
    let mut c = Client::connect(addr);
    let r = c.request(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: x/y\r\n\r\n\
          5;ext=\"v\"\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer-A: 1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert_eq!(r.body, b"hello world");
    assert_eq!(r.header("content-type"), Some("x/y"));

    // Empty chunked body.
    let r =
        c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert_eq!(r.body, b"");

    assert_eq!(c.request(&get("/health")).body, b"ok\n");
}

#[test]
fn echo_large_bodies_stream() {
    const N: usize = 8 << 20;
    let addr = start("big");
    for chunked in [false, true] {
        let mut c = Client::connect(addr);
        let mut writer = c.stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let body = pattern(N);
            if chunked {
                writer
                    .write_all(
                        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
                    )
                    .unwrap();
                let mut hdr = [0u8; MAX_CHUNK_HEADER_LEN];
                for piece in body.chunks(100_000) {
                    let n = write_chunk_header(piece.len(), &mut hdr);
                    writer.write_all(&hdr[..n]).unwrap();
                    writer.write_all(piece).unwrap();
                    writer.write_all(b"\r\n").unwrap();
                }
                writer.write_all(LAST_CHUNK).unwrap();
            } else {
                write!(
                    writer,
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {N}\r\n\r\n"
                )
                .unwrap();
                writer.write_all(&body).unwrap();
            }
        });
        let r = c.read(false);
        sender.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.chunked, chunked);
        assert_eq!(r.body.len(), N);
        assert!(r.body == pattern(N));
        assert_eq!(c.request(&get("/health")).body, b"ok\n");
    }
}

#[test]
fn echo_expect_continue() {
    let addr = start("e");
    let mut c = Client::connect(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.status, 100);
    c.send(b"hi");
    let r = c.read(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hi");
}

#[test]
fn post_without_length_gets_411() {
    let addr = start("e");
    let mut c = Client::connect(addr);
    let r = c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 411);
    assert_eq!(r.body, b"");
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("x-backend"), Some("e"));
    assert_eq!(c.request(&get("/health")).status, 200);
}

#[test]
fn by_default_a_chunked_echo_gets_411_and_the_connection_goes_on() {
    // As the upstream ekilibri command server: POST needs Content-Length.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    spawn(listener, "strict".to_owned()).unwrap();
    let mut c = Client::connect(addr);
    let r = c.request(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 411);
    assert_eq!(r.body, b"");
    assert!(!r.closes());
    // The chunked body was consumed: the next request is read in sync.
    let r = c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hi");
}

#[test]
fn head_has_headers_but_no_body() {
    let addr = start("h");
    let mut c = Client::connect(addr);
    let r = c.request(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("x-backend"), Some("h"));
    let r = c.request(b"HEAD /bytes/1000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.header("content-length"), Some("1000000"));
    let r = c.request(b"HEAD /bytes/10?chunked=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let r = c.request(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-length"), Some("0"));
    // Had any body been sent, this would read it instead of the response.
    let r = c.request(&get("/health"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
}

#[test]
fn not_found_is_empty_and_keeps_the_connection() {
    let addr = start("n");
    let mut c = Client::connect(addr);
    let r = c.request(&get("/nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"");
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("x-backend"), Some("n"));
    assert!(!r.closes());
    // A discarded body keeps the connection in sync.
    let r = c.request(b"POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nHELLO");
    assert_eq!(r.status, 404);
    assert_eq!(c.request(&get("/health")).body, b"ok\n");
}

#[test]
fn wrong_method_gets_405() {
    let addr = start("m");
    let mut c = Client::connect(addr);
    let r = c.request(b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxx");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(r.body, b"");
    let r = c.request(&get("/echo"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = c.request(b"DELETE /status/200 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(c.request(&get("/health")).status, 200);
}

#[test]
fn bytes_content_length_and_chunked() {
    let addr = start("b");
    let mut c = Client::connect(addr);
    for n in [0usize, 1, 26, 16384, 16385, 200_000] {
        let r = c.request(&get(&format!("/bytes/{n}")));
        assert_eq!(r.status, 200);
        assert!(!r.chunked);
        assert_eq!(r.body, pattern(n));

        let r = c.request(&get(&format!("/bytes/{n}?chunked=1")));
        assert_eq!(r.status, 200);
        assert!(r.chunked);
        assert_eq!(r.body, pattern(n));
    }
    let r = c.request(&get("/bytes/abc"));
    assert_eq!(r.status, 400);
    assert_eq!(c.request(&get("/health")).status, 200);
}

#[test]
fn bytes_chunked_uses_16k_chunks() {
    let addr = start("b");
    let mut c = Client::connect(addr);
    c.send(&get("/bytes/40000?chunked=1"));
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n0\r\n\r\n") {
        let mut tmp = [0u8; 65536];
        let n = c.stream.read(&mut tmp).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&tmp[..n]);
    }
    let text = String::from_utf8(raw).unwrap();
    let body_at = text.find("\r\n\r\n").unwrap() + 4;
    let body = &text[body_at..];
    assert!(body.starts_with("4000\r\nabc"));
    assert!(body.contains("\r\n4000\r\n"));
    assert!(body.contains("\r\n1c40\r\n"));
}

#[test]
fn status_codes() {
    let addr = start("s");
    let mut c = Client::connect(addr);
    for s in [200u16, 302, 404, 500, 502, 599] {
        let r = c.request(&get(&format!("/status/{s}")));
        assert_eq!(r.status, s);
        assert_eq!(r.header("content-length"), Some("0"));
    }
    for s in [204u16, 304] {
        let r = c.request(&get(&format!("/status/{s}")));
        assert_eq!(r.status, s);
        assert_eq!(r.header("content-length"), None);
    }
    for bad in ["100", "101", "199", "99", "600", "abc", "", "-1", "+200"] {
        let r = c.request(&get(&format!("/status/{bad}")));
        assert_eq!(r.status, 400, "/status/{bad}");
    }
    assert_eq!(c.request(&get("/health")).status, 200);
}

#[test]
fn sleep_route() {
    let addr = start("z");
    let mut c = Client::connect(addr);
    let t = Instant::now();
    let r = c.request(&get("/sleep?ms=50"));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(r.body, b"slept 50 ms\n");
    let r = c.request(&get("/sleep?ms=x"));
    assert_eq!(r.status, 400);
    let t = Instant::now();
    let r = c.request(&get("/sleep"));
    assert!(t.elapsed() >= Duration::from_millis(2000));
    assert_eq!(r.body, b"slept 2000 ms\n");
}

#[test]
fn http10_connections() {
    let addr = start("o");
    let mut c = Client::connect(addr);
    let r = c.request(b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.closes());
    c.assert_closed();

    let mut c = Client::connect(addr);
    let r = c.request(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // No chunked responses to HTTP/1.0.
    let r = c.request(b"GET /bytes/30?chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(!r.chunked);
    assert_eq!(r.body, pattern(30));
    let r = c.request(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(r.closes());
    c.assert_closed();
}

/// Sends `req` on a fresh connection; expects `status` and a close.
fn expect_error(addr: SocketAddr, req: &[u8], status: u16) {
    let mut c = Client::connect(addr);
    c.send(req);
    let r = c.read(false);
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(req));
    assert!(r.closes());
    assert_eq!(r.header("x-backend"), Some("x"));
    c.assert_closed();
}

#[test]
fn malformed_requests_get_400_and_close() {
    let addr = start("x");
    for req in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\nHost: t\n\n",
        b"GET / HTTP/1.1\r\nHost: t\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 1\r\n\r\nx",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // Invalid chunked bodies, on echo and on a discarding route.
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        b"POST /nope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"POST /nope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n",
    ] {
        expect_error(addr, req, 400);
    }
    expect_error(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
    expect_error(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nExpect: something\r\n\r\n",
        417,
    );
}

#[test]
fn oversized_heads_get_431() {
    let addr = start("x");
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big.resize(BUF_SIZE + 10, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    expect_error(addr, &big, 431);

    let mut many = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    expect_error(addr, &many, 431);
}

#[test]
fn invalid_names_are_rejected() {
    for name in ["a\r\nb", " a", "a\t", "\x7f"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = spawn(listener, name.to_owned()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn byte_at_a_time_request() {
    let addr = start("slow");
    let mut c = Client::connect(addr);
    c.stream.set_nodelay(true).unwrap();
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for b in req.chunks(1) {
        c.send(b);
    }
    let r = c.read(false);
    assert_eq!(r.body, b"abc");
}

#[test]
fn chunked_echo_is_interactive() {
    let addr = start("i");
    let mut c = Client::connect(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    // The first chunk comes back before the request body is complete.
    while !c.buf.ends_with(b"3\r\nabc\r\n") {
        assert!(c.fill());
    }
    c.send(b"2\r\nde\r\n0\r\n\r\n");
    let text = loop {
        let text = String::from_utf8(c.buf.clone()).unwrap();
        if text.ends_with("\r\n0\r\n\r\n") {
            break text;
        }
        assert!(c.fill());
    };
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n"));
    assert!(text.ends_with("\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
}

fn start_with(name: &str, behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    spawn_with(listener, name.to_owned(), behaviour).unwrap();
    addr
}

#[test]
fn default_behaviour_does_not_degrade() {
    let b = Behaviour::default();
    assert_eq!(b.delay, Duration::ZERO);
    assert_eq!(b.error_rate, 0.0);
    assert_eq!(b.seed, 1);
    assert!(!b.chunked_echo);
}

#[test]
fn delay_applies_to_everything_but_health() {
    let delay = Duration::from_millis(150);
    let addr = start_with(
        "slow",
        Behaviour {
            delay,
            ..Behaviour::default()
        },
    );
    let mut c = Client::connect(addr);

    let t = Instant::now();
    let r = c.request(&get("/"));
    assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"Hello from slow\n");

    let t = Instant::now();
    let r = c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    assert!(t.elapsed() >= delay);
    assert_eq!(r.body, b"hi");

    let t = Instant::now();
    let r = c.request(&get("/health"));
    assert!(t.elapsed() < delay, "{:?}", t.elapsed());
    assert_eq!(r.body, b"ok\n");
}

/// Statuses of `n` sequential `GET /` on one connection.
fn statuses(addr: SocketAddr, n: usize) -> Vec<u16> {
    let mut c = Client::connect(addr);
    (0..n).map(|_| c.request(&get("/")).status).collect()
}

#[test]
fn error_rate_fails_a_deterministic_fraction() {
    let flaky = Behaviour {
        error_rate: 0.25,
        seed: 7,
        ..Behaviour::default()
    };
    let a = statuses(start_with("f", flaky), 2000);
    assert!(a.iter().all(|&s| s == 200 || s == 503));
    let failed = a.iter().filter(|&&s| s == 503).count();
    assert!((400..=600).contains(&failed), "{failed} of 2000 failed");

    // The same seed fails the same requests; another seed does not.
    assert_eq!(statuses(start_with("f", flaky), 2000), a);
    let other = Behaviour { seed: 8, ..flaky };
    assert_ne!(statuses(start_with("f", other), 2000), a);

    // Seed 0 (a fixed point of xorshift) still fails some, not all.
    let zero = Behaviour { seed: 0, ..flaky };
    let z = statuses(start_with("f", zero), 200);
    assert!(z.contains(&503) && z.contains(&200));
}

#[test]
fn error_rate_extremes_and_health() {
    let never = statuses(
        start_with(
            "ok",
            Behaviour {
                error_rate: 0.0,
                ..Behaviour::default()
            },
        ),
        200,
    );
    assert!(never.iter().all(|&s| s == 200));

    let addr = start_with(
        "down",
        Behaviour {
            error_rate: 1.0,
            ..Behaviour::default()
        },
    );
    let mut c = Client::connect(addr);
    for _ in 0..20 {
        let r = c.request(&get("/"));
        assert_eq!(r.status, 503);
        assert_eq!(r.body, b"");
        assert_eq!(r.header("content-length"), Some("0"));
        assert_eq!(r.header("x-backend"), Some("down"));
        assert!(!r.closes());

        let r = c.request(&get("/health"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok\n");
    }
    // A failed request's body is read, so the connection stays in sync.
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    c.send(&get("/health"));
    assert_eq!(c.read(false).status, 503);
    assert_eq!(c.read(false).status, 503);
    let r = c.read(false);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));
    let r = c.request(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 503);
    assert_eq!(r.body, b"");
}

#[test]
fn invalid_error_rates_are_rejected() {
    for rate in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = Behaviour {
            error_rate: rate,
            ..Behaviour::default()
        };
        let err = spawn_with(listener, "x".to_owned(), b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{rate}");
    }
}
