"""A small raw HTTP/1.1 client over one socket, for tests where framing matters.

`HttpConnection` writes requests byte by byte as given and reads responses
with the framing rules of RFC 9112 section 6.3: no body for HEAD and for 1xx,
204 and 304; otherwise chunked, then Content-Length, then read-until-close.
One connection is reused for every request, so a test sees exactly when the
server closes it. Nothing here retries or reconnects: an early close is an
error the test gets to see.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from wire import HeaderLookup

RECV_SIZE = 256 * 1024
MAX_HEAD = 64 * 1024


class ProtocolError(AssertionError):
    """The peer sent something that is not a well-framed HTTP/1.1 response."""


class ConnectionClosed(ProtocolError):
    """The peer closed the connection before a complete response was read."""


@dataclass
class Response(HeaderLookup):
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    # None when the body was handed to a sink instead of kept.
    body: Optional[bytes]
    # "none", "length", "chunked" or "close": how the body was delimited.
    framing: str
    body_len: int = 0
    chunk_count: int = 0
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def has_token(self, name: str, token: str) -> bool:
        """Whether a comma-separated header such as Connection holds `token`."""
        token = token.lower()
        for v in self.header_all(name):
            if token in (t.strip().lower() for t in v.split(",")):
                return True
        return False

    def __repr__(self) -> str:
        body = self.body if self.body is None or len(self.body) <= 80 else self.body[:80] + b"..."
        return (
            f"Response({self.version} {self.status} {self.reason!r}, framing={self.framing}, "
            f"body_len={self.body_len}, headers={self.headers!r}, body={body!r})"
        )


def _chunked_pieces(pieces: Iterable[bytes]) -> Iterable[bytes]:
    for p in pieces:
        if p:
            yield b"%x\r\n" % len(p) + bytes(p) + b"\r\n"
    yield b"0\r\n\r\n"


class HttpConnection:
    """One client TCP connection speaking HTTP/1.1, reused across requests."""

    def __init__(self, addr: str, timeout: float = 10.0):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.timeout = timeout
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self.requests_sent = 0

    # ----------------------------------------------------------------- writing

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def build_head(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        version: str = "HTTP/1.1",
        host: Optional[str] = "default",
    ) -> bytearray:
        lines = bytearray(f"{method} {target} {version}\r\n".encode("latin-1"))
        headers = list(headers)
        if host == "default":
            host = self.addr
        if host is not None and not any(k.lower() == "host" for k, _ in headers):
            lines += f"Host: {host}\r\n".encode("latin-1")
        for k, v in headers:
            lines += f"{k}: {v}\r\n".encode("latin-1")
        lines += b"\r\n"
        return lines

    def send_request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: Optional[bytes | Iterable[bytes]] = None,
        chunked: bool = False,
        content_length: Optional[int] = None,
        version: str = "HTTP/1.1",
        host: Optional[str] = "default",
    ) -> None:
        """Writes one request. `body` is bytes or an iterable of byte pieces
        (streamed as they come; with chunked=True each piece is one chunk)."""
        headers = list(headers)
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif body is not None:
            if content_length is None:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise ValueError("a streamed body without chunked needs content_length")
                content_length = len(body)
            headers.append(("Content-Length", str(content_length)))
        head = self.build_head(method, target, headers, version, host)
        self.requests_sent += 1
        if body is None:
            self.send(bytes(head))
            return
        pieces: Iterable[bytes] = [body] if isinstance(body, (bytes, bytearray, memoryview)) else body
        if chunked:
            pieces = _chunked_pieces(pieces)
        first = True
        for p in pieces:
            if first:
                # Head and first piece together, as most clients do.
                self.send(bytes(head) + bytes(p))
                first = False
            else:
                self.send(p)
        if first:
            self.send(bytes(head))

    # ----------------------------------------------------------------- reading

    def _fill(self) -> bool:
        """Reads more bytes into the buffer; False on EOF."""
        if self._eof:
            return False
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > RECV_SIZE:
            del self._buf[: self._pos]
            self._pos = 0
        try:
            data = self.sock.recv(RECV_SIZE)
        except ConnectionResetError:
            data = b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _buffered(self) -> int:
        return len(self._buf) - self._pos

    def _readline(self, what: str) -> bytes:
        while True:
            i = self._buf.find(b"\n", self._pos)
            if i >= 0:
                line = bytes(self._buf[self._pos : i + 1])
                self._pos = i + 1
                return line
            if self._buffered() > MAX_HEAD:
                raise ProtocolError(f"{what}: line longer than {MAX_HEAD} bytes")
            if not self._fill():
                partial = bytes(self._buf[self._pos :])
                raise ConnectionClosed(f"connection closed while reading {what} (got {partial[:200]!r})")

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    def _read_exact(self, n: int, sink: Callable[[bytes], None], what: str) -> None:
        remaining = n
        while remaining:
            if self._buffered() == 0 and not self._fill():
                raise ConnectionClosed(f"connection closed with {remaining} of {n} bytes of {what} unread")
            piece = self._take(min(remaining, self._buffered()))
            sink(piece)
            remaining -= len(piece)

    def _read_to_eof(self, sink: Callable[[bytes], None]) -> int:
        total = 0
        while True:
            if self._buffered():
                piece = self._take(self._buffered())
                sink(piece)
                total += len(piece)
            if not self._fill():
                return total

    def _read_head(self) -> tuple[str, int, str, list[tuple[str, str]]]:
        status_line = self._readline("status line")
        if not status_line.endswith(b"\r\n"):
            raise ProtocolError(f"status line not ended by CRLF: {status_line!r}")
        parts = status_line[:-2].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise ProtocolError(f"bad status line: {status_line!r}")
        version, status, reason = parts[0], int(parts[1]), (parts[2] if len(parts) > 2 else "")
        headers = self._read_fields("header")
        return version, status, reason, headers

    def _read_fields(self, what: str) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        size = 0
        while True:
            line = self._readline(what)
            size += len(line)
            if size > MAX_HEAD:
                raise ProtocolError(f"{what} section larger than {MAX_HEAD} bytes")
            if line == b"\r\n":
                return fields
            if not line.endswith(b"\r\n") or b":" not in line:
                raise ProtocolError(f"bad {what} line: {line!r}")
            k, v = line[:-2].decode("latin-1").split(":", 1)
            if k != k.strip() or not k:
                raise ProtocolError(f"bad {what} name: {line!r}")
            fields.append((k, v.strip(" \t")))

    def read_response(
        self, method: str = "GET", sink: Optional[Callable[[bytes], None]] = None, skip_interim: bool = True
    ) -> Response:
        """Reads one complete response. With `sink`, body bytes go to it as
        they arrive and `Response.body` is None."""
        while True:
            version, status, reason, headers = self._read_head()
            if 100 <= status < 200 and skip_interim and status != 101:
                continue
            break
        kept: list[bytes] = []
        counter = [0]

        def deliver(piece: bytes) -> None:
            counter[0] += len(piece)
            if sink is None:
                kept.append(piece)
            else:
                sink(piece)

        resp = Response(version, status, reason, headers, None, "none")
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if method.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304):
            resp.framing = "none"
        elif te:
            codings = [t.strip().lower() for v in te for t in v.split(",")]
            if codings[-1] != "chunked":
                resp.framing = "close"
                self._read_to_eof(deliver)
            else:
                if cl:
                    raise ProtocolError(f"response has both Transfer-Encoding and Content-Length: {headers!r}")
                resp.framing = "chunked"
                self._read_chunked(deliver, resp)
        elif cl:
            values = {v.strip() for item in cl for v in item.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ProtocolError(f"bad Content-Length: {cl!r}")
            resp.framing = "length"
            self._read_exact(int(next(iter(values))), deliver, "body")
        else:
            resp.framing = "close"
            self._read_to_eof(deliver)
        resp.body_len = counter[0]
        if sink is None:
            resp.body = b"".join(kept)
        return resp

    def _read_chunked(self, deliver: Callable[[bytes], None], resp: Response) -> None:
        while True:
            line = self._readline("chunk size")
            if not line.endswith(b"\r\n"):
                raise ProtocolError(f"chunk size line not ended by CRLF: {line!r}")
            size_txt = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size line: {line!r}") from None
            if size == 0:
                resp.trailers = self._read_fields("trailer")
                return
            resp.chunk_count += 1
            self._read_exact(size, deliver, "chunk")
            crlf = self._readline("chunk end")
            if crlf != b"\r\n":
                raise ProtocolError(f"chunk data not followed by CRLF: {crlf!r}")

    # -------------------------------------------------------------- together

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: Optional[bytes | Iterable[bytes]] = None,
        chunked: bool = False,
        content_length: Optional[int] = None,
        sink: Optional[Callable[[bytes], None]] = None,
        version: str = "HTTP/1.1",
        host: Optional[str] = "default",
    ) -> Response:
        """Sends one request and reads its response. A streamed (iterable)
        body is written from a second thread while this one reads, as a real
        client does, so a server that echoes while it reads cannot deadlock."""
        streamed = body is not None and not isinstance(body, (bytes, bytearray, memoryview))
        if not streamed:
            self.send_request(method, target, headers, body, chunked, content_length, version, host)
            return self.read_response(method, sink)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                self.send_request(method, target, headers, body, chunked, content_length, version, host)
            except BaseException as e:  # reported after the read
                errors.append(e)

        t = threading.Thread(target=writer, name="rawhttp-writer", daemon=True)
        t.start()
        try:
            resp = self.read_response(method, sink)
        except BaseException:
            t.join(1)
            if errors:
                raise ProtocolError(f"upload failed too: {errors[0]!r}")
            raise
        t.join(self.timeout)
        if t.is_alive():
            raise ProtocolError("response complete but the upload has not finished")
        if errors:
            raise ProtocolError(f"upload failed: {errors[0]!r}")
        return resp

    def get(self, target: str, **kw) -> Response:
        return self.request("GET", target, **kw)

    # ------------------------------------------------------------ connection

    def pending(self, wait: float = 0.2) -> Optional[bytes]:
        """Bytes that arrive within `wait` s without a request: b"" if none,
        None if the peer closed the connection instead."""
        if self._buffered():
            return self._take(self._buffered())
        if self._eof:
            return None
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(RECV_SIZE)
        except (socket.timeout, TimeoutError):
            return b""
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self._eof = True
            return None
        return data

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True if the peer closes the connection within `timeout` s, sending
        nothing more; raises if it sends bytes instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.pending(min(0.1, max(0.0, deadline - time.monotonic())) or 0.01)
            if got is None:
                return True
            if got:
                raise ProtocolError(f"expected the connection to close, got bytes {got[:200]!r}")
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "HttpConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def request_once(addr: str, method: str, target: str, timeout: float = 10.0, **kw) -> Response:
    """One request on a fresh connection, closed afterwards."""
    with HttpConnection(addr, timeout=timeout) as c:
        return c.request(method, target, **kw)
