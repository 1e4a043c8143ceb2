#!/bin/sh
# Run a command under every CPython 3.9-3.13 that pyenv provides, each from its
# own venv (.venvs/<version>) with an in-place build of the C core (the .so
# names differ per version, so the builds live side by side).
#
#   tools/each-python.sh python -m pytest -q tests/core
#
# "python" in the command is that version's interpreter. Stops at the first
# failure, after saying which version failed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
versions=$(ls -d "$pyenv_root"/versions/3.9.* "$pyenv_root"/versions/3.1[0-3].* 2>/dev/null \
           | xargs -n1 basename | sort -t. -k1,1n -k2,2n -k3,3n)
if [ -z "$versions" ]; then
    echo "no CPython 3.9-3.13 under $pyenv_root/versions" >&2
    exit 1
fi
cd "$root"
for v in $versions; do
    venv=.venvs/$v
    [ -x "$venv/bin/python" ] || "$pyenv_root/versions/$v/bin/python3" -m venv "$venv"
    "$venv/bin/python" -m pip install -q -r requirements/core.txt
    IPY_THREADKILL_STRICT=1 "$venv/bin/python" setup.py -q build_ext --inplace
    echo "== CPython $v"
    PATH="$root/$venv/bin:$PATH" PYTHONPATH="$root" "$@" || { echo "failed on CPython $v" >&2; exit 1; }
done
