"""Graceful shutdown: SIGTERM finishes what is in flight, then exits 0."""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest

from rawhttp import HttpConnection


def wait_exit(proc, timeout: float) -> int:
    proc.popen.wait(timeout)
    proc.stopped = True
    return proc.popen.returncode


def trickled_upload(lb, body: bytes, piece: int):
    """POSTs `body` to /echo in `piece`-byte pieces 50 ms apart, on a
    thread; the dict fills in with the response's status and body."""
    result = {}

    def upload():
        with HttpConnection(lb.addr, timeout=20) as c:
            def pieces():
                for i in range(0, len(body), piece):
                    time.sleep(0.05)
                    yield body[i : i + piece]

            r = c.request("POST", "/echo", body=pieces(), content_length=len(body))
            result["status"] = r.status
            result["body"] = r.body

    t = threading.Thread(target=upload)
    t.start()
    return t, result


def test_sigterm_lets_a_slow_upload_finish_then_exits_0(backend_factory, ekilibri_factory):
    backends = backend_factory(1)
    lb = ekilibri_factory(backends)
    body = b"x" * 200_000
    # The body trickles in while the signal arrives.
    t, result = trickled_upload(lb, body, 20_000)
    time.sleep(0.15)
    lb.popen.send_signal(signal.SIGTERM)
    t.join(20)
    assert result.get("status") == 200, result
    assert result["body"] == body
    assert wait_exit(lb, 10) == 0
    # New clients are refused once the shutdown started.
    with socket.socket() as s:
        assert s.connect_ex((lb.host, lb.port)) != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT], ids=["TERM", "INT", "QUIT"])
def test_stop_signal_closes_idle_keepalive_connections(backend_factory, ekilibri_factory, sig):
    """SIGQUIT too: nginx's graceful stop, so operators' scripts send it."""
    backends = backend_factory(1)
    lb = ekilibri_factory(backends)
    c = HttpConnection(lb.addr, timeout=5)
    assert c.get("/").status == 200
    lb.popen.send_signal(sig)
    assert wait_exit(lb, 5) == 0
    assert c.wait_closed(3.0)
    c.close()


def test_second_sigterm_exits_at_once(backend_factory, ekilibri_factory):
    backends = backend_factory(1)
    lb = ekilibri_factory(backends, shutdown_timeout=30000)
    def slow():
        try:
            HttpConnection(lb.addr, timeout=30).get("/sleep?ms=20000")
        except Exception:
            pass  # cut off by the forced exit, as intended

    threading.Thread(target=slow, daemon=True).start()
    time.sleep(0.2)
    lb.popen.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert lb.popen.poll() is None, "exited while a request was in flight"
    started = time.monotonic()
    lb.popen.send_signal(signal.SIGTERM)
    wait_exit(lb, 5)
    assert time.monotonic() - started < 2


def test_drain_ends_at_shutdown_timeout_with_an_idle_tunnel(scripted_backend_factory, ekilibri_factory):
    """An open tunnel has no deadline before keepalive_timeout, and probes
    are far apart: the drain must still end after shutdown_timeout (1 s)."""

    def script(bc):
        req = bc.read_head()
        if req is None:
            return
        bc.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        bc.wait_closed(timeout=120)

    sb = scripted_backend_factory("ws", script)
    lb = ekilibri_factory([sb], shutdown_timeout=1000, health_check_interval=600_000, keepalive_timeout=600_000)
    with socket.create_connection((lb.host, lb.port), timeout=5) as c:
        c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 101 ")
        time.sleep(1.5)  # past the deadlines of the exchange's start (connect)
        start = time.monotonic()
        lb.popen.send_signal(signal.SIGTERM)
        assert wait_exit(lb, 30) == 0
        took = time.monotonic() - start
    assert took < 10, f"the drain took {took:.1f} s with shutdown_timeout = 1 s"


def test_sigterm_after_a_burst_of_other_signals_is_not_lost(backend_factory, ekilibri_factory, tmp_path):
    """300 SIGUSR1 (log reopen) and then SIGTERM arrive together: the stop
    must not be crowded out."""
    (b1,) = backend_factory(1)
    for trial in range(3):
        lb = ekilibri_factory([b1], access_log=str(tmp_path / f"access{trial}.log"))
        for _ in range(300):
            lb.popen.send_signal(signal.SIGUSR1)
        lb.popen.send_signal(signal.SIGTERM)
        assert wait_exit(lb, 10) == 0, f"trial {trial}"


def test_sighup_during_the_drain_keeps_the_listen_address_and_says_so(backend_factory, ekilibri_factory):
    """A reload that moves `listen` while a graceful stop drains cannot bind
    (no new listener once draining): it must say so, and `/config` must
    keep showing the address in force, not the one never bound."""
    import re
    from test_admin import admin_addr

    from rawhttp import request_once

    backends = backend_factory(1)
    lb = ekilibri_factory(backends, admin_listen="127.0.0.1:0")
    admin = admin_addr(lb)
    t, result = trickled_upload(lb, b"x" * 200_000, 5_000)
    time.sleep(0.15)
    lb.popen.send_signal(signal.SIGTERM)
    text = lb.config_path.read_text()
    moved = re.sub(r'^listen = .*$', 'listen = "127.0.0.2:0"', text, flags=re.M)
    assert moved != text
    lb.config_path.write_text(moved)
    lb.popen.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in lb.log_path.read_text():
        assert time.monotonic() < deadline, lb.log_path.read_text()
        time.sleep(0.02)
    assert "listen stays" in lb.log_path.read_text(), lb.log_path.read_text()
    config = request_once(admin, "GET", "/config").body.decode()
    assert "127.0.0.2" not in config, config
    t.join(20)
    assert result.get("status") == 200, result
    assert wait_exit(lb, 10) == 0
