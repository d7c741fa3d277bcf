"""Protocol features: pipelining, Expect: 100-continue, 1xx, Upgrade
tunnels, CONNECT, absolute-form targets, HTTP/1.0 clients."""

from __future__ import annotations

import socket
import threading
import time

from harness import ok_response, serve_default
from rfc9112_support import assert_rejected, backend_requests, connect, read_all, start


def test_pipelined_requests_are_answered_in_order(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    raw = (
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nabcdefg"
        b"HEAD /3 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
        b"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with connect(lb) as c:
        c.send(raw)
        rs = [c.read_response(m) for m in ("GET", "POST", "HEAD", "POST", "GET")]
    assert [r.status for r in rs] == [200] * 5, rs
    assert [r.body for r in rs] == [
        b"origin GET /1 0\n",
        b"origin POST /2 7\n",
        b"",
        b"origin POST /4 3\n",
        b"origin GET /5 0\n",
    ], rs
    reqs = backend_requests(sb)
    assert [(r.method, r.target, r.body) for r in reqs] == [
        ("GET", "/1", b""),
        ("POST", "/2", b"abcdefg"),
        ("HEAD", "/3", b""),
        ("POST", "/4", b"xyz"),
        ("GET", "/5", b""),
    ], reqs


def test_pipelined_request_after_a_bad_one_is_never_forwarded(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(
            b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        r1 = c.read_response()
        r2 = c.read_response()
        assert r1.status == 200 and r1.body == b"origin GET /ok 0\n", r1
        assert r2.status == 400 and r2.has_token("connection", "close"), r2
        assert c.wait_closed(3.0), "connection still open after the 400"
    assert [r.target for r in backend_requests(sb)] == ["/ok"]


def test_request_after_connection_close_is_never_forwarded(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    for first in (
        b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /1 HTTP/1.0\r\n\r\n",
    ):
        with connect(lb) as c:
            c.send(first + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.has_token("connection", "close"), r
            assert c.wait_closed(3.0), "connection not closed after Connection: close"
    assert [r.target for r in backend_requests(sb)] == ["/1", "/1"]


def test_half_closed_client_gets_its_response(scripted_backend_factory, ekilibri_factory):
    """A client that shuts down its sending side right after the request
    (as `nc -N` does) still gets the whole response."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    for req, expected in (
        (b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n", b"origin GET /h 0\n"),
        (b"POST /h HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok", b"origin POST /h 2\n"),
    ):
        with connect(lb) as c:
            c.send(req)
            c.sock.shutdown(socket.SHUT_WR)
            data = read_all(c)
        assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\n" + expected), data


# ------------------------------------------------------------ 100-continue


def continue_script(send_continue: bool):
    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        if send_continue and (req.header("expect") or "").lower() == "100-continue":
            bc.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        bc.read_body(req)
        bc.send(ok_response(b"got " + req.body))
        serve_default(bc)

    return script


def test_expect_100_continue_waits_for_the_backend_100(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, continue_script(True))
    body = b"the request body"
    with connect(lb, timeout=3) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        interim = c.read_response("POST", skip_interim=False)  # would time out in a deadlock
        assert interim.status == 100, interim
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 200 and r.body == b"got " + body, r
    reqs = backend_requests(sb)
    assert len(reqs) == 1 and reqs[0].body == body, reqs
    assert (reqs[0].header("expect") or "").lower() == "100-continue", reqs[0]


def test_expect_100_continue_with_a_silent_backend_does_not_deadlock(scripted_backend_factory, ekilibri_factory):
    """The backend reads the body without sending 100; a client that waits
    a while for a 100 (from the proxy or backend) and then sends the body
    anyway, as curl does, gets its response."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory, continue_script(False))
    body = b"x" * 1000
    with connect(lb, timeout=3) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
        early = c.pending(1.0)
        assert early is not None, "connection closed while waiting for 100"
        assert early == b"" or early.startswith(b"HTTP/1.1 100 "), early
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 200 and r.body == b"got " + body, r


def test_expect_100_continue_refused_by_the_backend(scripted_backend_factory, ekilibri_factory):
    """The backend answers 417 without reading the body. The client gets the
    417 without sending its body; it may then send the body and a next
    request on the same connection, unless the 417 said Connection: close."""

    def script(bc):
        if bc.index == 1:
            req = bc.read_head()
            if req is None:
                return
            bc.send(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        serve_default(bc)

    lb, sb = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb, timeout=3) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response("POST")
        assert r.status == 417, r
        c.send(b"hello" + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            r2 = c.read_response()
        except AssertionError:
            r2 = None
        if r2 is None:
            assert r.has_token("connection", "close"), (
                f"ekilibri closed the connection after a 417 that did not say Connection: close: {r!r}"
            )
        else:
            assert r2.status == 200 and r2.body == b"origin GET /next 0\n", r2
    assert sb.conns[0].raw.count(b"hello") == 0, "the body reached the backend that refused it"


def test_early_response_before_the_whole_body_announces_the_close(scripted_backend_factory, ekilibri_factory):
    """The backend answers 413 after the head, without reading the body and
    without `Connection: close`. The client, still uploading, must be told
    the connection will close (RFC 9112 §9.6), so it stops sending."""

    def script(bc):
        if bc.index == 1:
            if bc.read_head() is None:
                return
            bc.send(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
            bc.wait_closed(3.0)
            return
        serve_default(bc)

    lb, sb = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb, timeout=3) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        r = c.read_response("POST")
        assert r.status == 413, r
        assert r.has_token("connection", "close"), f"the early 413 did not announce the close: {r!r}"


# ------------------------------------------------------------ 1xx


def interim_script(release: threading.Event):
    def script(bc):
        if bc.read_request() is None:
            return
        bc.send(b"HTTP/1.1 102 Processing\r\n\r\n")
        bc.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        release.wait(3.0)
        bc.send(ok_response(b"final"))
        serve_default(bc)

    return script


def test_1xx_responses_are_passed_through_before_the_final_one(scripted_backend_factory, ekilibri_factory):
    release = threading.Event()
    lb, sb = start(scripted_backend_factory, ekilibri_factory, interim_script(release))
    with connect(lb, timeout=3) as c:
        c.send(b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.read_response(skip_interim=False)
        second = c.read_response(skip_interim=False)
        release.set()  # the final response is only sent now
        final = c.read_response()
    assert (first.status, second.status, final.status) == (102, 103, 200), (first, second, final)
    assert second.header("link") == "</style.css>; rel=preload", second
    assert final.body == b"final", final


def test_no_1xx_to_an_http10_client(scripted_backend_factory, ekilibri_factory):
    release = threading.Event()
    release.set()
    lb, sb = start(scripted_backend_factory, ekilibri_factory, interim_script(release))
    with connect(lb, timeout=3) as c:
        c.send(b"GET /hints HTTP/1.0\r\n\r\n")
        data = read_all(c)
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert data.endswith(b"\r\n\r\nfinal"), data


# ------------------------------------------------------------ Upgrade


def websocket_script(bc):
    req = bc.read_request()
    if req is None:
        return
    upgrade = (req.header("upgrade") or "").lower()
    conn = {t.lower() for t in req.list_values("connection")}
    if upgrade != "websocket" or "upgrade" not in conn:
        bc.send(ok_response(b"no upgrade offered", close=True))
        return
    bc.send(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    while True:
        data = bc.recv_some(5.0)
        if not data:
            return
        bc.send(data)


def test_upgrade_to_websocket_becomes_a_byte_tunnel(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, websocket_script)
    with connect(lb, timeout=3) as c:
        c.send(
            b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        r = c.read_response()
        assert r.status == 101, f"no 101 through the proxy: {r!r}; backend saw {sb.raw_by_conn()!r}"
        assert (r.header("upgrade") or "").lower() == "websocket", r
        # Bytes that are not HTTP, and bytes that look like HTTP: both go through untouched.
        for msg in (b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256))):
            c.send(msg)
            got = b""
            deadline = time.monotonic() + 3
            while len(got) < len(msg) and time.monotonic() < deadline:
                piece = c.pending(0.2)
                if piece is None:
                    break
                got += piece
            assert got == msg, f"tunnel echo: sent {msg!r}, got {got!r}"


def upgrade_exchange(scripted_backend_factory, ekilibri_factory, offer: bytes, switch_to: str):
    """Sends a GET whose `offer` lines make an upgrade offer; the backend
    answers 101 switching to `switch_to`. Returns the client's response and
    the Upgrade lines the backend received."""
    seen = []

    def script(bc):
        req = bc.read_request()
        if req is None:
            return
        seen.append(req.header_all("upgrade"))
        bc.send(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {switch_to}\r\nConnection: Upgrade\r\n\r\n".encode())
        bc.recv_some(3.0)

    lb, _ = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb, timeout=3) as c:
        c.send(b"GET /chat HTTP/1.1\r\nHost: x\r\n" + offer + b"\r\n")
        r = c.read_response()
    return r, seen


def test_an_upgrade_offer_over_two_lines_is_one_list(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 §5.3: two Upgrade lines are one list; the backend gets both
    and may switch to any protocol they name."""
    offer = b"Upgrade: foo/2\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    r, seen = upgrade_exchange(scripted_backend_factory, ekilibri_factory, offer, "websocket")
    assert seen == [["foo/2", "websocket"]], seen
    assert r.status == 101 and r.header("upgrade") == "websocket", r


def test_101_to_a_protocol_the_client_did_not_offer_is_a_502(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 §7.8: a server MUST NOT switch to a protocol the client did
    not name in Upgrade. The proxy does not tunnel such a switch."""
    offer = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
    r, _ = upgrade_exchange(scripted_backend_factory, ekilibri_factory, offer, "h2c")
    assert r.status == 502, r


def test_an_upgrade_offer_from_http10_is_ignored(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
    The backend gets HTTP/1.1 and could not tell, so the offer must not
    reach it: the request goes on as an ordinary one (as nginx does), and
    so does a TE: trailers, since an HTTP/1.0 client gets no trailers."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(
            b"GET /ws HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: upgrade, TE\r\nTE: trailers\r\n\r\n"
        )
        r = c.read_response()
    assert r.status == 200, r
    (got,) = backend_requests(sb)
    assert got.header_all("upgrade") == [] and got.header_all("te") == [], got
    assert got.header_all("connection") == [], got


def test_connect_is_refused(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", (405, 501), close=False)


# ------------------------------------------------------------ targets


def test_absolute_form_becomes_origin_form_with_its_host(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(
            b"GET http://example.com:8080/p/q?x=1&y=%2F HTTP/1.1\r\nHost: other.test\r\n\r\n"
            b"GET http://example.org HTTP/1.1\r\nHost: example.org\r\n\r\n"
            b"GET http://example.net/?q HTTP/1.0\r\n\r\n"
        )
        rs = [c.read_response() for _ in range(3)]
    assert [r.status for r in rs] == [200] * 3, rs
    reqs = backend_requests(sb)
    assert [(r.target, r.header_all("host")) for r in reqs] == [
        ("/p/q?x=1&y=%2F", ["example.com:8080"]),
        ("/", ["example.org"]),
        ("/?q", ["example.net"]),
    ], reqs


def test_asterisk_form_and_absolute_options(scripted_backend_factory, ekilibri_factory):
    """`OPTIONS *` passes as is; `OPTIONS http://host` (empty path) becomes
    `OPTIONS *` (RFC 9112 3.2.4)."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nOPTIONS http://example.com:81 HTTP/1.1\r\nHost: x\r\n\r\n")
        rs = [c.read_response() for _ in range(2)]
    assert [r.status for r in rs] == [200, 200], rs
    reqs = backend_requests(sb)
    assert [(r.method, r.target, r.header_all("host")) for r in reqs] == [
        ("OPTIONS", "*", ["x"]),
        ("OPTIONS", "*", ["example.com:81"]),
    ], reqs


# ------------------------------------------------------------ HTTP/1.0


def test_http10_client_never_gets_chunked(scripted_backend_factory, ekilibri_factory):
    def chunked_script(bc):
        while bc.read_request() is not None:
            bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    lb, sb = start(scripted_backend_factory, ekilibri_factory, chunked_script)
    for request in (b"GET /c HTTP/1.0\r\n\r\n", b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\nHost: x\r\n\r\n"):
        with connect(lb, timeout=3) as c:
            c.send(request)
            data = read_all(c)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), data
        assert b"transfer-encoding" not in head.lower(), f"HTTP/1.0 client got a Transfer-Encoding: {data!r}"
        assert body == b"hello world", data
    reqs = backend_requests(sb)
    assert all(r.version == "HTTP/1.1" and len(r.header_all("host")) == 1 for r in reqs), reqs


def test_http10_client_gets_close_delimited_body_as_is(scripted_backend_factory, ekilibri_factory):
    def script(bc):
        if bc.read_request() is None:
            return
        bc.send(b"HTTP/1.1 200 OK\r\n\r\nuntil close")

    lb, sb = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb, timeout=3) as c:
        c.send(b"GET /c HTTP/1.0\r\nHost: x\r\n\r\n")
        data = read_all(c)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower() and body == b"until close", data


def test_trace_and_options_stop_at_max_forwards_zero(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 §7.6.2: an intermediary answers a TRACE or OPTIONS with
    Max-Forwards: 0 itself (TRACE: the request as received, §9.3.8, minus
    credentials) and forwards a larger value decremented."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    trace = b"TRACE /t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nCookie: secret\r\nX-Probe: 1\r\n\r\n"
    with connect(lb) as c:
        c.send(trace)
        r = c.read_response()
        assert r.status == 200 and r.header("Content-Type") == "message/http", r
        assert r.body == b"TRACE /t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nX-Probe: 1\r\n\r\n", r.body
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
        r = c.read_response()
        assert (r.status, r.body) == (200, b""), r
        c.send(b"TRACE /t HTTP/1.1\r\nHost: x\r\nMax-Forwards: 3\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"origin TRACE /t 0\n", r
    (got,) = backend_requests(sb)
    assert got.header_all("max-forwards") == ["2"], got
    # An HTTP/1.0 keep-alive client is told the connection stays.
    with connect(lb) as c:
        c.send(b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\nMax-Forwards: 0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.header("Connection") == "keep-alive", r
        c.send(b"GET /after HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response().status == 200
        # A long TRACE echo (a head that grows the buffer, a length of five
        # digits, the keep-alive ending): the answer must fit the space the
        # proxy sets aside for it.
        head = (b"TRACE / HTTP/1.0\r\nConnection: keep-alive\r\nMax-Forwards: 0\r\nX-Pad: "
                + b"p" * 17_000 + b"\r\n\r\n")
        c.send(head)
        r = c.read_response()
        assert r.status == 200 and r.body == head, r
        c.send(b"GET /still HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response().status == 200


def test_empty_lines_before_a_request_are_ignored(scripted_backend_factory, ekilibri_factory):
    """RFC 9112 §2.2: CRLFs before a request line (e.g. after a POST body)
    are skipped, and the limits apply to the request line after them."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    long_line = b"\r\nGET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert_rejected(lb, sb, long_line, [414])
    with connect(lb) as c:
        c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        rs = [c.read_response("POST"), c.read_response()]
    assert [(r.status, r.body) for r in rs] == [(200, b"origin POST /a 2\n"), (200, b"origin GET /b 0\n")], rs
    # Split across reads, byte by byte, they are skipped all the same.
    with connect(lb) as c:
        for b in b"\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n":
            c.send(bytes([b]))
            time.sleep(0.002)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"origin GET /c 0\n"), r


def test_crlf_after_a_body_does_not_start_the_header_timer(scripted_backend_factory, ekilibri_factory):
    """The CRLF a client may send after a body (RFC 9112 §2.2) is not the
    start of a request: an idle connection after it gets no 408."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory, client_header_timeout=300)
    with connect(lb) as c:
        c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n")
        assert c.read_response("POST").status == 200
        assert c.pending(1.0) == b"", "something came on the idle connection"
        c.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200


def test_requests_answered_by_the_proxy_do_not_move_round_robin(backend_factory, ekilibri_factory):
    """A TRACE with Max-Forwards: 0 (answered by the proxy) and a rejected
    request reach no backend, so round robin must not move on for them:
    the GETs around them still alternate between the two backends."""
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], strategy="RoundRobin")
    got = []
    with connect(lb) as c:
        for _ in range(4):
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got.append(c.read_response().header("X-Backend"))
            c.send(b"TRACE / HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\n\r\n")
            assert c.read_response().status == 200
    for _ in range(4):
        with connect(lb) as bad:
            bad.send(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")
            assert bad.read_response().status == 400
        with connect(lb) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got.append(c.read_response().header("X-Backend"))
    assert all(a != b for a, b in zip(got, got[1:])), got
