#!/usr/bin/env sh
# Side by side with Vowpal Wabbit (cb_explore_adf, epsilon 0.1, pre-parsed examples) on
# the engine's catalog shapes and training events. Not run by CI: it installs a Python
# package. Usage, from the repository root:
#
#   benches/peers/vw.sh [VENV_DIR]        (default: target/peers/venv)
#
# Needs python3 (3.8+) and network access to the Python package index the first time.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-$ROOT/target/peers/venv}
OUT=$ROOT/target/peers
mkdir -p "$OUT"
. "$ROOT/benches/peers/venv.sh"
vw_venv "$VENV"
cd "$ROOT"
uptime || true
cargo run --quiet --release --example peer_bench -- --json > "$OUT/engine.json"
"$VENV/bin/python" "$ROOT/benches/peers/vw_bench.py" "$OUT/engine.json"
