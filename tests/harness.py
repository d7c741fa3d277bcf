"""Process and socket helpers for the integration tests.

Processes write stdout and stderr to one log file in the test's tmp_path
(never an undrained PIPE, which would block a chatty child). Readiness is the
`listening on ADDR` line in that log; ports are always 0, so the address comes
from the process itself. Only processes started here are ever stopped, by PID.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest
from wire import HeaderLookup

REPO_ROOT = Path(__file__).resolve().parents[1]
LISTEN_RE = re.compile(rb"listening on (\S+?:\d+)")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
LOG_TAIL = 12_000


# ------------------------------------------------------------------ binaries


def _target_dir() -> Path:
    t = os.environ.get("CARGO_TARGET_DIR")
    if not t:
        return REPO_ROOT / "target"
    p = Path(t)
    return p if p.is_absolute() else REPO_ROOT / p


def binary(name: str, env_var: str) -> Path:
    """The path of a release binary: $ENV_VAR if set, else target/release/NAME."""
    override = os.environ.get(env_var)
    path = Path(override) if override else _target_dir() / "release" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"binary {name!r} not found at {path}: run `cargo build --release --bins` "
            f"(or set {env_var} to its path)",
            pytrace=False,
        )
    return path


def ekilibri_bin() -> Path:
    return binary("ekilibri", "EKILIBRI_BIN")


def command_bin() -> Path:
    return binary("command", "COMMAND_BIN")


def child_env(extra: Optional[dict] = None) -> dict:
    """The environment for a child: info logs, no colour codes in log files."""
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    env["RUST_LOG_STYLE"] = "never"
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


# ----------------------------------------------------------------- processes


class Proc:
    """A child process started by a test, with its log file and bound address."""

    def __init__(self, name: str, argv: list[str], log_path: Path, popen: subprocess.Popen):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.popen = popen
        self.addr: Optional[str] = None
        self.config_path: Optional[Path] = None
        self.stopped = False  # stopped on purpose (by a test or the fixture)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def host(self) -> str:
        assert self.addr
        return self.addr.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        assert self.addr
        return int(self.addr.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"

    def log_tail(self, limit: int = LOG_TAIL) -> str:
        text = self.log()
        if len(text) > limit:
            text = f"... ({len(text) - limit} chars cut) ...\n" + text[-limit:]
        return text or "<empty log>"

    def describe(self) -> str:
        rc = self.popen.poll()
        state = "running" if rc is None else f"exited with code {rc}"
        return f"{self.name} (pid {self.pid}, {state}): {' '.join(map(str, self.argv))}"

    def wait_listening(self, timeout: float = START_TIMEOUT) -> str:
        """Polls the log for `listening on ADDR`; fails fast if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.log_path.read_bytes()
            except OSError:
                data = b""
            m = LISTEN_RE.search(data)
            if m:
                self.addr = m.group(1).decode()
                return self.addr
            if self.popen.poll() is not None:
                self.stopped = True  # reported here, not again at teardown
                pytest.fail(
                    f"{self.describe()} before printing 'listening on'.\n--- log ---\n{self.log_tail()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"{self.describe()}: no 'listening on' line within {timeout} s.\n--- log ---\n{self.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def stop(self) -> Optional[int]:
        """terminate, wait up to 5 s, then kill. Only this process, by its PID."""
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL, for a backend that must vanish at once."""
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT)

    def vm_hwm_bytes(self) -> Optional[int]:
        """Peak resident set size (Linux VmHWM), or None where unknown."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None


def spawn(name: str, argv: list, log_dir: Path, env: Optional[dict] = None) -> Proc:
    log_path = log_dir / f"{name}.log"
    n = 1
    while log_path.exists():
        n += 1
        log_path = log_dir / f"{name}.{n}.log"
    argv = [str(a) for a in argv]
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(log_dir),
            env=env if env is not None else child_env(),
        )
    return Proc(name, argv, log_path, popen)


# -------------------------------------------------------------------- config

DEFAULT_CONFIG = {
    "strategy": "RoundRobin",
    "max_fails": 3,
    "fail_window": 10,
    "connection_timeout": 1000,
    "write_timeout": 5000,
    "read_timeout": 5000,
    "health_check_path": "/health",
    "pool_size": 16,
    "listen": "127.0.0.1:0",
    "health_check_interval": 1000,
    "client_header_timeout": 5000,
    "keepalive_timeout": 30000,
}


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a valid TOML basic string for these values
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def config_text(servers: Iterable[str], **overrides) -> str:
    """TOML text: every key of DEFAULT_CONFIG, overridden; None drops a key."""
    values = {"servers": list(servers), **DEFAULT_CONFIG, **overrides}
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items() if v is not None)


def weighted(server, weight: int) -> dict:
    """A `servers` entry with a weight: {address = "host:port", weight = N}."""
    return {"address": address_of(server), "weight": weight}


def server_entry(server):
    """A `servers` entry: "host:port", or a {address, weight} table as is
    (its address may still be a Proc or a RawBackend)."""
    if isinstance(server, dict):
        return {**server, "address": address_of(server["address"])}
    return address_of(server)


def address_of(server) -> str:
    """A backend's "host:port" from a Proc, a RawBackend or a string."""
    addr = server if isinstance(server, str) else getattr(server, "addr", None)
    if not addr:
        raise ValueError(f"no address for {server!r}")
    return addr


# ------------------------------------------------------------------- sockets


def dead_address() -> str:
    """An address nobody listens on: bind port 0, note the port, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


@dataclass
class RecordedRequest(HeaderLookup):
    conn_id: int
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes


@dataclass
class RawBackend:
    """A Python HTTP/1.1 backend on raw sockets that records every request.

    It answers every request with 200 and the body "NAME METHOD TARGET\\n"
    (Content-Length framing, header X-Backend: NAME). `requests_per_conn`
    closes a connection right after that many responses, without announcing
    it; `idle_close` closes a connection idle that many seconds, as a server
    with a short keep-alive timeout does. Neither sends `Connection: close`;
    `announce_close` does, and closes after every response. `backlog` is the
    listen backlog; `blackhole()` makes connects to the backend time out.

    `hang_path`: a request for exactly that target gets no answer for
    `hang_seconds` (then the normal one). `status_for` maps a target to the
    status to answer instead of 200 (the dict may be changed while the
    backend runs). `drop_after_request` ("close" or "reset") reads each
    request completely, records it, and then closes the connection without a
    response byte: with a FIN ("close") or an RST ("reset").
    """

    name: str = "raw"
    requests_per_conn: Optional[int] = None
    idle_close: Optional[float] = None
    backlog: int = 128
    # Send "Connection: close" and close after every response.
    announce_close: bool = False
    hang_path: Optional[str] = None
    hang_seconds: float = 3.0
    status_for: dict = field(default_factory=dict)
    drop_after_request: Optional[str] = None
    requests: list[RecordedRequest] = field(default_factory=list)
    connections: int = 0
    closed_by_backend: int = 0
    # Every byte received, exactly as it came, per connection id (1-based).
    received: dict = field(default_factory=dict)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(self.backlog)
        self.sock.settimeout(0.05)
        self._accepting = threading.Event()
        self._accepting.set()
        self._paused = threading.Event()
        self._fillers: list[socket.socket] = []
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        t = threading.Thread(target=self._accept_loop, name=f"raw-{self.name}-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def requests_for(self, target: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.target == target]

    def blackhole(self) -> bool:
        """Stops accepting and fills the accept queue, so that from now on a
        connect to this backend times out. True if a probe connect did."""
        self._accepting.clear()
        self._paused.wait(2)
        host, port = self.addr.rsplit(":", 1)
        for _ in range(self.backlog + 8):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect((host, int(port)))
            except BlockingIOError:
                pass
            self._fillers.append(c)
        time.sleep(0.05)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.3)
        try:
            probe.connect((host, int(port)))
            return False
        except (socket.timeout, TimeoutError):
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if not self._accepting.is_set():
                self._paused.set()
                time.sleep(0.02)
                continue
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.connections += 1
                conn_id = self.connections
                self._conns.add(conn)
                self.received[conn_id] = bytearray()
            t = threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket, conn_id: int) -> None:
        buf = bytearray()
        served = 0
        try:
            conn.settimeout(self.idle_close if self.idle_close is not None else 0.5)

            def fill() -> bool:
                while True:
                    try:
                        data = conn.recv(65536)
                    except (socket.timeout, TimeoutError):
                        if self.idle_close is not None or self._stop.is_set():
                            raise
                        continue
                    if not data:
                        return False
                    with self._lock:
                        self.received[conn_id] += data
                    buf.extend(data)
                    return True

            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    if not fill():
                        return
                end = buf.index(b"\r\n\r\n") + 4
                raw_head = bytes(buf[:end])
                del buf[:end]
                lines = raw_head[:-4].decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    k, v = line.split(":", 1)
                    headers.append((k, v.strip()))
                hmap = {k.lower(): v for k, v in headers}
                body = bytearray()
                if "chunked" in hmap.get("transfer-encoding", "").lower():
                    while True:
                        while b"\r\n" not in buf:
                            if not fill():
                                return
                        i = buf.index(b"\r\n")
                        size = int(bytes(buf[:i]).split(b";")[0], 16)
                        del buf[: i + 2]
                        if size == 0:
                            while b"\r\n" not in buf:
                                if not fill():
                                    return
                            # trailers: skip lines until the empty one
                            while not buf.startswith(b"\r\n"):
                                i = buf.index(b"\r\n")
                                del buf[: i + 2]
                                while b"\r\n" not in buf:
                                    if not fill():
                                        return
                            del buf[:2]
                            break
                        while len(buf) < size + 2:
                            if not fill():
                                return
                        body += buf[:size]
                        del buf[: size + 2]
                elif "content-length" in hmap:
                    n = int(hmap["content-length"])
                    while len(buf) < n:
                        if not fill():
                            return
                    body += buf[:n]
                    del buf[:n]
                with self._lock:
                    self.requests.append(
                        RecordedRequest(conn_id, method, target, version, headers, bytes(body), raw_head)
                    )
                if self.drop_after_request is not None:
                    if self.drop_after_request == "reset":
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return  # `finally` closes: FIN, or RST with linger 0
                if self.hang_path is not None and target == self.hang_path:
                    if self._stop.wait(self.hang_seconds):
                        return
                status = self.status_for.get(target, 200)
                reason = "OK" if status == 200 else "Test Status"
                payload = f"{self.name} {method} {target}\n".encode()
                head = (
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(payload)}\r\n"
                    f"X-Backend: {self.name}\r\n"
                    + ("Connection: close\r\n" if self.announce_close else "")
                    + "\r\n"
                ).encode()
                conn.sendall(head if method == "HEAD" else head + payload)
                served += 1
                conn_tokens = {t.strip().lower() for t in hmap.get("connection", "").split(",")}
                if self.announce_close or "close" in conn_tokens or (version == "HTTP/1.0" and "keep-alive" not in conn_tokens):
                    return
                if self.requests_per_conn is not None and served >= self.requests_per_conn:
                    with self._lock:
                        self.closed_by_backend += 1
                    return
        except (OSError, ValueError):
            if self.idle_close is not None and not self._stop.is_set():
                with self._lock:
                    self.closed_by_backend += 1
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        for c in self._fillers:
            c.close()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(2)


# ------------------------------------------------------------ scripted backend


class BackendConn:
    """One connection accepted by a ScriptedBackend, handed to its script.

    Every byte received is appended to `raw`, exactly as it came, before any
    parsing; `buf` holds what the script has not consumed yet."""

    def __init__(self, owner: "ScriptedBackend", sock: socket.socket, index: int):
        self.owner = owner
        self.sock = sock
        self.index = index  # 1-based, in accept order
        self.raw = bytearray()
        self.buf = bytearray()
        self.sent = bytearray()
        self.eof = False
        self.closed_by_us = False
        self.requests: list = []  # wire.Request objects read by the script
        self.finished = threading.Event()  # the script returned
        self.peer_closed: Optional[bool] = None  # set by scripts that watch for it

    def _fill(self, timeout: float) -> bool:
        """Reads more bytes; False on EOF (or reset). Raises TimeoutError."""
        if self.eof:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise TimeoutError(f"{self.owner.name} conn {self.index}: nothing received within {timeout:.1f} s")
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.eof = True
            return False
        with self.owner._lock:
            self.raw += data
        self.buf += data
        return True

    def read_request(self, timeout: float = 5.0):
        """The next request, strictly parsed (wire.parse_request), or None if
        the peer closed with nothing pending. A malformed or truncated request
        raises wire.Malformed (and is recorded as a backend error)."""
        import wire

        deadline = time.monotonic() + timeout
        while True:
            try:
                req, end = wire.parse_request(bytes(self.buf))
            except wire.Incomplete:
                if not self._fill(deadline - time.monotonic()):
                    if self.buf:
                        raise wire.Malformed(f"connection closed inside a request: {bytes(self.buf[:300])!r}")
                    return None
                continue
            del self.buf[:end]
            self.requests.append(req)
            return req

    def read_head(self, timeout: float = 5.0):
        """The next request head only (the body stays unread), or None on EOF."""
        import wire

        deadline = time.monotonic() + timeout
        while True:
            try:
                req, end = wire.parse_head(bytes(self.buf))
            except wire.Incomplete:
                if not self._fill(deadline - time.monotonic()):
                    return None
                continue
            del self.buf[:end]
            return req

    def read_body(self, req, timeout: float = 5.0):
        """Reads the body of a head from read_head into it."""
        import wire

        deadline = time.monotonic() + timeout
        while True:
            try:
                if req.framing == "length":
                    if len(self.buf) < req.length:
                        raise wire.Incomplete()
                    req.body = bytes(self.buf[: req.length])
                    end = req.length
                elif req.framing == "chunked":
                    end = wire.parse_chunked(bytes(self.buf), 0, req)
                else:
                    end = 0
            except wire.Incomplete:
                if not self._fill(deadline - time.monotonic()):
                    raise wire.Malformed("connection closed inside a request body")
                continue
            req.raw = req.raw_head + bytes(self.buf[:end])
            del self.buf[:end]
            self.requests.append(req)
            return req

    def recv_some(self, timeout: float = 5.0) -> bytes:
        """Whatever arrives next (b"" on EOF), bypassing HTTP parsing."""
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            return data
        if not self._fill(timeout):
            return b""
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True if the peer closes within `timeout` s (bytes that arrive in
        the meantime are recorded in `raw`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._fill(min(0.1, deadline - time.monotonic())):
                    return True
            except TimeoutError:
                continue
        return False

    def send(self, data: bytes) -> None:
        self.sent += data
        self.sock.sendall(data)

    def close(self, reset: bool = False) -> None:
        self.closed_by_us = True
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.sock.close()
        except OSError:
            pass


def ok_response(body: bytes, extra: str = "", close: bool = False) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    ).encode("latin-1") + body


def serve_default(bc: BackendConn) -> None:
    """Answers every request with 200 and "NAME METHOD TARGET BODYLEN\\n"."""
    while True:
        req = bc.read_request(timeout=30)
        if req is None:
            return
        payload = f"{bc.owner.name} {req.method} {req.target} {len(req.body)}\n".encode()
        close = any(t.lower() == "close" for t in req.list_values("connection"))
        bc.send(ok_response(b"" if req.method == "HEAD" else payload, f"X-Backend: {bc.owner.name}\r\n", close))
        if close:
            return


class ScriptedBackend:
    """A raw TCP backend: each accepted connection runs `script(conn)` (a
    BackendConn) in a thread of its own; the default script serves every
    request with 200. Every byte received is recorded per connection,
    exactly, so tests can check what a proxy forwarded down to the byte.
    Exceptions raised by scripts are kept in `errors`."""

    def __init__(self, name: str = "scripted", script=None):
        self.name = name
        self.script = script or serve_default
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.conns: list[BackendConn] = []
        self.errors: list[str] = []
        self._threads: list[threading.Thread] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.05)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        t = threading.Thread(target=self._accept_loop, name=f"scripted-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            with self._lock:
                bc = BackendConn(self, sock, len(self.conns) + 1)
                self.conns.append(bc)
            t = threading.Thread(target=self._run, args=(bc,), daemon=True)
            t.start()
            self._threads.append(t)

    def _run(self, bc: BackendConn) -> None:
        try:
            self.script(bc)
        except Exception as e:  # noqa: BLE001 - reported by the tests
            if not self._stop.is_set():
                with self._lock:
                    self.errors.append(f"conn {bc.index}: {type(e).__name__}: {e}")
        finally:
            bc.close()
            bc.finished.set()

    def raw_by_conn(self) -> list[bytes]:
        with self._lock:
            return [bytes(c.raw) for c in self.conns]

    def requests(self) -> list:
        """Every request the scripts read, in connection order."""
        with self._lock:
            return [r for c in self.conns for r in c.requests]

    def wait_conns(self, n: int, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.conns) >= n:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(2)
