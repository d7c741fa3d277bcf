"""`workers = N`: N event loops on one address (SO_REUSEPORT)."""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from rawhttp import HttpConnection


def threads_of(pid: int) -> list[str]:
    return sorted(open(f"/proc/{pid}/task/{t}/comm").read().strip() for t in os.listdir(f"/proc/{pid}/task"))


def test_two_workers_share_the_listener_and_serve_correctly(backend_factory, ekilibri_factory):
    backends = backend_factory(3)
    lb = ekilibri_factory(backends, workers=2)
    names = {b.name for b in backends}
    assert len(threads_of(lb.pid)) == 2, threads_of(lb.pid)

    def client(i: int) -> Counter:
        seen = Counter()
        # A new connection each time, so the kernel spreads them over both
        # workers' sockets.
        for j in range(20):
            with HttpConnection(lb.addr, timeout=10) as c:
                body = f"client {i} request {j}\n".encode() * (i + 1)
                r = c.request("POST", "/echo", body=body)
                assert r.status == 200, r
                assert r.body == body
                assert r.header("X-Backend") in names
                seen[r.header("X-Backend")] += 1
        return seen

    with ThreadPoolExecutor(max_workers=20) as ex:
        total = sum(ex.map(client, range(20)), Counter())
    assert sum(total.values()) == 400
    assert set(total) == names, total
    # A persistent connection stays on one worker and keeps working.
    with HttpConnection(lb.addr, timeout=10) as c:
        for _ in range(200):
            assert c.get("/health").status == 200
