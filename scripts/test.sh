#!/usr/bin/env bash
# The whole test suite: release build, Rust tests, then the Python integration
# tests in tests/ against the release binaries. Runs from any directory; extra
# arguments go to pytest (e.g. -m "not slow", -k echo, -x).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# What the integration tests use from Debian: a real browser for the status
# page test and promtool for the metrics format (tests skip without them).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} for the integration tests ..." >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 \
            || echo "warning: could not install ${missing[*]}; the tests that need them will be skipped" >&2
    fi
fi

cargo build --release --bins
cargo test --release

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt

exec "$venv/bin/python" -m pytest tests -q "$@"
