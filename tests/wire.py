"""Strict HTTP/1.1 request parsing for checking what a proxy puts on the wire.

Everything ekilibri forwards must pass these rules (RFC 9112), which are
stricter than what a lenient server would accept: CRLF line endings only, no
obs-fold, token method and field names, no whitespace before a colon, field
values without control characters, one request-target without spaces, and
unambiguous framing (never Transfer-Encoding together with Content-Length,
one Content-Length value, chunked as the final coding, a strict chunked body).

`parse_request(buf, pos)` returns `(Request, end)`, raises `Incomplete` when
more bytes are needed and `Malformed` when the bytes are not a valid request.
`split_requests(data)` cuts a whole connection's bytes into requests, for the
"nothing or exactly one well-framed request" checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
VERSION_RE = re.compile(rb"^HTTP/[0-9]\.[0-9]$")
MAX_CHUNK_EXT = 4096


class Incomplete(Exception):
    """More bytes are needed to finish the message."""


class Malformed(AssertionError):
    """The bytes are not a valid HTTP/1.1 request."""


def _is_field_value_byte(b: int) -> bool:
    return b == 0x09 or 0x20 <= b <= 0x7E or b >= 0x80


class HeaderLookup:
    """Case-insensitive lookups in a `headers` list of (name, value) pairs;
    shared by the message classes of wire.py, rawhttp.py and harness.py."""

    headers: list[tuple[str, str]]

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive), in order."""
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


@dataclass
class Request(HeaderLookup):
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    raw_head: bytes
    framing: str = "none"  # "none", "length" or "chunked"
    length: int = 0
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunk_exts: list[bytes] = field(default_factory=list)
    raw: bytes = b""  # the whole message as received, head and body

    def has(self, name: str) -> bool:
        return bool(self.header_all(name))

    def list_values(self, name: str) -> list[str]:
        """Comma-separated list elements of every `name` field, trimmed (quotes are not handled)."""
        return [t.strip() for v in self.header_all(name) for t in v.split(",") if t.strip()]

    def __repr__(self) -> str:
        return f"Request({self.raw[:600]!r}{'...' if len(self.raw) > 600 else ''})"


def parse_fields(block: bytes, what: str) -> list[tuple[str, str]]:
    """Field lines (each ending in CRLF, the final empty line excluded)."""
    fields = []
    for line in block.split(b"\r\n")[:-1]:
        if not line:
            raise Malformed(f"empty {what} line")
        if line[0] in b" \t":
            raise Malformed(f"obs-fold or leading whitespace in {what}: {line!r}")
        if b":" not in line:
            raise Malformed(f"{what} line without colon: {line!r}")
        name, value = line.split(b":", 1)
        if not name or any(b not in TCHAR for b in name):
            raise Malformed(f"invalid {what} name {name!r}")
        if any(not _is_field_value_byte(b) for b in value):
            raise Malformed(f"control character in {what} value {value!r}")
        fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return fields


def parse_head(buf: bytes, pos: int = 0) -> tuple[Request, int]:
    """The request head at `pos`; returns it (body not read) and its end."""
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        if b"\n" in buf[pos:] and re.search(rb"(?<!\r)\n", bytes(buf[pos:])):
            raise Malformed(f"bare LF in head: {bytes(buf[pos:pos + 200])!r}")
        raise Incomplete()
    end += 4
    head = bytes(buf[pos:end])
    if re.search(rb"(?<!\r)\n", head) or re.search(rb"\r(?!\n)", head):
        raise Malformed(f"bare LF or CR in head: {head[:300]!r}")
    line_end = head.index(b"\r\n")
    request_line = head[:line_end]
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise Malformed(f"request line is not METHOD SP TARGET SP VERSION: {request_line!r}")
    method, target, version = parts
    if not method or any(b not in TCHAR for b in method):
        raise Malformed(f"invalid method {method!r}")
    if not target or any(not (0x21 <= b <= 0x7E) for b in target):
        raise Malformed(f"invalid request-target {target!r}")
    if not VERSION_RE.match(version):
        raise Malformed(f"invalid version {version!r}")
    fields = parse_fields(head[line_end + 2 : -2], "header")
    req = Request(method.decode(), target.decode(), version.decode(), fields, head)
    te = req.list_values("transfer-encoding")
    cl = req.header_all("content-length")
    if req.has("transfer-encoding"):
        if cl:
            raise Malformed("both Transfer-Encoding and Content-Length")
        if len(req.header_all("transfer-encoding")) != 1:
            raise Malformed("more than one Transfer-Encoding field")
        if not te or te[-1].lower() != "chunked" or [t.lower() for t in te].count("chunked") != 1:
            raise Malformed(f"Transfer-Encoding not ending in one chunked: {te!r}")
        req.framing = "chunked"
    elif cl:
        if len(cl) != 1 or not re.fullmatch(r"[0-9]+", cl[0]):
            raise Malformed(f"Content-Length must be one field with digits only: {cl!r}")
        req.length = int(cl[0])
        req.framing = "length" if req.length else "none"
    return req, end


def parse_chunked(buf: bytes, pos: int, req: Request) -> int:
    """Decodes a chunked body at `pos` into `req`; returns its end."""
    body = bytearray()
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            if len(buf) - pos > 64 + MAX_CHUNK_EXT:
                raise Malformed("chunk-size line too long")
            raise Incomplete()
        line = bytes(buf[pos:nl])
        if b"\n" in line or b"\r" in line:
            raise Malformed(f"bare CR/LF in chunk-size line {line!r}")
        size_txt, _, ext = line.partition(b";")
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_txt):
            raise Malformed(f"invalid chunk size {size_txt!r}")
        if ext:
            req.chunk_exts.append(ext)
        size = int(size_txt, 16)
        pos = nl + 2
        if size == 0:
            break
        if len(buf) < pos + size + 2:
            raise Incomplete()
        body += buf[pos : pos + size]
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise Malformed("chunk data not followed by CRLF")
        pos += size + 2
    # trailer section
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    if end == pos:
        req.body = bytes(body)
        return pos + 2
    section_end = buf.find(b"\r\n\r\n", pos)
    if section_end < 0:
        raise Incomplete()
    block = bytes(buf[pos : section_end + 2])
    if re.search(rb"(?<!\r)\n", block) or re.search(rb"\r(?!\n)", block):
        raise Malformed("bare LF or CR in trailer section")
    req.trailers = parse_fields(block, "trailer")
    req.body = bytes(body)
    return section_end + 4


def parse_request(buf: bytes, pos: int = 0) -> tuple[Request, int]:
    req, end = parse_head(buf, pos)
    if req.framing == "length":
        if len(buf) < end + req.length:
            raise Incomplete()
        req.body = bytes(buf[end : end + req.length])
        end += req.length
    elif req.framing == "chunked":
        end = parse_chunked(buf, end, req)
    req.raw = bytes(buf[pos:end])
    return req, end


@dataclass
class Split:
    """A connection's bytes cut into requests: `requests` complete ones,
    then `rest` (an incomplete request, or bytes that do not parse)."""

    requests: list[Request]
    rest: bytes
    error: Optional[str] = None


def split_requests(data: bytes) -> Split:
    reqs = []
    pos = 0
    while pos < len(data):
        try:
            req, pos2 = parse_request(data, pos)
        except Incomplete:
            return Split(reqs, bytes(data[pos:]), "incomplete")
        except Malformed as e:
            return Split(reqs, bytes(data[pos:]), f"malformed: {e}")
        reqs.append(req)
        pos = pos2
    return Split(reqs, b"")
