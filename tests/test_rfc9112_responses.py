"""Responses from a backend whose framing is suspect or bodiless, interim
responses followed by a failure, and request fields ekilibri must not pass
on (RFC 9110, RFC 9112). Each backend reply is scripted byte for byte."""

from __future__ import annotations

import json
import threading
import time

import pytest

import harness
import wire
from rawhttp import request_once
from test_admin import admin_addr
from rfc9112_support import assert_rejected, backend_requests, connect, get, reply_then_serve, start


def requests_per_backend_connection(sb) -> list[int]:
    return [len(wire.split_requests(raw).requests) for raw in sb.raw_by_conn()]


def three_requests(lb) -> list:
    with connect(lb) as c:
        out = []
        for i in range(3):
            c.send(get(f"/r{i}"))
            out.append(c.read_response())
    return out


def test_http10_response_with_transfer_encoding_closes_the_backend_connection(scripted_backend_factory, ekilibri_factory):
    """RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
    framing; the connection is closed after it, whatever Connection says."""
    reply = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    lb, sb = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    first, *rest = three_requests(lb)
    assert first.status == 200 and first.body == b"ok", first
    assert all(r.status == 200 for r in rest), rest
    per_conn = requests_per_backend_connection(sb)
    assert per_conn[0] == 1, f"the connection was reused after the HTTP/1.0 chunked response: {per_conn}"


def test_response_with_content_length_and_transfer_encoding_is_not_trusted_with_another_request(
    scripted_backend_factory, ekilibri_factory
):
    """RFC 9112 6.3: framed by Transfer-Encoding, Content-Length removed, and
    the connection, which may be out of step, is not reused."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    lb, sb = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    first, *rest = three_requests(lb)
    assert first.status == 200 and first.body == b"ok", first
    assert first.header_all("content-length") == [], first
    assert all(r.status == 200 for r in rest), rest
    assert requests_per_backend_connection(sb)[0] == 1, requests_per_backend_connection(sb)


def bodiless(lb, request: bytes, method: str):
    with connect(lb) as c:
        c.send(request)
        r = c.read_response(method)
        c.send(get("/after"))  # the connection is still in step
        after = c.read_response()
    assert after.status == 200, after
    return r


def test_head_response_never_carries_both_framing_fields(scripted_backend_factory, ekilibri_factory):
    """RFC 9112 6.2/6.3: Content-Length is removed beside Transfer-Encoding,
    also when there is no body to frame (HEAD)."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    r = bodiless(lb, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD")
    assert r.status == 200 and r.header_all("content-length") == [], r
    assert [v.lower() for v in r.header_all("transfer-encoding")] == ["chunked"], r


def test_304_never_carries_both_framing_fields(scripted_backend_factory, ekilibri_factory):
    reply = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    r = bodiless(lb, get("/"), "GET")
    assert r.status == 304 and r.header_all("content-length") == [], r


def test_head_response_content_length_list_is_folded(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 8.6: `5, 5` is one valid length; forwarded as `5`, as it is
    for a response with a body."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    r = bodiless(lb, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD")
    assert r.header_all("content-length") == ["5"], r


def test_204_loses_content_length_and_transfer_encoding(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 8.6 and RFC 9112 6.1: neither field in a 204; a client that
    trusted them would wait for a body that never comes."""
    for fields in (b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"):
        reply = b"HTTP/1.1 204 No Content\r\n" + fields + b"\r\n"
        lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply), name=f"b{len(fields)}")
        r = bodiless(lb, get("/"), "GET")
        assert r.status == 204, r
        assert r.header_all("content-length") == [] and r.header_all("transfer-encoding") == [], r


def test_response_field_with_space_before_the_colon_is_cleaned(scripted_backend_factory, ekilibri_factory):
    """RFC 9112 5.1: a proxy removes whitespace between a response field's
    name and the colon before forwarding."""
    reply = b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok"
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    with connect(lb) as c:
        c.send(get("/"))
        raw = c.pending(2.0) or b""
    assert raw.startswith(b"HTTP/1.1 200"), raw
    assert b"\r\nX-A: b\r\n" in raw and b"X-A :" not in raw, raw


def test_transfer_encoding_with_space_before_the_colon_frames_the_body(scripted_backend_factory, ekilibri_factory):
    """The field counts under its name once the whitespace is removed: the
    body is decoded as chunked and re-framed, never passed on raw."""
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    with connect(lb) as c:
        c.send(get("/"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello" and r.framing == "chunked", r
        assert all(not k.endswith(" ") for k, _ in r.headers), r
        c.send(get("/after"))
        assert c.read_response().status == 200


def silent_after(interim: bytes, then_close: bool):
    def script(bc):
        if bc.read_head() is None:
            return
        bc.send(interim)
        if then_close:
            return  # the harness closes the connection when the script returns
        bc.wait_closed(10.0)  # silent until the proxy gives up

    return script


def test_backend_silent_after_early_hints_gets_504_not_a_bare_close(scripted_backend_factory, ekilibri_factory):
    """A 1xx is interim (RFC 9110 15.2): the exchange still owes the client a
    final response, which ekilibri can still send whole."""
    script = silent_after(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", then_close=False)
    lb, _ = start(scripted_backend_factory, ekilibri_factory, script, read_timeout=500)
    with connect(lb) as c:
        c.send(get("/"))
        early = c.read_response(skip_interim=False)
        final = c.read_response()
    assert early.status == 103, early
    assert final.status == 504, final


def post_after_continue(c) -> None:
    """Sends a POST head with `Expect: 100-continue`, waits for the relayed
    100, then sends the 5-byte body."""
    c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    cont = c.read_response(skip_interim=False)
    assert cont.status == 100, cont
    c.send(b"hello")


def test_backend_closing_after_100_continue_gets_502(scripted_backend_factory, ekilibri_factory):
    script = silent_after(b"HTTP/1.1 100 Continue\r\n\r\n", then_close=True)
    lb, _ = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb) as c:
        post_after_continue(c)
        final = c.read_response()
    assert final.status == 502, final


def test_final_response_before_the_body_keeps_the_connection_once_100_was_relayed(
    scripted_backend_factory, ekilibri_factory
):
    """After a relayed 100 Continue the client sends its body (RFC 9110
    10.1.1), so an early final response need not close the connection."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        bc.read_body(req)
        harness.serve_default(bc)

    lb, _ = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb) as c:
        post_after_continue(c)
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok", r
        assert not r.has_token("connection", "close"), r
        c.send(get("/again"))
        assert c.read_response().status == 200


def test_success_before_the_whole_body_keeps_the_connection(scripted_backend_factory, ekilibri_factory):
    """A backend answers 200 as soon as it has the head and reads the body
    after (nginx's `return 200` does). The relayed answer says keep-alive,
    so the connection must carry on: the rest of the body goes to the
    backend, and the next request on the connection is served. (It was
    closed after the body, and a keep-alive client's next request failed.)"""

    bodies = []

    def script(bc):
        while (req := bc.read_head(timeout=30)) is not None:
            if req.method == "POST":
                bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                bc.read_body(req)
                bodies.append(req.body)
            else:
                # The next request is answered with the body the backend
                # got for the POST before it.
                bc.send(harness.ok_response(bodies[-1] if bodies else b"no body"))

    lb, _ = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb) as c:
        post_and_get_early_success(c, 10)
        c.send(b"world")
        c.send(get("/next"))
        after = c.read_response()
        assert after.status == 200 and after.body == b"helloworld", after


def answer_post_early_then(then):
    """A backend script: a POST gets `200 ok` as soon as its head is in,
    then `then(bc)` runs (it goes away); a GET is answered with its method
    and target, and the connection served on."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        if req.method == "POST":
            bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            then(bc)
            return
        bc.send(harness.ok_response(f"{req.method} {req.target}".encode()))
        harness.serve_default(bc)

    return script


def post_and_get_early_success(c, length: int) -> None:
    """Sends a POST head with 5 bytes of its `length`-byte body and reads
    the early answer, which must keep the connection."""
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nhello" % length)
    r = c.read_response()
    assert r.status == 200 and r.body == b"ok", r
    assert not r.has_token("connection", "close"), r


def test_success_before_the_body_from_a_backend_that_then_goes_away_keeps_the_connection(
    scripted_backend_factory, ekilibri_factory
):
    """As above, but the backend closes its connection right after its
    early 200 (without saying so). The client was told the connection
    stays, so the proxy reads the rest of the body itself and drops it,
    and the connection carries on: the next request is served."""

    lb, sb = start(
        scripted_backend_factory,
        ekilibri_factory,
        answer_post_early_then(lambda bc: bc.close()),
        admin_listen="127.0.0.1:0",
    )
    rest = 2_000_000
    with connect(lb) as c:
        post_and_get_early_success(c, rest + 5)
        c.send(b"x" * (rest // 2))
        # While the body is dropped, the backend that went away no longer
        # counts the exchange as in flight (`LeastConnections` reads it).
        assert in_flight_settles_at(lb, sb.addr, 0), "the dropped body still counts as in flight"
        c.send(b"x" * (rest - rest // 2))
        c.send(get("/next"))
        after = c.read_response()
        assert after.status == 200 and b"GET /next" in after.body, after


@pytest.mark.timeout(90)
def test_a_body_dropped_after_the_backend_went_away_has_a_time_limit(scripted_backend_factory, ekilibri_factory):
    """The proxy drops the rest of a body for a backend that went away, but
    not forever: a client that trickles it, each stall shorter than the
    body timeout, is cut after 30 s in all (nginx's `lingering_time`)."""
    lb, _ = start(
        scripted_backend_factory,
        ekilibri_factory,
        answer_post_early_then(lambda bc: bc.close()),
        client_header_timeout=3000,
    )
    with connect(lb) as c:
        post_and_get_early_success(c, 10**9)
        began = time.monotonic()
        closed = False
        while not closed and time.monotonic() - began < 60:
            try:
                c.send(b"x" * 100)
            except OSError:
                closed = True
                break
            closed = c.wait_closed(0.5)
        took = time.monotonic() - began
    assert closed, "a trickled body was dropped for 60 s and more"
    assert took > 25, f"cut after {took:.1f} s, before the time limit"


def in_flight_settles_at(lb, addr: str, want: int, within: float = 5.0) -> bool:
    """Polls /status.json until `addr` shows `want` requests in flight."""
    admin = admin_addr(lb)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = json.loads(request_once(admin, "GET", "/status.json").body)
        if {b["address"]: b["in_flight"] for b in status["backends"]}.get(addr) == want:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", ["unread", "linger0"])
def test_success_before_the_body_from_a_backend_that_then_resets_keeps_the_connection(
    scripted_backend_factory, ekilibri_factory, how
):
    """The same, but the backend goes away by a reset while the proxy has
    no body bytes to write to it: it closes with body bytes unread (its
    kernel then sends RST), or with SO_LINGER 0. The reset is read, not
    written into, and must be handled the same way."""
    sent, closed = threading.Event(), threading.Event()

    def reset(bc):
        # Close with the body unread: once it has had time to arrive, the
        # close is a reset (or SO_LINGER 0 makes it one).
        sent.wait(5)
        time.sleep(0.1)
        bc.close(reset=(how == "linger0"))
        closed.set()

    lb, _ = start(scripted_backend_factory, ekilibri_factory, answer_post_early_then(reset))
    with connect(lb) as c:
        post_and_get_early_success(c, 4000)
        c.send(b"x" * 1995)
        sent.set()
        assert closed.wait(5), "the backend did not close"
        # Give the proxy a moment to see the reset before more body comes:
        # that order is the one under test. (If it comes later, the next
        # write fails first; the test then passes either way.)
        time.sleep(0.2)
        c.send(b"y" * 2000)
        c.send(get("/next"))
        after = c.read_response()
        assert after.status == 200 and b"GET /next" in after.body, after


def test_early_final_response_from_a_closing_backend_says_connection_close(scripted_backend_factory, ekilibri_factory):
    """The same, but the backend closes after its response: the rest of the
    body has nowhere to go, so the client is told the connection closes,
    and it does."""

    def script(bc):
        if bc.read_head() is None:
            return
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        bc.close()

    lb, _ = start(scripted_backend_factory, ekilibri_factory, script)
    with connect(lb) as c:
        post_after_continue(c)
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok", r
        assert r.has_token("connection", "close"), r
        assert c.wait_closed(3.0)


def test_http10_expect_100_continue_is_not_forwarded(scripted_backend_factory, ekilibri_factory):
    """RFC 9110 10.1.1: a server ignores 100-continue in an HTTP/1.0 request;
    forwarded in an HTTP/1.1 request it would be acted on."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(b"POST /p HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
    assert r.status == 200, r
    (got,) = backend_requests(sb)
    assert got.header_all("expect") == [], got
    assert got.body == b"hello", got


def test_fragment_in_request_target_is_rejected(scripted_backend_factory, ekilibri_factory):
    """RFC 9112 3.2: no request-target form has a fragment."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    assert_rejected(lb, sb, get("/a#frag"), [400])


def test_interim_flood_to_a_client_that_does_not_read_is_held_back(scripted_backend_factory, ekilibri_factory):
    """A backend sends the most interim responses the proxy relays (100, of
    16 KB each) to a client that is not reading yet. The proxy must apply
    backpressure, not buffer them: its memory stays flat, other clients are
    served meanwhile, and when the client reads it gets every interim
    response and then the final one."""
    n, pad = 100, b"p" * 16_000
    interim = b"HTTP/1.1 102 Processing\r\nX-Pad: " + pad + b"\r\n\r\n"

    def script(bc):
        while True:
            req = bc.read_request()
            if req is None:
                return
            if req.target == "/flood":
                for _ in range(n):
                    bc.send(interim)
            bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    lb, sb = start(scripted_backend_factory, ekilibri_factory, script, read_timeout=30_000)
    hwm_before = lb.vm_hwm_bytes()
    with connect(lb, timeout=30) as flood:
        flood.send(get("/flood"))
        time.sleep(0.5)  # the backend fills every buffer on the way
        for i in range(3):
            with connect(lb, timeout=5) as other:
                other.send(get(f"/other{i}"))
                r = other.read_response()
                assert r.status == 200 and r.body == b"ok", r
        grown = lb.vm_hwm_bytes() - hwm_before
        assert grown < 8 << 20, f"the proxy buffered the interim responses: peak RSS grew by {grown >> 20} MiB"
        seen = 0
        while True:
            r = flood.read_response(skip_interim=False)
            if r.status != 102:
                break
            seen += 1
    assert (seen, r.status, r.body) == (n, 200, b"ok")


@pytest.mark.parametrize(
    "reply, check",
    [
        # RFC 9112 §4: the reason phrase may hold obs-text; passed on as sent.
        (
            b"HTTP/1.1 200 Caf\xe9 cr\xe8me\r\nContent-Length: 2\r\n\r\nok",
            lambda r: r.reason == "Caf\xe9 cr\xe8me",
        ),
        # RFC 9110 §6.6.1: a Date the backend named in Connection is removed
        # as hop-by-hop; the response still goes out with one (the proxy's).
        (
            b"HTTP/1.1 200 OK\r\nConnection: Date\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\nok",
            lambda r: len(r.header_all("Date")) == 1 and "1994" not in r.header("Date"),
        ),
        # RFC 9110 §15.5.22: a 426 must say which protocol is required.
        (
            b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nok",
            lambda r: r.header_all("Upgrade") == ["websocket"] and r.has_token("Connection", "upgrade"),
        ),
    ],
    ids=["obs-text-reason", "date-named-in-connection", "426-upgrade"],
)
def test_response_fields_the_rfc_requires_are_passed_on(scripted_backend_factory, ekilibri_factory, reply, check):
    lb, _ = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    with connect(lb) as c:
        c.send(get("/"))
        r = c.read_response()
    assert r.body == b"ok" and check(r), r


def test_a_flood_of_interim_responses_ends_in_502(scripted_backend_factory, ekilibri_factory):
    """Each 1xx restarts the backend's read timer, so a backend that sends
    them and never a final response would hold the request for good: after
    100 of them the reply counts as bad, and the client gets a 502 (not the
    504 of a timeout, which never came: the backend kept sending)."""

    def script(bc):
        if bc.read_head() is None:
            return
        try:
            for _ in range(150):
                bc.send(b"HTTP/1.1 102 Processing\r\n\r\n")
                time.sleep(0.005)
        except OSError:
            return
        bc.wait_closed(timeout=10)

    lb, _ = start(scripted_backend_factory, ekilibri_factory, script, read_timeout=300)
    interim = 0
    with connect(lb, timeout=15) as c:
        c.send(get("/slow"))
        while (r := c.read_response(skip_interim=False)).status == 102:
            interim += 1
    assert (interim, r.status) == (100, 502), (interim, r)
