"""Bodies through the proxy, byte-exact, with Content-Length and chunked
framing both ways, streamed rather than buffered."""

from __future__ import annotations

import hashlib
import itertools
import os
import time

import pytest

from rawhttp import HttpConnection, RECV_SIZE

MiB = 1 << 20
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
# A proxy that buffers whole bodies would need more than this for 50 MiB.
STREAMING_RSS_LIMIT = 40 * MiB

SIZES = [
    pytest.param(0, id="0B"),
    pytest.param(1, id="1B"),
    pytest.param(MiB, id="1MiB"),
    pytest.param(50 * MiB, id="50MiB", marks=pytest.mark.slow),
]


def upload_pieces(data: bytes):
    """`data` in pieces of uneven sizes, from 1 byte to ~300 KiB."""
    view = memoryview(data)
    sizes = itertools.cycle([1, 7, 1000, 65536, 300_000, 16_384])
    pos = 0
    while pos < len(view):
        n = next(sizes)
        yield view[pos : pos + n]
        pos += n


class Sha256Sink:
    def __init__(self):
        self.h = hashlib.sha256()
        self.n = 0

    def __call__(self, piece: bytes) -> None:
        self.h.update(piece)
        self.n += len(piece)


class PatternSink:
    """Checks a body against a..z repeating without keeping it."""

    def __init__(self):
        self.block = ALPHABET * (RECV_SIZE // 26 + 2)
        self.n = 0
        self.first_mismatch = None

    def __call__(self, piece: bytes) -> None:
        if self.first_mismatch is None:
            start = self.n % 26
            want = self.block[start : start + len(piece)]
            if piece != want:
                i = next(i for i in range(len(piece)) if piece[i] != want[i])
                self.first_mismatch = (self.n + i, piece[i : i + 40], want[i : i + 40])
        self.n += len(piece)


def assert_streamed(lb, what):
    hwm = lb.vm_hwm_bytes()
    if hwm is None:
        return
    assert hwm < STREAMING_RSS_LIMIT, (
        f"ekilibri peak RSS {hwm / MiB:.1f} MiB after {what}: bodies look buffered, not streamed"
    )


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("size", SIZES)
def test_echo_is_byte_exact(three_backends, size, framing):
    lb, backends = three_backends
    data = os.urandom(size)
    sink = Sha256Sink()
    chunked = framing == "chunked"
    with HttpConnection(lb.addr, timeout=30) as c:
        r = c.request(
            "POST",
            "/echo",
            headers=[("Content-Type", "application/octet-stream")],
            body=upload_pieces(data),
            chunked=chunked,
            content_length=None if chunked else size,
            sink=sink,
        )
        assert r.status == 200, f"POST /echo {size} B {framing}: {r!r}"
        assert r.header("Content-Type") == "application/octet-stream", r
        assert r.header("X-Backend") in {b.name for b in backends}, r
        assert sink.n == size, f"sent {size} bytes, got {sink.n} back"
        assert sink.h.hexdigest() == hashlib.sha256(data).hexdigest(), "echoed bytes differ from those sent"
        if chunked:
            assert r.framing == "chunked", f"chunked request, response not chunked: {r!r}"
        else:
            assert r.framing == "length" and r.header("Content-Length") == str(size), r
        # The connection is still good for another request.
        after = c.get("/health")
        assert after.status == 200 and after.body == b"ok\n", after
    if size >= 50 * MiB:
        assert_streamed(lb, f"echoing {size} bytes")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("n", [0, 1, 26, 27, 100_000, MiB])
def test_download_is_byte_exact(three_backends, n, chunked):
    lb, _ = three_backends
    sink = PatternSink()
    target = f"/bytes/{n}" + ("?chunked=1" if chunked else "")
    with HttpConnection(lb.addr) as c:
        r = c.get(target, sink=sink)
        assert r.status == 200, f"GET {target}: {r!r}"
        assert sink.n == n, f"GET {target}: {sink.n} bytes"
        assert sink.first_mismatch is None, f"GET {target}: (offset, got, want) = {sink.first_mismatch}"
        assert r.framing == ("chunked" if chunked else "length"), r
        assert c.get("/health").status == 200


class PausingSink(PatternSink):
    """A PatternSink whose reader stops once, for `pause` seconds, after
    `after` bytes."""

    def __init__(self, after: int, pause: float):
        super().__init__()
        self.after, self.pause, self.paused = after, pause, False

    def __call__(self, piece: bytes) -> None:
        super().__call__(piece)
        if not self.paused and self.n >= self.after:
            self.paused = True
            time.sleep(self.pause)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_client_pausing_longer_than_read_timeout_still_gets_the_whole_body(backend_factory, ekilibri_factory, chunked):
    """A client that stops reading holds the response back; that is not the
    backend being silent, so `read_timeout` must not cut the response (the
    client's own limit is `keepalive_timeout` on output that does not drain).
    The body is larger than every socket and proxy buffer on the way, so the
    backpressure reaches the backend read."""
    (b,) = backend_factory(1)
    lb = ekilibri_factory([b], read_timeout=300)
    n = 32 * MiB
    sink = PausingSink(after=MiB, pause=1.0)
    target = f"/bytes/{n}" + ("?chunked=1" if chunked else "")
    with HttpConnection(lb.addr, timeout=30) as c:
        r = c.get(target, sink=sink)
        assert r.status == 200, r
        assert sink.paused
        assert sink.n == n, f"got {sink.n} of {n} bytes after a 1 s pause"
        assert sink.first_mismatch is None, f"(offset, got, want) = {sink.first_mismatch}"
        assert c.get("/health").status == 200
    assert "read timeout" not in lb.log_path.read_text()


@pytest.mark.slow
def test_chunked_download_50MiB_is_byte_exact(three_backends):
    lb, _ = three_backends
    n = 50 * MiB
    sink = PatternSink()
    with HttpConnection(lb.addr, timeout=30) as c:
        r = c.get(f"/bytes/{n}?chunked=1", sink=sink)
        assert r.status == 200, r
        assert r.framing == "chunked", r
        assert sink.n == n, f"got {sink.n} of {n} bytes"
        assert sink.first_mismatch is None, f"(offset, got, want) = {sink.first_mismatch}"
        assert c.get("/health").status == 200
    assert_streamed(lb, "a 50 MiB download")
