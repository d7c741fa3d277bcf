"""Header rewriting (RFC 9110 7.6): hop-by-hop fields removed in both
directions, X-Forwarded-For / X-Forwarded-Proto / Forwarded / Via added."""

from __future__ import annotations

import pytest

from rfc9112_support import backend_requests, connect, header_names, reply_then_serve, start

HOP_REQUEST = (
    b"GET /hop HTTP/1.1\r\nHost: app.test\r\n"
    b"Connection: keep-alive, X-Secret, x-other\r\n"
    b"Connection: X-SECOND\r\n"
    b"X-Secret: 1\r\nx-other: 2\r\nX-Second: 3\r\n"
    b"Keep-Alive: timeout=5\r\n"
    b"Proxy-Connection: keep-alive\r\n"
    b"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
    b"X-Kept: yes\r\n\r\n"
)


def one_request(lb, sb, raw: bytes, method: str = "GET"):
    with connect(lb) as c:
        c.send(raw)
        r = c.read_response(method)
        assert r.status == 200, r
    reqs = backend_requests(sb)
    assert len(reqs) == 1, reqs
    return reqs[0], r


def test_request_hop_by_hop_fields_are_removed(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    got, _ = one_request(lb, sb, HOP_REQUEST)
    names = header_names(got.headers)
    leaked = names & {"x-secret", "x-other", "x-second", "keep-alive", "proxy-connection", "proxy-authorization"}
    assert not leaked, f"hop-by-hop fields forwarded: {sorted(leaked)}: {got!r}"
    conn_tokens = {t.lower() for t in got.list_values("connection")}
    assert conn_tokens <= {"keep-alive", "close", "te"}, f"client Connection options forwarded: {got!r}"
    assert got.header("x-kept") == "yes" and got.header_all("host") == ["app.test"], got


def test_connection_cannot_strip_host_or_forwarding_fields(scripted_backend_factory, ekilibri_factory):
    """`Connection: Host, X-Forwarded-For` must not make the backend get a
    request without Host, nor without ekilibri's X-Forwarded-For. Rejecting
    the request (400) is fine too."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    with connect(lb) as c:
        c.send(b"GET /h HTTP/1.1\r\nHost: app.test\r\nConnection: Host, X-Forwarded-For\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
        r = c.read_response()
    if r.status == 400:
        assert backend_requests(sb) == []
        return
    assert r.status == 200, r
    got = backend_requests(sb)[0]
    assert got.header_all("host") == ["app.test"], f"Host was stripped because Connection named it: {got!r}"
    assert got.list_values("x-forwarded-for")[-1:] == ["127.0.0.1"], got


def test_te_keeps_only_trailers(scripted_backend_factory, ekilibri_factory):
    """TE is hop-by-hop, except that `trailers` is passed on (RFC 9110
    10.1.4; gRPC needs it): the backend gets `TE: trailers` (with `TE` in
    Connection) and no other coding."""
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    got, _ = one_request(lb, sb, b"GET /te HTTP/1.1\r\nHost: x\r\nTE: trailers, deflate;q=0.5\r\nConnection: TE\r\n\r\n")
    assert [t.lower() for t in got.list_values("te")] == ["trailers"], f"TE: trailers not kept alone: {got!r}"
    assert "te" in {t.lower() for t in got.list_values("connection")}, f"TE sent without Connection: TE: {got!r}"


def test_te_without_trailers_is_removed(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    got, _ = one_request(lb, sb, b"GET /te HTTP/1.1\r\nHost: x\r\nTE: gzip, deflate;q=0.5\r\nConnection: TE\r\n\r\n")
    assert got.header_all("te") == [], got


def test_response_hop_by_hop_fields_are_removed(scripted_backend_factory, ekilibri_factory):
    reply = (
        b"HTTP/1.1 200 OK\r\nConnection: X-Secret, x-other\r\nX-Secret: 1\r\nX-Other: 2\r\n"
        b"Keep-Alive: timeout=5, max=100\r\nProxy-Connection: keep-alive\r\nUpgrade: foo/2\r\n"
        b"X-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    lb, sb = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    with connect(lb) as c:
        c.send(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert r.status == 200 and r.body == b"hello", r
    leaked = header_names(r.headers) & {"x-secret", "x-other", "keep-alive", "proxy-connection", "upgrade"}
    assert not leaked, f"hop-by-hop response fields reached the client: {sorted(leaked)}: {r!r}"
    conn_tokens = {t.strip().lower() for v in r.header_all("connection") for t in v.split(",")}
    assert conn_tokens <= {"close", "keep-alive"}, r
    assert len(r.header_all("transfer-encoding")) <= 1 and r.header("x-kept") == "yes", r


@pytest.mark.parametrize(
    "sent,expected",
    [
        pytest.param([], ["127.0.0.1"], id="none"),
        pytest.param(["1.2.3.4"], ["1.2.3.4", "127.0.0.1"], id="one"),
        pytest.param(["1.2.3.4", "5.6.7.8, 9.9.9.9"], ["1.2.3.4", "5.6.7.8", "9.9.9.9", "127.0.0.1"], id="two-fields"),
    ],
)
def test_x_forwarded_for_appends_the_client(scripted_backend_factory, ekilibri_factory, sent, expected):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    fields = "".join(f"X-Forwarded-For: {v}\r\n" for v in sent)
    got, _ = one_request(lb, sb, f"GET /xff HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    assert got.list_values("x-forwarded-for") == expected, got


def test_x_forwarded_proto_is_http(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    got, _ = one_request(lb, sb, b"GET /xfp HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.header_all("x-forwarded-proto") == ["http"], f"X-Forwarded-Proto: http missing: {got!r}"


def forwarded_elements(req) -> list[dict]:
    """RFC 7239 Forwarded elements as dicts (keys lower-cased, quotes removed)."""
    out = []
    for value in req.header_all("forwarded"):
        for element in value.split(","):
            pairs = {}
            for pair in element.split(";"):
                if "=" in pair:
                    k, v = pair.split("=", 1)
                    pairs[k.strip().lower()] = v.strip().strip('"')
            if pairs:
                out.append(pairs)
    return out


@pytest.mark.parametrize("config", [pytest.param({}, id="default"), pytest.param({"forwarded_headers": True}, id="on")])
def test_forwarded_is_appended(scripted_backend_factory, ekilibri_factory, config):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, **config)
    got, _ = one_request(lb, sb, b"GET /fwd HTTP/1.1\r\nHost: x\r\nForwarded: for=192.0.2.60;proto=https\r\n\r\n")
    els = forwarded_elements(got)
    assert len(els) == 2 and els[0] == {"for": "192.0.2.60", "proto": "https"}, f"Forwarded not appended: {got!r}"
    assert els[-1].get("for") == "127.0.0.1" and els[-1].get("proto") == "http", f"Forwarded element: {got!r}"


def test_forwarded_can_be_turned_off(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory, forwarded_headers=False)
    got, _ = one_request(lb, sb, b"GET /fwd HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.header_all("forwarded") == [], f"Forwarded added with forwarded_headers = false: {got!r}"


def via_elements(headers) -> list[str]:
    out = []
    for k, v in headers:
        if k.lower() == "via":
            out += [e.strip() for e in v.split(",") if e.strip()]
    return out


def test_via_is_added_to_requests(scripted_backend_factory, ekilibri_factory):
    lb, sb = start(scripted_backend_factory, ekilibri_factory)
    got, _ = one_request(lb, sb, b"GET /via HTTP/1.1\r\nHost: x\r\nVia: 1.0 fred\r\n\r\n")
    assert via_elements(got.headers) == ["1.0 fred", "1.1 ekilibri"], f"Via: {got!r}"


def test_via_is_added_to_responses(scripted_backend_factory, ekilibri_factory):
    reply = b"HTTP/1.1 200 OK\r\nVia: 1.1 origin-cache\r\nContent-Length: 2\r\n\r\nok"
    lb, sb = start(scripted_backend_factory, ekilibri_factory, reply_then_serve(reply))
    with connect(lb) as c:
        c.send(b"GET /via HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    assert via_elements(r.headers) == ["1.1 origin-cache", "1.1 ekilibri"], f"Via: {r!r}"
