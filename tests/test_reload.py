"""SIGHUP reloads the configuration without dropping a connection."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import harness
from rawhttp import HttpConnection, request_once


def wait_for_log(proc, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = proc.log_path.read_text()
        if text in log:
            return log
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in log:\n{proc.log_path.read_text()}")


def test_sighup_switches_backends_under_load_without_a_failed_request(backend_factory, ekilibri_factory):
    b1, b2, b3 = backend_factory(3)
    lb = ekilibri_factory([b1, b2])
    stop = threading.Event()
    seen = Counter()
    failures = []
    sent = [0]

    def client(keepalive: bool):
        conn = HttpConnection(lb.addr, timeout=10) if keepalive else None
        while not stop.is_set():
            try:
                r = conn.get("/") if conn else request_once(lb.addr, "GET", "/")
                sent[0] += 1
                if r.status != 200:
                    failures.append(r.status)
                seen[(time.monotonic(), r.header("X-Backend"))] += 1
            except Exception as e:  # any failure counts
                failures.append(repr(e))
                if conn:
                    conn = HttpConnection(lb.addr, timeout=10)

    threads = [threading.Thread(target=client, args=(k,)) for k in (True, True, False, False)]
    for t in threads:
        t.start()
    # A 10 s stream of requests: 4 s before the reload, 6 s after.
    time.sleep(4.0)
    lb.config_path.write_text(harness.config_text([harness.server_entry(b) for b in (b2, b3)]))
    reloaded_at = time.monotonic()
    lb.popen.send_signal(signal.SIGHUP)
    wait_for_log(lb, "configuration reloaded")
    time.sleep(6.0)
    stop.set()
    for t in threads:
        t.join(10)
    print(f"reload under load: {sent[0]} requests sent, {len(failures)} failed")
    assert not failures, f"{len(failures)} failed of {sent[0]}: {failures[:5]}"
    after = Counter()
    for (t, name), n in seen.items():
        if t > reloaded_at + 0.2:
            after[name] += n
    assert after["b3"] > 0, after
    assert after["b1"] == 0, after
    log = lb.log_path.read_text()
    assert "backends added" in log and "backends removed" in log


def test_sighup_with_a_broken_file_keeps_the_running_configuration(backend_factory, ekilibri_factory):
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1])
    good = lb.config_path.read_text()
    lb.config_path.write_text(good + "\nthis is = = not toml\n")
    lb.popen.send_signal(signal.SIGHUP)
    log = wait_for_log(lb, "reload failed")
    assert sum("reload failed" in line for line in log.splitlines()) == 1
    assert request_once(lb.addr, "GET", "/").status == 200
    assert lb.popen.poll() is None


def test_check_shows_what_a_reload_would_change(backend_factory, ekilibri_factory):
    import socket
    import subprocess

    b1, b2 = backend_factory(2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        admin = f"127.0.0.1:{s.getsockname()[1]}"
    lb = ekilibri_factory([b1], admin_listen=admin)
    wait_for_log(lb, "admin listening on")
    new = lb.config_path.with_name("next.toml")
    new.write_text(harness.config_text([harness.server_entry(b) for b in (b2,)], admin_listen=admin, read_timeout=4321))
    out = subprocess.run([harness.ekilibri_bin(), "--check", "-f", str(new)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert f"backends added: {b2.addr}" in out.stdout, out.stdout
    assert f"backends removed: {b1.addr}" in out.stdout, out.stdout
    assert "read_timeout:" in out.stdout and "-> 4321 ms" in out.stdout, out.stdout


def test_backend_removed_and_added_back_at_once_is_probed_at_the_normal_rate(scripted_backend_factory, ekilibri_factory):
    """Two reloads within one health_check_interval, the first removing a
    backend and the second adding it back: the backend must end up with one
    probe timer, not its old one plus a new one (probes at twice the rate)."""
    a, b = scripted_backend_factory("a"), scripted_backend_factory("b")
    interval_ms = 1000
    lb = ekilibri_factory([a, b], health_check_interval=interval_ms)

    def reload(servers, logged):
        lb.config_path.write_text(
            harness.config_text([harness.server_entry(s) for s in servers], health_check_interval=interval_ms)
        )
        lb.popen.send_signal(signal.SIGHUP)
        wait_for_log(lb, logged)

    reload([a], "backends removed")
    reload([a, b], "backends added")

    def probes_of(backend) -> int:
        with backend._lock:
            return sum(1 for c in backend.conns if bytes(c.raw).startswith(b"GET /health"))

    time.sleep(0.5)
    before = probes_of(b)
    window = 6.0
    time.sleep(window)
    probed = probes_of(b) - before
    expected = window * 1000 / interval_ms
    assert probed <= expected + 1.5, f"{probed} probes in {window} s, one every {interval_ms} ms expected"
    assert probed >= 2, f"probing stopped: {probed} probes in {window} s"
