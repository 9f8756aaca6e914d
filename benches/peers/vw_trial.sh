#!/usr/bin/env sh
# Vowpal Wabbit's contextual bandit learning in the trial's worlds, side by side with
# the engine (same requests, same click coins; see vw_trial.py and docs/simulation.md).
# Not run by CI: it installs a Python package. Usage, from the repository root:
#
#   benches/peers/vw_trial.sh [SEEDS] [FIRST_SEED] [VENV_DIR]   (default: 3 2000 target/peers/venv)
#
# Needs python3 (3.8+), network access to the Python package index the first time, and
# about 35 MB of disk per world under target/peers/trial.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SEEDS=${1:-3}
FIRST=${2:-2000}
VENV=${3:-$ROOT/target/peers/venv}
OUT=$ROOT/target/peers/trial
rm -rf "$OUT"
mkdir -p "$OUT"
. "$ROOT/benches/peers/venv.sh"
vw_venv "$VENV"
cd "$ROOT"
cargo run --quiet --release --example trial -- --seeds "$SEEDS" --seed "$FIRST" --export "$OUT" > "$OUT/engine.md"
"$VENV/bin/python" "$ROOT/benches/peers/vw_trial.py" "$OUT"
