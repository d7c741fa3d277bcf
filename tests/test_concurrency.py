"""Many clients at once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from rawhttp import HttpConnection

CLIENTS = 100
REQUESTS_PER_CLIENT = 10


def test_hundred_concurrent_clients(three_backends):
    lb, backends = three_backends
    names = {b.name for b in backends}
    barrier = threading.Barrier(CLIENTS)

    def client(i: int) -> Counter:
        seen = Counter()
        with HttpConnection(lb.addr, timeout=30) as c:
            # All 100 connections are open before anyone sends.
            barrier.wait(timeout=30)
            for j in range(REQUESTS_PER_CLIENT):
                what = f"client {i} request {j}"
                if j % 2:
                    body = f"{what}\n".encode() * (1 + 37 * i)
                    r = c.request("POST", "/echo", body=body, headers=[("Content-Type", "application/x-test")])
                    assert r.status == 200, f"{what}: {r!r}"
                    assert r.body == body, f"{what}: echo differs ({len(r.body)} bytes back, {len(body)} sent)"
                    assert r.header("Content-Type") == "application/x-test", f"{what}: {r!r}"
                else:
                    r = c.get("/")
                    assert r.status == 200, f"{what}: {r!r}"
                    assert r.body == f"Hello from {r.header('X-Backend')}\n".encode(), f"{what}: {r!r}"
                assert r.header("X-Backend") in names, f"{what}: {r!r}"
                seen[r.header("X-Backend")] += 1
        return seen

    with ThreadPoolExecutor(max_workers=CLIENTS) as ex:
        results = list(ex.map(client, range(CLIENTS)))
    total = sum(results, Counter())
    assert sum(total.values()) == CLIENTS * REQUESTS_PER_CLIENT
    # Round robin: no backend is left idle or takes most of the load.
    for name in names:
        assert total[name] >= CLIENTS * REQUESTS_PER_CLIENT // 6, f"uneven spread: {dict(total)}"
