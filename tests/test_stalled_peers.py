"""A peer that stops reading or writing: the stall is charged to the side
that causes it, a complete answer is never lost to a timer or a reset, and a
client that does not read cannot make the proxy pile up answers for it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import harness
from rawhttp import HttpConnection

MiB = 1 << 20
NO_PROBES = dict(health_check_interval=3_600_000)


def stream_forever(sock: socket.socket, total: int = 1 << 62) -> threading.Thread:
    """Sends `total` body bytes on `sock` from a thread, or fewer if the
    socket fails first."""

    def pump():
        chunk = b"x" * 65536
        left = total
        try:
            while left > 0:
                sock.sendall(chunk[:left])
                left -= len(chunk)
        except OSError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def test_early_answer_to_an_upload_survives_the_backends_reset(scripted_backend_factory, ekilibri_factory):
    """A backend answers a large upload at once (413) and closes with the
    body unread, so its kernel resets the connection. The answer is already
    in the proxy's socket: the client must get it, and the backend, which
    did nothing wrong, must not be counted as failing (max_fails = 1)."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        if req.target == "/upload":
            time.sleep(0.3)  # the proxy's writes towards us pile up meanwhile
            bc.send(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!")
            return  # closed with unread bytes: a reset
        bc.read_body(req)
        bc.send(harness.ok_response(b"fine"))

    sb = scripted_backend_factory("origin", script)
    lb = ekilibri_factory([sb], max_fails=1, **NO_PROBES)
    for i in range(3):
        with HttpConnection(lb.addr, timeout=10) as c:
            c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
            stream_forever(c.sock)
            r = c.read_response()
            assert (r.status, r.body) == (413, b"big!"), f"upload {i + 1}: {r}"
    with HttpConnection(lb.addr, timeout=5) as c:
        r = c.get("/after")
        assert (r.status, r.body) == (200, b"fine"), f"the backend was taken out of rotation: {r}"


def tcp_queues() -> dict:
    """(local port, remote port) -> (send queue, receive queue) of every
    IPv4 TCP socket of the machine, from /proc/net/tcp."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
            tx, rx = (int(q, 16) for q in fields[4].split(":"))
            out[(local, remote)] = (tx, rx)
    return out


def stalled_client(lb, target: str) -> socket.socket:
    """A client with a small receive buffer that sends a GET and reads
    nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((lb.host, lb.port))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def kernel_bytes_towards(lb, s: socket.socket) -> int:
    """Bytes of a response the kernel holds for a client that does not read:
    its receive queue plus the proxy's send queue, once they stop growing."""
    mine = s.getsockname()[1]
    last, stable_since = -1, time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        q = tcp_queues()
        held = q.get((mine, lb.port), (0, 0))[1] + q.get((lb.port, mine), (0, 0))[0]
        if held != last:
            last, stable_since = held, time.monotonic()
        elif time.monotonic() - stable_since > 0.3:
            return held
        time.sleep(0.02)
    raise AssertionError("the queues towards the client never settled")


def read_chunked_response(s: socket.socket) -> tuple[bytes, bool]:
    """Reads one chunked response; returns (body, terminated)."""
    s.settimeout(5)
    data = bytearray()
    try:
        while True:
            d = s.recv(1 << 16)
            if not d:
                break
            data += d
            if data.endswith(b"\r\n0\r\n\r\n"):
                break
    except (socket.timeout, TimeoutError):
        pass
    body, pos = bytearray(), data.index(b"\r\n\r\n") + 4
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(body), False
        size = int(data[pos:end], 16)
        if size == 0:
            return bytes(body), True
        if end + 2 + size > len(data):
            return bytes(body + data[end + 2:]), False
        body += data[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


def test_finished_chunked_response_reaches_a_client_that_pauses(scripted_backend_factory, ekilibri_factory):
    """The backend has sent a whole chunked response and waits; the client
    pauses for longer than read_timeout with the response's tail still in
    the proxy's buffers (less than a buffer's worth, so the backend buffer
    is not full). The stall is the client's: it must get the whole body.

    Where the tail ends up depends on how much the kernel holds towards a
    client that does not read, so that is measured first (with a Content-
    Length body, which fills every buffer), then responses are sized to
    leave 3, 8 and 13 KiB in the proxy's backend buffer."""
    chunk = 16_000

    def script(bc):
        while True:
            req = bc.read_head(timeout=30)
            if req is None:
                return
            kind, n = req.target.strip("/").split("/")
            n = int(n)
            if kind == "len":
                bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + b"y" * n)
                continue
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"y" * chunk for _ in range(n // chunk)))
            bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n")

    sb = scripted_backend_factory("origin", script)
    lb = ekilibri_factory([sb], read_timeout=300, keepalive_timeout=60_000, **NO_PROBES)
    probe = stalled_client(lb, f"/len/{64 * MiB}")
    held = kernel_bytes_towards(lb, probe)
    probe.close()
    # Towards the client: the kernel's share and the proxy's client buffer
    # (16 KiB, short of a chunk header); the rest waits in the backend buffer.
    towards_client = held + 16 * 1024
    clients = []
    for tail in (3 * 1024, 8 * 1024, 13 * 1024):
        n = (towards_client + tail) // chunk * chunk
        clients.append((n, stalled_client(lb, f"/chunked/{n}")))
    time.sleep(1.5)  # five times read_timeout, nobody reading
    for n, s in clients:
        body, terminated = read_chunked_response(s)
        s.close()
        assert (len(body), terminated) == (n, True), (
            f"a {n}-byte chunked response was cut to {len(body)} bytes "
            f"(terminated: {terminated}) after the client paused; kernel held {held}"
        )
    assert "read timeout" not in lb.log_path.read_text()


def test_echo_to_a_client_that_pauses_is_not_a_backend_write_timeout(scripted_backend_factory, ekilibri_factory):
    """A backend that answers as it reads (an echo) stops reading when the
    client stops reading its answer: the proxy may not charge that to the
    backend as a write timeout."""
    total = 20 * MiB

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % req.length)
        got = 0
        while got < req.length:
            data = bc.recv_some(timeout=30)
            if not data:
                return
            got += len(data)
            bc.sock.sendall(data)

    sb = scripted_backend_factory("echo", script)
    lb = ekilibri_factory([sb], write_timeout=300, read_timeout=300, keepalive_timeout=60_000, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=30) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)

        def upload():
            left = total
            while left:
                n = min(left, 65536)
                c.sock.sendall(b"z" * n)
                left -= n

        t = threading.Thread(target=upload, daemon=True)
        t.start()
        time.sleep(1.5)  # the client reads its answer late
        r = c.read_response()
        t.join(10)
    assert r.status == 200 and len(r.body) == total, f"got {len(r.body)} of {total} echoed bytes"
    assert r.body == b"z" * total
    assert "write timeout" not in lb.log_path.read_text()


def paced_recv(sock: socket.socket, total: int, rate: int, on_bytes=None) -> int:
    """Reads `total` bytes from `sock` at `rate` bytes per second, in small
    reads (a slow but steady reader); returns how many came."""
    got, began = 0, time.monotonic()
    sock.settimeout(10)
    while got < total:
        try:
            data = sock.recv(min(16384, total - got))
        except OSError:
            break
        if not data:
            break
        got += len(data)
        if on_bytes:
            on_bytes(data)
        ahead = got / rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)
    return got


def test_backend_reading_an_upload_slowly_is_not_a_write_timeout(scripted_backend_factory, ekilibri_factory):
    """A backend takes an 8 MiB upload at a steady 4 MB/s, slower than
    the client sends it. The proxy's socket buffer stays nearly full, and
    the kernel reports it writable only once a third of it is free, which
    takes longer than write_timeout (200 ms), while every write would go
    through: bytes are moving, so that is no write timeout. (It was: 504
    after 0.2 s.)"""
    total = 8 * MiB

    def script(bc):
        bc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        req = bc.read_head()
        if req is None:
            return
        got = len(bc.buf) + paced_recv(bc.sock, req.length - len(bc.buf), 4_000_000)
        bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d" % (len(str(got)), got))

    sb = scripted_backend_factory("slow-reader", script)
    lb = ekilibri_factory([sb], write_timeout=200, read_timeout=5000, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=30) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        stream_forever(c.sock, total)
        r = c.read_response()
    assert r.status == 200 and r.body == str(total).encode(), r
    assert "write timeout" not in lb.log_path.read_text()


def test_tunnel_to_a_backend_reading_slowly_stays_open(scripted_backend_factory, ekilibri_factory):
    """The same inside a tunnel (after a 101): the client streams without
    end, the backend reads 8 MiB of it at a steady 4 MB/s and then
    answers, and keepalive_timeout (the limit on a tunnel with no traffic)
    is 200 ms. Bytes are moving all the time, so the tunnel must stay open
    until the backend has its 8 MiB."""
    total = 8 * MiB
    got = []

    def script(bc):
        bc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        if bc.read_head() is None:
            return
        bc.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        got.append(len(bc.buf) + paced_recv(bc.sock, total - len(bc.buf), 4_000_000))
        bc.send(b"done")

    sb = scripted_backend_factory("slow-tunnel", script)
    lb = ekilibri_factory([sb], keepalive_timeout=200, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=30) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        r = c.read_response(skip_interim=False)
        assert r.status == 101, r
        stream_forever(c.sock)
        assert c.sock.recv(4) == b"done", f"the tunnel closed; the backend got {got}"
    assert got == [total], got


def test_idle_tunnel_closes_without_blaming_the_backend(scripted_backend_factory, ekilibri_factory):
    """A tunnel with no traffic either way closes after keepalive_timeout.
    That is nobody's fault: nothing is logged against the backend (a
    'read timeout' warning for every quiet WebSocket would be noise)."""

    def script(bc):
        if bc.read_head() is None:
            return
        bc.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        bc.wait_closed(timeout=10)

    sb = scripted_backend_factory("quiet-tunnel", script)
    lb = ekilibri_factory([sb], keepalive_timeout=300, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=10) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        assert c.read_response(skip_interim=False).status == 101
        assert c.wait_closed(5.0), "the idle tunnel stayed open"
    time.sleep(0.1)
    assert "WARN" not in lb.log_path.read_text(), lb.log_path.read_text()


def test_client_reading_a_download_slowly_is_not_a_send_timeout(backend_factory, ekilibri_factory):
    """The same for a client downloading 8 MiB at a steady 4 MB/s with
    keepalive_timeout (the limit on a client that takes no bytes) at
    200 ms: the download must complete."""
    total = 8 * MiB
    lb = ekilibri_factory(backend_factory(1), keepalive_timeout=200)
    sock = socket.create_connection((lb.host, lb.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    with sock:
        sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % total)
        got = paced_recv(sock, total + 4096, 4_000_000)
    assert got > total, f"the download stopped after {got} of {total} body bytes"


def test_expect_continue_with_a_backend_waiting_for_the_body_ends_in_504(scripted_backend_factory, ekilibri_factory):
    """The client waits for a 100 Continue, the backend ignores Expect and
    waits for the body: without a deadline both would wait forever, holding
    a client slot and a backend connection. After client_header_timeout the
    client gets a 504, and the backend connection is released."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        bc.wait_closed(timeout=30)

    sb = scripted_backend_factory("origin", script)
    lb = ekilibri_factory([sb], client_header_timeout=500, read_timeout=200, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=10) as c:
        start = time.monotonic()
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        r = c.read_response()
        waited = time.monotonic() - start
    assert r.status == 504, r
    assert waited >= 0.45, f"answered after {waited:.2f} s, before client_header_timeout"
    assert sb.wait_conns(1)
    assert sb.conns[0].finished.wait(5), "the backend connection was kept open"


def test_pipelining_client_that_does_not_read_gets_no_pile_of_errors(ekilibri_factory):
    """No backend in rotation, and a client pipelines GETs without reading
    the 502s: the proxy stops reading it once an answer waits for it,
    instead of queueing an answer per request (memory and CPU grew with
    every request). Other clients are served meanwhile."""
    lb = ekilibri_factory([harness.dead_address()], health_check_interval=50, max_fails=1, keepalive_timeout=60_000)
    deadline = time.monotonic() + 10
    while "out of rotation" not in lb.log_path.read_text():
        assert time.monotonic() < deadline, "the dead backend never left rotation"
        time.sleep(0.02)
    hwm_before = lb.vm_hwm_bytes()
    flood = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.connect((lb.host, lb.port))
    flood.settimeout(0.5)
    requests = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 1000
    sent, start = 0, time.monotonic()
    try:
        while time.monotonic() - start < 3:
            flood.sendall(requests)
            sent += len(requests)
    except (socket.timeout, TimeoutError):
        pass  # the proxy stopped reading: the sockets are full
    assert sent < 16 * MiB, "the proxy kept reading requests whose answers nobody reads"
    time.sleep(1.0)  # whatever the proxy still does with what it read
    with HttpConnection(lb.addr, timeout=5) as c:
        r = c.get("/")
        assert r.status == 502, r
    grown = lb.vm_hwm_bytes() - hwm_before
    assert grown < 1 * MiB, f"peak RSS grew by {grown // 1024} KiB for one client that does not read"
    flood.close()


def test_client_gets_its_full_time_for_the_body_after_a_late_100_continue(scripted_backend_factory, ekilibri_factory):
    """The backend sends its 100 Continue late (0.7 s, within
    client_header_timeout = 1 s); the client, which waited for it, then
    takes 0.5 s to start its body. The body's time counts from the 100, not
    from the head: the request succeeds instead of an early 408."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        time.sleep(0.7)
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        bc.read_body(req)
        bc.send(harness.ok_response(req.body))

    sb = scripted_backend_factory("origin", script)
    lb = ekilibri_factory([sb], client_header_timeout=1000, read_timeout=2000, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=10) as c:
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100, interim
        time.sleep(0.5)
        c.send(b"hello")
        r = c.read_response()
    assert (r.status, r.body) == (200, b"hello"), r


@pytest.mark.parametrize("extra", [0, 64 * 1024], ids=["answer-only", "bytes-after-the-answer"])
def test_backend_that_stops_reading_after_its_answer_gets_a_write_timeout(scripted_backend_factory, ekilibri_factory, extra):
    """After 100 Continue the backend answers at once and stops reading the
    body the client still sends (and may send bytes after its answer, which
    fill the proxy's buffer): nothing moves any more, and write_timeout must
    end the exchange (the connection closes) instead of leaving both sides
    waiting."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        bc.send(harness.ok_response(b"ok") + b"z" * extra)
        time.sleep(30)  # reads nothing more

    sb = scripted_backend_factory("origin", script)
    lb = ekilibri_factory([sb], write_timeout=300, keepalive_timeout=60_000, **NO_PROBES)
    with HttpConnection(lb.addr, timeout=10) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n")
        assert c.read_response(skip_interim=False).status == 100
        stream_forever(c.sock, 100_000_000)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"ok"), r
        assert c.wait_closed(timeout=10), "the stalled upload was never given up"
    assert "write timeout" in lb.log_path.read_text()


def test_an_answer_that_arrived_while_the_proxy_was_stopped_is_not_a_timeout(backend_factory, ekilibri_factory):
    """The backend answers at 0.5 s (read_timeout 1 s) while the proxy is
    stopped (SIGSTOP) for 3 s. On SIGCONT the wait for events fails with
    EINTR: the proxy must collect readiness before it fires the timers that
    fell due meanwhile, and relay the 200 that is waiting in the socket."""
    import signal

    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], read_timeout=1000)
    result = {}

    def ask():
        with HttpConnection(lb.addr, timeout=20) as c:
            result["status"] = c.get("/sleep?ms=500").status

    t = threading.Thread(target=ask)
    t.start()
    time.sleep(0.2)
    lb.popen.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3)
    finally:
        lb.popen.send_signal(signal.SIGCONT)
    t.join(20)
    assert result.get("status") == 200, result


def test_a_client_that_stops_its_upload_still_gets_the_whole_early_answer(scripted_backend_factory, ekilibri_factory):
    """The backend answers a large upload early (413, 200,000 bytes, the
    rest of the body 0.5 s after the first 1,000). The client gives up its
    upload on seeing the head and half-closes (SHUT_WR), still reading: it
    must get the whole answer, not the first 1,000 bytes and a close."""
    size = 200_000

    def early_413(bc):
        if bc.read_head(timeout=10) is None:
            return
        bc.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size
                + b"x" * 1000)
        time.sleep(0.5)
        bc.send(b"y" * (size - 1000))
        time.sleep(2)

    lb = ekilibri_factory([scripted_backend_factory("early", early_413)], health_check_interval=60_000)
    with socket.create_connection((lb.host, lb.port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"z" * 5000)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), head
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            body += chunk
    assert len(body) == size, f"{len(body)} of {size} body bytes"


def post_after_100_continue(lb, part: bytes) -> socket.socket:
    """Starts a POST of 100,000 bytes with `Expect: 100-continue`, waits
    for the `100 Continue`, and sends `part` of the body."""
    s = socket.create_connection((lb.host, lb.port), timeout=10)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
    assert s.recv(1000).startswith(b"HTTP/1.1 100 ")
    s.sendall(part)
    return s


@pytest.mark.parametrize("how", ["close", "half-close"])
def test_a_client_that_stops_its_body_after_100_continue_frees_the_backend_at_once(
    scripted_backend_factory, ekilibri_factory, how
):
    """After a relayed `100 Continue` the client sends part of its body and
    closes (or half-closes). No final response has begun, so the exchange
    ends at once: the backend, still reading the body, sees the end of its
    connection within a moment, not after `client_header_timeout`."""
    seen = {}

    def continue_then_read(bc):
        if bc.read_head(timeout=10) is None:
            return
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        t0 = time.monotonic()
        seen["closed"] = bc.wait_closed(timeout=8)
        seen["after"] = time.monotonic() - t0

    lb = ekilibri_factory([scripted_backend_factory("cont", continue_then_read)], health_check_interval=60_000,
                          client_header_timeout=8_000)
    with post_after_100_continue(lb, b"x" * 1000) as s:
        time.sleep(0.2)
        if how == "close":
            s.close()
        else:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 10
        while "after" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
    assert seen.get("closed") and seen["after"] < 2, seen


def test_an_echo_learns_the_client_stopped_its_body(scripted_backend_factory, ekilibri_factory):
    """A backend streams its answer while it reads the body (an echo). The
    client half-closes part-way: the backend must be told (its read ends),
    so it can finish the answer, which the client then gets whole."""

    def echo(bc):
        if bc.read_head(timeout=10) is None:
            return
        bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            data = bc.recv_some(timeout=8)
            if not data:
                break
            bc.send(b"%x\r\n%s\r\n" % (len(data), data))
        bc.send(b"0\r\n\r\n")

    lb = ekilibri_factory([scripted_backend_factory("echo", echo)], health_check_interval=60_000,
                          client_header_timeout=8_000)
    with socket.create_connection((lb.host, lb.port), timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"e" * 1000)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        t0 = time.monotonic()
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            got += chunk
        waited = time.monotonic() - t0
    assert got.endswith(b"\r\n0\r\n\r\n"), got[-200:]
    assert waited < 2, f"the answer ended {waited:.1f} s after the client stopped"


@pytest.mark.parametrize(
    "pause, finish_after, client_timeout, read_timeout",
    [(0, 2.5, 1000, 10_000), (2, 0.3, 10_000, 1000)],
    ids=["answer-slower-than-the-client-timer", "client-paused-before-stopping"],
)
def test_after_the_client_stops_its_body_the_backend_finishes_its_answer(
    scripted_backend_factory, ekilibri_factory, pause, finish_after, client_timeout, read_timeout
):
    """The client half-closes mid-body while a streamed answer is under way,
    and the backend learns of it (its read ends). The backend's
    `read_timeout` then bounds the rest of the answer, counted from that
    moment: not the client's body timer (the client no longer sends; the
    first case takes 2.5 s against a 1 s `client_header_timeout`), and not
    from the last body byte (the second case paused 2 s before stopping,
    against a 1 s `read_timeout`)."""

    def finish_after_eof(bc):
        if bc.read_head(timeout=10) is None:
            return
        bc.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        got = 0
        while data := bc.recv_some(timeout=8):
            got += len(data)
        time.sleep(finish_after)
        body = b"got %d bytes" % got
        bc.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    lb = ekilibri_factory([scripted_backend_factory("slow", finish_after_eof)], health_check_interval=60_000,
                          client_header_timeout=client_timeout, read_timeout=read_timeout)
    with socket.create_connection((lb.host, lb.port), timeout=15) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 1000)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        time.sleep(pause)
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(65536):
            got += chunk
    assert got.endswith(b"got 1000 bytes\r\n0\r\n\r\n"), got


def test_a_complete_answer_after_100_continue_then_a_half_close_closes_at_once(
    scripted_backend_factory, ekilibri_factory
):
    """After `100 Continue` the backend answers in full before the whole
    body came; the client takes the answer and half-closes. Nothing is left
    to do: the connection closes at once, not after `client_header_timeout`."""

    def answer_early(bc):
        if bc.read_head(timeout=10) is None:
            return
        bc.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        got = 0
        while got < 500:
            data = bc.recv_some(timeout=5)
            if not data:
                return
            got += len(data)
        bc.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        bc.wait_closed(timeout=8)

    lb = ekilibri_factory([scripted_backend_factory("early", answer_early)], health_check_interval=60_000,
                          client_header_timeout=5000)
    with post_after_100_continue(lb, b"c" * 500) as s:
        got = b""
        while not got.endswith(b"ok"):
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 200 "), got
        s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        assert s.recv(65536) == b""
        assert time.monotonic() - t0 < 2
