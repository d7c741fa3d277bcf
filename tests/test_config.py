"""Configuration: a bad file is one line on stderr and exit code 2."""

from __future__ import annotations

import re
import subprocess

import pytest

import harness
from rawhttp import request_once

SERVERS = ["127.0.0.1:9001", "127.0.0.1:9002"]

# case -> (file text or None for a missing file, what the error line must name)
BAD = {
    "missing-file": (None, None),
    "syntax-error": ('servers = ["127.0.0.1:9001"\nstrategy = \n', None),
    "unknown-key": (harness.config_text(SERVERS) + "bogus_key = 1\n", "bogus_key"),
    "empty-servers": (harness.config_text([]), "servers"),
    "pool-size-zero": (harness.config_text(SERVERS, pool_size=0), "pool_size"),
    "unknown-strategy": (harness.config_text(SERVERS, strategy="Fastest"), "strategy"),
}


def run_ekilibri(args, timeout=5):
    # The environment a user has: no RUST_LOG.
    env = harness.child_env({"RUST_LOG": None})
    try:
        return subprocess.run(
            [str(harness.ekilibri_bin()), *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"ekilibri {' '.join(map(str, args))} still running after {timeout} s; stderr: {e.stderr!r}")


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_exits_2_with_one_stderr_line(tmp_path, case, check):
    text, key = BAD[case]
    # A neutral name, so that naming the key is the message's doing.
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    args = (["--check"] if check else []) + ["-f", path]
    res = run_ekilibri(args)
    stderr = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, f"{case}: exit code {res.returncode}, stderr {stderr!r}"
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"{case}: want exactly one stderr line, got {stderr!r}"
    assert path.name in lines[0], f"{case}: the error does not name the file: {lines[0]!r}"
    if key:
        assert key in lines[0], f"{case}: the error does not name the key {key!r}: {lines[0]!r}"


@pytest.mark.parametrize("kind", ["device", "huge", "directory"])
def test_a_path_that_is_not_a_small_file_exits_2_at_once(tmp_path, kind):
    # A device such as /dev/zero (here behind a symlink, as a mistaken
    # deployment would have it) or a huge file would be read into memory
    # without end.
    path = tmp_path / "bad.toml"
    if kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        path.write_text(harness.config_text(SERVERS) + "#" * (5 << 20) + "\n")
    else:
        path.mkdir()
    for check in ([], ["--check"]):
        res = run_ekilibri([*check, "-f", path])
        stderr = res.stderr.decode("utf-8", "replace")
        assert res.returncode == 2, f"{kind}: exit code {res.returncode}, stderr {stderr!r}"
        lines = stderr.splitlines()
        assert len(lines) == 1 and path.name in lines[0], f"{kind}: {stderr!r}"


@pytest.mark.parametrize(
    "args, names",
    [
        (["--listen", "garbage"], "--listen"),
        (["--listen", "localhost:0"], "--listen"),
        (["-f"], "--file"),
        (["--no-such-flag"], "--no-such-flag"),
        (["stray-argument"], "stray-argument"),
    ],
    ids=["listen-garbage", "listen-hostname", "file-without-value", "unknown-flag", "stray-argument"],
)
def test_bad_command_line_exits_2_with_one_stderr_line(args, names):
    res = run_ekilibri(args)
    stderr = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, f"exit code {res.returncode}, stderr {stderr!r}"
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ekilibri: "), f"want one 'ekilibri: ' line, got {stderr!r}"
    assert names in lines[0], lines[0]


def test_help_and_version_go_to_stdout_with_exit_0():
    for flag, want in (("--help", "--file"), ("--version", "ekilibri")):
        res = run_ekilibri([flag])
        assert res.returncode == 0 and res.stderr == b"", (flag, res)
        assert want in res.stdout.decode(), (flag, res.stdout)


def test_check_accepts_a_good_config(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(harness.config_text(SERVERS))
    res = run_ekilibri(["--check", "-f", path])
    assert res.returncode == 0, f"exit code {res.returncode}, stderr {res.stderr!r}"


def test_readme_config_example_is_valid(tmp_path):
    readme = (harness.REPO_ROOT / "README.md").read_text()
    m = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert m, "README.md has no ```toml example"
    path = tmp_path / "readme.toml"
    path.write_text(m.group(1))
    res = run_ekilibri(["--check", "-f", path])
    assert res.returncode == 0, f"README example rejected: {res.stderr!r}"


def test_start_up_failures_caused_by_the_file_exit_2_with_one_line(tmp_path, backend_factory, ekilibri_factory):
    """An address that cannot be bound, or an access log that cannot be
    opened, is the configuration's problem: one line naming it, exit 2."""
    import socket

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = "127.0.0.1:%d" % held.getsockname()[1]
    # A second ekilibri with workers = 2 must not bind beside the first
    # through SO_REUSEPORT and take half its connections.
    running = ekilibri_factory(backend_factory(1), workers=2, max_connections=100)
    cases = {
        "port-in-use": harness.config_text(SERVERS, listen=taken),
        "port-of-a-running-ekilibri": harness.config_text(SERVERS, listen=running.addr, workers=2,
                                                          max_connections=100),
        "admin-port-in-use": harness.config_text(SERVERS, listen="127.0.0.1:0", admin_listen=taken),
        "access-log-dir-missing": harness.config_text(SERVERS, listen="127.0.0.1:0",
                                                      access_log=str(tmp_path / "no" / "such.log")),
    }
    try:
        for case, text in cases.items():
            path = tmp_path / f"{case}.toml"
            path.write_text(text)
            res = run_ekilibri(["-f", path])
            stderr = res.stderr.decode("utf-8", "replace")
            assert res.returncode == 2, f"{case}: exit code {res.returncode}, stderr {stderr!r}"
            lines = stderr.splitlines()
            assert len(lines) == 1, f"{case}: {stderr!r}"
            want = str(tmp_path / "no" / "such.log") if case == "access-log-dir-missing" else "Address already in use"
            assert want in lines[0], f"{case}: {lines[0]!r}"
        # The running one still has the whole port.
        with socket.create_connection(running.addr.rsplit(":", 1), timeout=5):
            pass
    finally:
        held.close()


def test_listen_on_the_admin_address_and_demo_with_a_missing_file_exit_2(tmp_path):
    path = tmp_path / "admin.toml"
    path.write_text(harness.config_text(SERVERS, listen="127.0.0.1:0", admin_listen="127.0.0.1:18999"))
    res = run_ekilibri(["-f", path, "--listen", "127.0.0.1:18999"])
    assert res.returncode == 2 and b"admin_listen" in res.stderr, res
    # --demo makes the default file optional, not a file named with -f.
    res = run_ekilibri(["--demo", "-f", tmp_path / "missing.toml"])
    assert res.returncode == 2 and b"missing.toml" in res.stderr, res


def test_demo_does_not_resolve_the_files_servers(tmp_path, started_procs):
    """--demo runs its own backends and ignores the file's `servers`: a host
    name there that does not resolve must not stop it (nor one that resolves
    slowly delay it). The file's other settings still apply: its listen is
    port 0, not the demo's default 8080."""
    path = tmp_path / "demo.toml"
    path.write_text(harness.config_text(["no-such-host.invalid:80"]))
    lb = harness.spawn("ekilibri", [harness.ekilibri_bin(), "--demo", "-f", path], tmp_path)
    started_procs.append(lb)
    lb.wait_listening()
    assert lb.port != 8080
    r = request_once(lb.addr, "GET", "/")
    assert r.status == 200 and r.header("X-Backend").startswith("demo-"), r
