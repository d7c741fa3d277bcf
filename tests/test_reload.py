"""SIGHUP reloads the configuration without dropping a connection."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

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


def test_check_does_not_take_another_http_server_for_ekilibri(tmp_path):
    """Something else answering 200 on admin_listen is not a running
    ekilibri: --check says so instead of printing its body as a diff."""
    import socket
    import subprocess

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    admin = f"127.0.0.1:{srv.getsockname()[1]}"

    def answer():
        conn, _ = srv.accept()
        with conn:
            conn.recv(4096)
            body = b"servers = evil\x1b[31m\n"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    path = tmp_path / "next.toml"
    path.write_text(harness.config_text(["127.0.0.1:9001"], admin_listen=admin))
    try:
        out = subprocess.run([harness.ekilibri_bin(), "--check", "-f", str(path)], capture_output=True, text=True, timeout=10)
    finally:
        t.join(5)
        srv.close()
    assert out.returncode == 0, out.stderr
    assert "not an ekilibri" in out.stdout, out.stdout
    assert "evil" not in out.stdout and "\x1b" not in out.stdout, out.stdout


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


def test_a_reload_that_shortens_the_health_check_interval_applies_at_once(scripted_backend_factory, ekilibri_factory):
    """An operator who set a long interval by mistake fixes it with a
    reload: probes come at the new rate right away, not after the probe
    already scheduled at the old one, and only at that rate (one timer)."""
    a = scripted_backend_factory("a")
    lb = ekilibri_factory([a], health_check_interval=60000)

    def probes() -> int:
        with a._lock:
            return sum(1 for c in a.conns if bytes(c.raw).startswith(b"GET /health"))

    lb.config_path.write_text(harness.config_text([harness.server_entry(a)], health_check_interval=200))
    lb.popen.send_signal(signal.SIGHUP)
    wait_for_log(lb, "configuration reloaded")
    start = probes()
    window = 3.0
    time.sleep(window)
    probed = probes() - start
    assert probed >= 5, f"{probed} probes in {window} s after the interval went from 60 s to 200 ms"
    assert probed <= window * 1000 / 200 + 1.5, f"{probed} probes in {window} s: more than one timer"


def test_a_reload_waiting_on_its_file_does_not_stall_traffic(backend_factory, ekilibri_factory):
    """A reload reads the file (and resolves host names, which can take
    seconds on a dead resolver) off the event loop. The file is swapped for
    a FIFO that nobody writes yet, so the reload's read blocks: requests must
    go on being answered meanwhile, and the reload applies once the FIFO
    delivers the new file."""
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1])
    path = lb.config_path
    new_text = path.read_text().replace(harness.toml_value(harness.server_entry(b1)),
                                        harness.toml_value(harness.server_entry(b2)))
    assert new_text != path.read_text()
    path.unlink()
    os.mkfifo(path)
    lb.popen.send_signal(signal.SIGHUP)
    writer = None
    try:
        deadline = time.monotonic() + 1.0
        served = 0
        while time.monotonic() < deadline:
            r = request_once(lb.addr, "GET", "/", timeout=2.0)
            assert r.status == 200 and r.header("X-Backend") == "b1"
            served += 1
        assert served >= 5, f"only {served} requests answered in 1 s while the reload waited"
        assert "configuration reloaded" not in lb.log_path.read_text()

        def feed():
            with open(path, "w") as f:  # blocks until the reload opens it
                f.write(new_text)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        wait_for_log(lb, "backends added")
        assert request_once(lb.addr, "GET", "/").header("X-Backend") == "b2"
    finally:
        if writer is None or writer.is_alive():
            # Unblock a reader still waiting on the FIFO, then leave a file.
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            os.close(fd)
        path.unlink()
        path.write_text(new_text)


def _feed_fifo(path, text: str) -> threading.Thread:
    """Writes `text` into the FIFO at `path` once a reader opens it."""

    def feed():
        with open(path, "w") as f:
            f.write(text)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


def test_signals_during_start_up_wait_until_the_loop_runs(backend_factory, started_procs, tmp_path):
    """SIGHUP, SIGUSR1 and SIGUSR2 sent while ekilibri is still reading its
    configuration (here a FIFO nobody writes yet, standing in for a slow
    resolver) must not kill it: they are acted on once it runs."""
    (b1,) = backend_factory(1)
    cfg = tmp_path / "starting.toml"
    os.mkfifo(cfg)
    text = harness.config_text([harness.server_entry(b1)])
    lb = harness.spawn("ekilibri", [harness.ekilibri_bin(), "-f", cfg], tmp_path)
    started_procs.append(lb)
    # Wait until the process is in main() with SIGHUP (bit 0) blocked: a
    # signal sent before that, while the program loads, would kill any
    # program (there is no handler yet).
    deadline = time.monotonic() + 10
    while True:
        status = Path(f"/proc/{lb.pid}/status").read_text()
        blocked = int(next(l.split()[1] for l in status.splitlines() if l.startswith("SigBlk:")), 16)
        if blocked & 1:
            break
        assert lb.alive() and time.monotonic() < deadline, lb.log_tail()
        time.sleep(0.005)
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        lb.popen.send_signal(sig)
    writer = _feed_fifo(cfg, text)
    lb.wait_listening()
    writer.join(5)
    assert request_once(lb.addr, "GET", "/").status == 200
    # The SIGHUP from start-up now reloads: it reads the FIFO again.
    writer = _feed_fifo(cfg, text)
    log = wait_for_log(lb, "configuration reloaded: no change")
    assert "SIGUSR2 ignored" in log
    writer.join(5)
    assert lb.alive()
    assert request_once(lb.addr, "GET", "/").status == 200


def serves(addr: str) -> str | None:
    """The backend that answers a GET on a new connection to `addr`, or
    None if nothing listens there."""
    try:
        r = request_once(addr, "GET", "/", timeout=2)
    except OSError:
        return None
    return r.header("X-Backend")


def test_a_failed_reload_changes_nothing_and_the_next_one_applies(backend_factory, ekilibri_factory):
    """A reload that fails late (the access log cannot be opened) must not
    have moved the listener or switched the backends already; and the next
    reload must compare with the configuration that really runs."""
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1])
    new_addr = harness.dead_address()
    bad = harness.config_text([harness.server_entry(b2)], listen=new_addr, access_log="/nonexistent-dir/access.log")
    lb.config_path.write_text(bad)
    lb.popen.send_signal(signal.SIGHUP)
    wait_for_log(lb, "reload failed")
    assert serves(lb.addr) == "b1", "the failed reload moved the listener or the backends"
    assert serves(new_addr) is None, "the failed reload listens on the new address"
    lb.config_path.write_text(harness.config_text([harness.server_entry(b2)], listen=new_addr))
    lb.popen.send_signal(signal.SIGHUP)
    wait_for_log(lb, "configuration reloaded")
    assert serves(new_addr) == "b2"
    assert serves(lb.addr) is None


def test_admin_listener_survives_a_reload_that_cannot_bind_the_new_one(backend_factory, ekilibri_factory):
    from test_admin import admin_addr

    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], admin_listen="127.0.0.1:0")
    admin = admin_addr(lb)
    good = lb.config_path.read_text()
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        lb.config_path.write_text(good.replace('admin_listen = "127.0.0.1:0"', f'admin_listen = "{busy}"'))
        lb.popen.send_signal(signal.SIGHUP)
        wait_for_log(lb, "reload failed")
        assert request_once(admin, "GET", "/status.json").status == 200
        lb.config_path.write_text(good)
        lb.popen.send_signal(signal.SIGHUP)
        wait_for_log(lb, "configuration reloaded: no change")
        assert request_once(admin, "GET", "/status.json").status == 200
    finally:
        taken.close()


def test_unchanged_file_reloads_as_no_change_in_every_worker(backend_factory, ekilibri_factory):
    """With port 0, workers after the first bind the port the first one got;
    a reload of the same file must not move them to new ports."""
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], workers=2, admin_listen="127.0.0.1:0")
    lb.popen.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in lb.log_path.read_text().splitlines() if "configuration reloaded" in line]
        if len(lines) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(lines) == 2 and all(line.endswith("configuration reloaded: no change") for line in lines), lines
    for _ in range(20):
        assert serves(lb.addr) == "b1"


def test_admin_listener_moved_to_the_same_port_on_another_address_keeps_the_old_one(backend_factory, ekilibri_factory):
    """127.0.0.1:P to 0.0.0.0:P cannot be bound beside the running listener:
    the reload fails and changes nothing (closing the running listener first
    could fail after and lose it, and resets its backlog)."""
    from test_admin import admin_addr

    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], admin_listen="127.0.0.1:0")
    admin = admin_addr(lb)
    port = admin.rsplit(":", 1)[1]
    good = lb.config_path.read_text()
    lb.config_path.write_text(good.replace('admin_listen = "127.0.0.1:0"', f'admin_listen = "0.0.0.0:{port}"'))
    lb.popen.send_signal(signal.SIGHUP)
    wait_for_log(lb, f"reload failed, keeping the running configuration: cannot listen on 0.0.0.0:{port}")
    assert request_once(admin, "GET", "/status.json").status == 200
    assert serves(lb.addr) == "b1"


def test_workers_apply_one_read_of_the_file(backend_factory, ekilibri_factory):
    """With `workers = 2` the file is read once and both workers apply that
    one result: reading it once per worker could give the workers two
    different configurations. The file is a FIFO written exactly once; a
    second reader would get nothing (or wait for ever)."""
    b1, b2 = backend_factory(2)
    lb = ekilibri_factory([b1], workers=2)
    path = lb.config_path
    new_text = path.read_text().replace(harness.toml_value(harness.server_entry(b1)),
                                        harness.toml_value(harness.server_entry(b2)))
    path.unlink()
    os.mkfifo(path)
    lb.popen.send_signal(signal.SIGHUP)
    writer = _feed_fifo(path, new_text)
    try:
        writer.join(timeout=5)
        assert not writer.is_alive(), "the reload never opened the file"
        deadline = time.monotonic() + 5
        while True:
            log = lb.log_path.read_text()
            applied = [line for line in log.splitlines() if "configuration reloaded" in line]
            if len(applied) == 2 or "reload failed" in log or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert "reload failed" not in log, log
        assert len(applied) == 2 and all("backends added" in line for line in applied), log
        # New connections land on both workers; every one goes to b2 now.
        for _ in range(20):
            assert serves(lb.addr) == "b2"
    finally:
        if writer.is_alive():
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            os.close(fd)
        path.unlink()
        path.write_text(new_text)


def test_a_sighup_during_a_slow_read_is_logged_once_with_two_workers(backend_factory, ekilibri_factory):
    """A reload whose read hangs (here a FIFO nobody writes) must show in
    the log, once per signal, not once per worker."""
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], workers=2)
    path = lb.config_path
    text = path.read_text()
    path.unlink()
    os.mkfifo(path)
    try:
        lb.popen.send_signal(signal.SIGHUP)
        wait_for_log(lb, "SIGHUP received, reloading")
        lb.popen.send_signal(signal.SIGHUP)
        wait_for_log(lb, "still reading its file")
        time.sleep(0.3)  # room for a second worker's line
        log = lb.log_path.read_text()
        assert log.count("SIGHUP received, reloading") == 1, log
        assert log.count("still reading its file") == 1, log
        assert serves(lb.addr) == "b1"
    finally:
        # Unblock the read, and leave a file for the one after it.
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        os.close(fd)
        path.unlink()
        path.write_text(text)


def test_reload_to_port_0_with_two_workers_is_refused_not_split(backend_factory, ekilibri_factory, tmp_path):
    """Each worker applies a reload by itself: with port 0 each would bind a
    port of its own, and the clients of one port would reach half the
    workers. The reload fails and says why; the running address stays."""
    import re
    import socket

    (b1,) = backend_factory(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        fixed = "127.0.0.1:%d" % s.getsockname()[1]
    lb = ekilibri_factory([b1], workers=2, listen=fixed)
    text = lb.config_path.read_text()
    lb.config_path.write_text(re.sub(r'^listen = .*$', 'listen = "127.0.0.1:0"', text, flags=re.M))
    lb.popen.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        log = lb.log_path.read_text()
        failed = [line for line in log.splitlines() if "reload failed" in line]
        if len(failed) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(failed) == 2 and all("port 0" in line for line in failed), log
    assert "configuration reloaded" not in log, log
    for _ in range(10):
        assert serves(fixed) == "b1"


def reload_outcomes(lb, n: int, timeout: float = 5.0) -> list[str]:
    """Waits for `n` reload outcome lines (`configuration reloaded` or
    `reload failed`) in the log, and returns them all."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in lb.log_path.read_text().splitlines()
                 if "reload failed" in line or "configuration reloaded" in line]
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_reload_to_a_port_another_process_shares_with_reuseport_is_refused(backend_factory, ekilibri_factory):
    """With workers = 2 the workers bind a new listen address with
    SO_REUSEPORT, which also succeeds beside another process's SO_REUSEPORT
    socket and silently takes part of its connections. The reload checks the
    address first, as start-up does: it is refused, every worker says why,
    and the running address stays. Once the other socket has gone, the same
    file applies."""
    (b1,) = backend_factory(1)
    lb = ekilibri_factory([b1], workers=2)
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # As servers do: else the connections it closes would keep the port
    # busy in TIME_WAIT for a bind without SO_REUSEPORT after it has gone.
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", 0))
    other.listen(64)
    other.setblocking(False)
    port = other.getsockname()[1]
    taken = f"127.0.0.1:{port}"
    try:
        lb.config_path.write_text(harness.config_text([harness.server_entry(b1)], workers=2, listen=taken))
        lb.popen.send_signal(signal.SIGHUP)
        outcomes = reload_outcomes(lb, 2)
        assert len(outcomes) == 2 and all(
            "reload failed" in line and f"key `listen`: cannot listen on {taken}" in line for line in outcomes
        ), lb.log_tail()
        for _ in range(10):
            assert serves(lb.addr) == "b1"
        # Every connection to the taken port reaches the other process.
        conns = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(8)]
        try:
            accepted = 0
            deadline = time.monotonic() + 2
            while accepted < len(conns) and time.monotonic() < deadline:
                try:
                    other.accept()[0].close()
                    accepted += 1
                except BlockingIOError:
                    time.sleep(0.01)
            assert accepted == len(conns), f"{len(conns) - accepted} of {len(conns)} connections went elsewhere"
        finally:
            for c in conns:
                c.close()
    finally:
        other.close()
    old = lb.addr
    lb.popen.send_signal(signal.SIGHUP)
    outcomes = reload_outcomes(lb, 4)
    assert len(outcomes) == 4 and all(
        f"configuration reloaded: listening on {taken}" in line for line in outcomes[2:]
    ), lb.log_tail()
    for _ in range(10):
        assert serves(taken) == "b1"
    assert serves(old) is None
