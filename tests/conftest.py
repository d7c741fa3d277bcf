"""Fixtures: start `command` backends and `ekilibri` on port 0, clean up by PID.

    def test_x(backend_factory, ekilibri_factory):
        backends = backend_factory(3)                  # b1, b2, b3
        lb = ekilibri_factory(backends, read_timeout=300)
        lb.addr                                        # "127.0.0.1:PORT" it bound

Every process logs to a file in tmp_path; a failed test gets the logs of all
the processes it started appended to its report. A process that died on its
own during the test fails the test at teardown.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable, Optional

import pytest

import harness
from harness import Proc, RawBackend, ScriptedBackend


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_started_procs", []):
            rep.sections.append((f"log of {p.describe()}", p.log_tail()))
        for rb in getattr(item, "_raw_backends", []):
            lines = [f"{r.method} {r.target} {r.version} conn={r.conn_id}" for r in rb.requests[-50:]]
            rep.sections.append(
                (f"requests seen by raw backend {rb.name} ({rb.addr})", "\n".join(lines) or "<none>")
            )
        for sb in getattr(item, "_scripted_backends", []):
            text = "\n".join(f"conn {i + 1}: {raw[:2000]!r}" for i, raw in enumerate(sb.raw_by_conn()))
            if sb.errors:
                text += "\nscript errors:\n" + "\n".join(sb.errors)
            rep.sections.append((f"bytes received by scripted backend {sb.name} ({sb.addr})", text or "<none>"))


@pytest.fixture
def started_procs(request):
    """Every process this test started; all stopped at teardown, by PID."""
    procs: list[Proc] = []
    request.node._started_procs = procs
    yield procs
    crashed = [p for p in procs if not p.stopped and not p.alive()]
    for p in reversed(procs):
        p.stop()
    if crashed:
        pytest.fail(
            "process(es) exited during the test:\n"
            + "\n".join(f"{p.describe()}\n--- log ---\n{p.log_tail()}" for p in crashed),
            pytrace=False,
        )


class BackendFactory:
    """`factory(n)` starts n `command` backends named b1, b2, ... (numbering
    goes on across calls); `factory.start(name, listen)` starts one."""

    def __init__(self, procs: list[Proc], log_dir: Path):
        self.procs = procs
        self.log_dir = log_dir
        self._numbers = itertools.count(1)

    def start(self, name: Optional[str] = None, listen: str = "127.0.0.1:0") -> Proc:
        name = name or f"b{next(self._numbers)}"
        p = harness.spawn(name, [harness.command_bin(), "--listen", listen, "--name", name, "--chunked-echo"], self.log_dir)
        self.procs.append(p)
        p.wait_listening()
        return p

    def __call__(self, n: int = 1, names: Optional[Iterable[str]] = None) -> list[Proc]:
        names = list(names) if names is not None else [f"b{next(self._numbers)}" for _ in range(n)]
        # Start all, then wait for all: the startups overlap.
        started = []
        for name in names:
            p = harness.spawn(
                name, [harness.command_bin(), "--listen", "127.0.0.1:0", "--name", name, "--chunked-echo"], self.log_dir
            )
            self.procs.append(p)
            started.append(p)
        for p in started:
            p.wait_listening()
        return started


class EkilibriFactory:
    """`factory(servers, **config)` writes a TOML config (listen 127.0.0.1:0,
    harness.DEFAULT_CONFIG overridden by `config`; a None value drops a key;
    a server is a Proc, a RawBackend, an address or harness.weighted(...)),
    starts `ekilibri -f` on it and waits for its `listening on` line."""

    def __init__(self, procs: list[Proc], log_dir: Path):
        self.procs = procs
        self.log_dir = log_dir
        self._n = itertools.count(1)

    def __call__(self, servers, env: Optional[dict] = None, **config) -> Proc:
        n = next(self._n)
        name = "ekilibri" if n == 1 else f"ekilibri{n}"
        cfg = self.log_dir / f"{name}.toml"
        cfg.write_text(harness.config_text([harness.server_entry(s) for s in servers], **config))
        p = harness.spawn(name, [harness.ekilibri_bin(), "-f", cfg], self.log_dir, env=harness.child_env(env))
        p.config_path = cfg
        self.procs.append(p)
        p.wait_listening()
        return p


@pytest.fixture
def backend_factory(started_procs, tmp_path) -> BackendFactory:
    return BackendFactory(started_procs, tmp_path)


@pytest.fixture
def ekilibri_factory(started_procs, tmp_path) -> EkilibriFactory:
    return EkilibriFactory(started_procs, tmp_path)


@pytest.fixture
def raw_backend_factory(request):
    """`factory(name, **options)` starts a harness.RawBackend (a Python
    backend that records the requests it gets); all stopped at teardown."""
    backends: list[RawBackend] = []
    request.node._raw_backends = backends

    def start(name: str = "raw", **options) -> RawBackend:
        rb = RawBackend(name=name, **options)
        backends.append(rb)
        return rb

    yield start
    for rb in backends:
        rb.stop()


@pytest.fixture
def three_backends(backend_factory, ekilibri_factory):
    """Three `command` backends b1..b3 behind one round-robin ekilibri."""
    backends = backend_factory(3)
    lb = ekilibri_factory(backends)
    return lb, backends


@pytest.fixture
def scripted_backend_factory(request):
    """`factory(name, script)` starts a harness.ScriptedBackend: every
    connection runs `script(conn)` (default: 200 for every request) and every
    byte received is recorded exactly, per connection. All stopped at teardown."""
    backends: list[ScriptedBackend] = []
    request.node._scripted_backends = backends

    def start(name: str = "scripted", script=None) -> ScriptedBackend:
        sb = ScriptedBackend(name=name, script=script)
        backends.append(sb)
        return sb

    yield start
    for sb in backends:
        sb.stop()
