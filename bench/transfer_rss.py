#!/usr/bin/env python3
"""Peak RSS of ekilibri while 1 GiB goes up and 1 GiB comes down through it.

Starts one `command` origin and ekilibri (release builds), then:
  * upload:   POST /echo with a 1 GiB chunked body, echoed back (both ways at once)
  * download: GET /bytes/1073741824 (Content-Length) and ?chunked=1
  * slow:     GET /bytes/268435456 read at ~8 MiB/s for 3 s, then fast
and prints ekilibri's peak RSS (VmHWM) after each, plus bytes verified.

usage: python3 bench/transfer_rss.py [--size BYTES]
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")


def start(cmd, log):
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(log.name) as f:
            m = re.search(r"listening on (\S+?)[,\s]", f.read() + " ")
        if m:
            host, port = m.group(1).rsplit(":", 1)
            return proc, (host, int(port))
        if proc.poll() is not None:
            sys.exit(f"{cmd[0]} exited: {open(log.name).read()}")
        time.sleep(0.02)
    sys.exit(f"{cmd[0]} did not start")


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return -1


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed before head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def drain_body(sock, head, rest, slow_until=0.0):
    """Reads the body (Content-Length or chunked) and returns its size."""
    if "transfer-encoding: chunked" in head.lower():
        total, buf = 0, rest
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                if time.time() < slow_until:
                    time.sleep(0.008)
                    buf += sock.recv(65536)
                else:
                    buf += sock.recv(1 << 20)
            buf = buf[size + 2:]
            total += size
            if size == 0:
                return total
    m = re.search(r"content-length:\s*(\d+)", head, re.I)
    want, got = int(m.group(1)), len(rest)
    while got < want:
        if time.time() < slow_until:
            time.sleep(0.008)
            n = len(sock.recv(65536))
        else:
            n = len(sock.recv(1 << 20))
        if n == 0:
            raise RuntimeError("closed mid-body")
        got += n
    return got


def upload(addr, size):
    sock = socket.create_connection(addr)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n")
    piece = os.urandom(1 << 16)
    chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"

    def send():
        sent = 0
        while sent < size:
            sock.sendall(chunk)
            sent += len(piece)
        sock.sendall(b"0\r\n\r\n")

    t = threading.Thread(target=send)
    t.start()
    head, rest = read_head(sock)
    got = drain_body(sock, head, rest)
    t.join()
    sock.close()
    return got


def download(addr, path, slow=0.0):
    sock = socket.create_connection(addr)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head, rest = read_head(sock)
    got = drain_body(sock, head, rest, time.time() + slow)
    sock.close()
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1 << 30)
    args = ap.parse_args()
    size = args.size
    work = tempfile.mkdtemp(prefix="ekilibri-rss.")
    blog = open(os.path.join(work, "backend.log"), "w")
    backend, baddr = start([os.path.join(BIN, "command"), "--listen", "127.0.0.1:0", "--name", "b1", "--chunked-echo"], blog)
    cfg = os.path.join(work, "ekilibri.toml")
    with open(cfg, "w") as f:
        f.write(f'servers = ["{baddr[0]}:{baddr[1]}"]\nlisten = "127.0.0.1:0"\n'
                'read_timeout = 10000\nwrite_timeout = 10000\n')
    elog = open(os.path.join(work, "ekilibri.log"), "w")
    ek, eaddr = start([os.path.join(BIN, "ekilibri"), "-f", cfg], elog)
    try:
        print(f"ekilibri pid {ek.pid}: RSS at start {vm(ek.pid, 'VmRSS')} MiB")
        rows = []
        t0 = time.time()
        n = upload(eaddr, size)
        rows.append(("upload+echo (chunked)", n, time.time() - t0, vm(ek.pid, "VmHWM")))
        for path in (f"/bytes/{size}", f"/bytes/{size}?chunked=1"):
            t0 = time.time()
            n = download(eaddr, path)
            rows.append((f"download {path}", n, time.time() - t0, vm(ek.pid, "VmHWM")))
        t0 = time.time()
        n = download(eaddr, f"/bytes/{size // 4}", slow=3.0)
        rows.append(("slow reader, 3 s at ~8 MiB/s", n, time.time() - t0, vm(ek.pid, "VmHWM")))
        print(f"{'transfer':40} {'bytes':>12} {'seconds':>8} {'peak RSS MiB':>13}")
        for name, n, secs, hwm in rows:
            print(f"{name:40} {n:>12} {secs:>8.1f} {hwm:>13}")
        ok = all(r[1] in (size, size // 4) for r in rows)
        print("all bytes accounted for" if ok else "BYTE COUNT MISMATCH")
        return 0 if ok else 1
    finally:
        for p in (ek, backend):
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    sys.exit(main())
