#!/usr/bin/env bash
# The whole test suite: release build, Rust tests, then the Python integration
# tests in tests/ against the release binaries. Runs from any directory; extra
# arguments go to pytest (e.g. -m "not slow", -k echo, -x).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --release --bins
cargo test --release

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt

exec "$venv/bin/python" -m pytest tests -q "$@"
