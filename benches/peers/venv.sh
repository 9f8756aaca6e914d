# Sourced by the peer scripts (vw.sh, vw_trial.sh): the Vowpal Wabbit version they pin,
# and `vw_venv DIR`, which creates a Python virtual environment in DIR (if missing) and
# installs that version there (if not already). Needs python3 (3.8+) and network access
# to the Python package index the first time.
VW_VERSION=9.11.9

vw_venv() {
    if [ ! -x "$1/bin/python" ]; then
        python3 -m venv "$1"
    fi
    if ! "$1/bin/python" -c "import vowpalwabbit, sys; sys.exit(vowpalwabbit.__version__ != '$VW_VERSION')" 2>/dev/null; then
        "$1/bin/pip" install --quiet "vowpalwabbit==$VW_VERSION"
    fi
}
