"""Garbage on the wire: random bytes, truncated requests and abrupt resets
from many connections, while well-behaved clients keep getting byte-exact
answers. ekilibri must stay up, with bounded memory and no leaked sockets."""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from pathlib import Path

from rawhttp import HttpConnection

THREADS = 4
CONNS_PER_THREAD = 200
RSS_LIMIT = 64 * 1024 * 1024

VALID = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n" + b"e" * 64,
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" + b"c" * 16 + b"\r\n0\r\n\r\n",
    b"GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n",
]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def reset(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def one_garbage_connection(addr, rng: random.Random) -> None:
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=2)
    kind = rng.randrange(8)
    try:
        if kind == 0:  # random bytes, then close
            s.sendall(rng.randbytes(rng.randint(1, 4096)))
            s.close()
        elif kind == 1:  # random bytes, then reset
            s.sendall(rng.randbytes(rng.randint(1, 4096)))
            reset(s)
        elif kind == 2:  # a valid request cut anywhere, close or reset
            v = rng.choice(VALID)
            s.sendall(v[: rng.randint(1, len(v) - 1)])
            (reset if rng.random() < 0.5 else socket.socket.close)(s)
        elif kind == 3:  # connect, reset at once
            reset(s)
        elif kind == 4:  # valid request, reset before reading the answer
            s.sendall(rng.choice(VALID))
            reset(s)
        elif kind == 5:  # a valid head followed by random bytes as "chunks"
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + rng.randbytes(rng.randint(1, 512)))
            s.close()
        elif kind == 6:  # printable junk that looks like header lines
            junk = b"".join(
                rng.choice([b"GET ", b"/", b"HTTP/1.1", b"\r\n", b"\n", b": ", b"Host", b"Content-Length", b"Transfer-Encoding", b"chunked", b"0", b" ", b"\t", b"\x00"])
                for _ in range(rng.randint(5, 200))
            )
            s.sendall(junk)
            (reset if rng.random() < 0.5 else socket.socket.close)(s)
        else:  # a huge head, then gone
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * rng.randint(1000, 60000))
            reset(s)
    except OSError:
        s.close()


def test_garbage_connections_do_not_hurt_normal_clients(backend_factory, ekilibri_factory):
    backends = backend_factory(2)
    lb = ekilibri_factory(backends, client_header_timeout=1000)
    base_fds = fd_count(lb.pid)
    stop = threading.Event()
    errors: list[str] = []
    served = [0]

    def normal_client(seed: int) -> None:
        rng = random.Random(seed)
        c = HttpConnection(lb.addr, timeout=10)
        try:
            while not stop.is_set():
                body = rng.randbytes(rng.randint(0, 40000))
                chunked = rng.random() < 0.5
                r = c.request("POST", "/echo", body=body, chunked=chunked) if body else c.request(
                    "POST", "/echo", body=b"", content_length=0
                )
                if r.status != 200 or r.body != body:
                    errors.append(f"echo of {len(body)} bytes: {r!r}")
                    return
                served[0] += 1
                if rng.random() < 0.1:
                    c.close()
                    c = HttpConnection(lb.addr, timeout=10)
        except Exception as e:  # noqa: BLE001
            errors.append(f"normal client: {type(e).__name__}: {e}")
        finally:
            c.close()

    def garbage(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(CONNS_PER_THREAD):
            try:
                one_garbage_connection(lb.addr, rng)
            except OSError as e:
                errors.append(f"garbage connect failed: {e}")
                return

    normals = [threading.Thread(target=normal_client, args=(1000 + i,)) for i in range(2)]
    hammers = [threading.Thread(target=garbage, args=(i,)) for i in range(THREADS)]
    for t in normals + hammers:
        t.start()
    t0 = time.monotonic()
    for t in hammers:
        t.join(60)
    # Normal traffic goes on a little after the garbage (its closes and resets are still being handled).
    while served[0] < 100 and time.monotonic() - t0 < 5 and not errors:
        time.sleep(0.05)
    stop.set()
    for t in normals:
        t.join(15)
    assert not errors, errors[:5]
    assert served[0] >= 50, f"only {served[0]} normal requests served during the garbage"
    assert lb.alive(), "ekilibri died"
    rss = rss_bytes(lb.pid)
    print(f"ekilibri RSS after the garbage: {rss / 2**20:.1f} MiB, {served[0]} normal requests")
    assert rss < RSS_LIMIT, f"RSS {rss / 2**20:.1f} MiB after the garbage"
    # Every garbage connection is gone within the linger time.
    deadline = time.monotonic() + 4
    while fd_count(lb.pid) > base_fds + 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fd_count(lb.pid) <= base_fds + 8, f"{fd_count(lb.pid)} fds open, {base_fds} before: leaked connections"
    with HttpConnection(lb.addr) as c:
        r = c.request("GET", "/bytes/70000")
        assert r.status == 200 and len(r.body) == 70000, r
