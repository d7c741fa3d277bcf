"""The admin listener: /metrics, /status.json and /status."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest

from rawhttp import request_once

METRIC_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*(\\.[^"\\]*)*",?)*\})? -?[0-9.e+Inf-]+$')


def admin_addr(lb) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(r"admin listening on ([0-9.]+:\d+)", lb.log_path.read_text())
        if m:
            return m.group(1)
        time.sleep(0.02)
    raise AssertionError(lb.log_path.read_text())


def metrics(addr: str) -> dict[str, float]:
    r = request_once(addr, "GET", "/metrics")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith("# HELP ") or line.startswith("# TYPE "), line
            continue
        assert METRIC_LINE.match(line), f"bad exposition line: {line!r}"
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    return values


def test_metrics_move_with_traffic_and_parse(backend_factory, ekilibri_factory):
    backends = backend_factory(2)
    lb = ekilibri_factory(backends, admin_listen="127.0.0.1:0")
    admin = admin_addr(lb)
    before = metrics(admin)
    for _ in range(10):
        assert request_once(lb.addr, "GET", "/").status == 200
    assert request_once(lb.addr, "GET", "/status/503").status == 503
    after = metrics(admin)

    def total(values, prefix):
        return sum(v for k, v in values.items() if k.startswith(prefix))

    assert total(after, "ekilibri_backend_requests_total") - total(before, "ekilibri_backend_requests_total") == 11
    assert total(after, 'ekilibri_connections_accepted_total') >= 11
    fives = [v for k, v in after.items() if k.startswith("ekilibri_backend_responses_total") and 'class="5xx"' in k]
    assert sum(fives) == 1
    assert total(after, "ekilibri_client_sent_bytes_total") > total(before, "ekilibri_client_sent_bytes_total")
    counts = [v for k, v in after.items() if k.startswith("ekilibri_backend_response_time_seconds_count")]
    assert sum(counts) == 11


def test_status_json_shows_a_killed_backend_out_of_rotation(backend_factory, ekilibri_factory):
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1, b2], admin_listen="127.0.0.1:0", max_fails=2, health_check_interval=100)
    admin = admin_addr(lb)
    b2.stop() if hasattr(b2, "stop") else b2.popen.terminate()
    b2.popen.wait(5)
    b2.stopped = True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = json.loads(request_once(admin, "GET", "/status.json").body)
        state = {b["address"]: b["in_rotation"] for b in status["backends"]}
        if state.get(b2.addr) is False:
            break
        time.sleep(0.1)
    assert state == {b1.addr: True, b2.addr: False}, state


def test_status_page_is_self_contained_html(backend_factory, ekilibri_factory):
    backends = backend_factory(1)
    lb = ekilibri_factory(backends, admin_listen="127.0.0.1:0")
    admin = admin_addr(lb)
    r = request_once(admin, "GET", "/status")
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")
    page = r.body.decode()
    assert backends[0].addr in page
    assert not re.search(r'(src|href)="https?://', page), "external asset"
    assert request_once(admin, "GET", "/nope").status == 404


def test_status_page_renders_in_headless_chromium(backend_factory, ekilibri_factory, tmp_path):
    """Loads /status in a real browser (Debian's chromium) and reads the DOM
    after its script ran: every backend is listed with its state."""
    import pytest

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    (b1,) = backend_factory(1)
    dead = harness_dead_address()
    lb = ekilibri_factory([b1, dead], admin_listen="127.0.0.1:0", max_fails=1, health_check_interval=100)
    admin = admin_addr(lb)
    time.sleep(0.5)  # the dead backend's probes fail and take it out
    out = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=3000",
            "--dump-dom", f"http://{admin}/status",
        ],
        capture_output=True, timeout=60,
    )
    dom = out.stdout.decode()
    assert b1.addr in dom and dead in dom, dom[:2000]
    assert "in rotation" in dom and "out of rotation" in dom, dom[:2000]


def harness_dead_address() -> str:
    import harness

    return harness.dead_address()


def test_idle_admin_connections_are_capped(backend_factory, ekilibri_factory):
    """A scraper that holds admin connections open cannot take the
    descriptors clients and backends need: beyond 16 per worker they are
    closed at once, and the proxy keeps serving."""
    import socket

    backends = backend_factory(1)
    lb = ekilibri_factory(backends, admin_listen="127.0.0.1:0", client_header_timeout=30_000)
    host, port = admin_addr(lb).rsplit(":", 1)
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(40)]
    try:
        open_ones = 0
        for s in held:
            s.settimeout(0.5)
            try:
                open_ones += s.recv(1) != b""
            except (socket.timeout, TimeoutError):
                open_ones += 1
            except ConnectionResetError:
                pass
        assert open_ones == 16, f"{open_ones} idle admin connections kept open"
        assert request_once(lb.addr, "GET", "/").status == 200
    finally:
        for s in held:
            s.close()
    # Once they are gone, the admin port answers again.
    deadline = time.monotonic() + 5
    while True:
        try:
            if request_once(admin_addr(lb), "GET", "/status.json", timeout=1).status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the admin port does not answer after the idle connections closed"
        time.sleep(0.05)


def test_admin_port_answers_other_methods_with_allow_and_garbage_with_400(backend_factory, ekilibri_factory):
    """RFC 9110 §15.5.6: a 405 names the methods allowed; a line that is not
    an HTTP request line is a 400."""
    import socket

    lb = ekilibri_factory(backend_factory(1), admin_listen="127.0.0.1:0")
    addr = admin_addr(lb)
    r = request_once(addr, "DELETE", "/metrics")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD", r
    host, port = addr.rsplit(":", 1)
    for line in (b"garbage", b"GET /metrics", b"GET /metrics HTTP/1.1 extra", b"GET /metrics HTTP/1.1\r\nbad field"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(line + b"\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 "), (line, answer)
    # Methods are case-sensitive tokens (RFC 9110 §9.1): `get` is a method
    # the admin port does not take, not a malformed line.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"get /metrics HTTP/1.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 405 ")
    assert request_once(addr, "GET", "/metrics").status == 200


def test_admin_accept_retries_after_running_out_of_descriptors(backend_factory, ekilibri_factory):
    """The admin listener is edge-triggered: an accept that fails with
    EMFILE spends the edge, and without a retry the scrape would wait until
    some other scraper connected. Once descriptors are free again it must
    be served."""
    import os
    import threading

    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    lb = ekilibri_factory(backend_factory(1), admin_listen="127.0.0.1:0", health_check_interval=60_000)
    addr = admin_addr(lb)
    hard = int(subprocess.run(["prlimit", "--pid", str(lb.pid), "--nofile", "--raw", "--noheadings", "-o", "HARD"],
                              capture_output=True, text=True, check=True).stdout)
    open_fds = set(map(int, os.listdir(f"/proc/{lb.pid}/fd")))
    lowest_free = next(i for i in range(len(open_fds) + 1) if i not in open_fds)
    # The next descriptor the proxy opens fails with EMFILE.
    subprocess.run(["prlimit", "--pid", str(lb.pid), f"--nofile={lowest_free}:{hard}"], check=True)
    result = {}

    def scrape():
        try:
            result["status"] = request_once(addr, "GET", "/metrics", timeout=5).status
        except OSError as e:
            result["error"] = repr(e)

    t = threading.Thread(target=scrape)
    try:
        t.start()
        time.sleep(0.5)
    finally:
        subprocess.run(["prlimit", "--pid", str(lb.pid), f"--nofile={hard}:{hard}"], check=True)
    t.join(10)
    assert result.get("status") == 200, result
