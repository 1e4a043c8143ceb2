#!/bin/sh
# The kill, force, race, hostile, bad-input and time-limit suites with the C core built
# under AddressSanitizer and UndefinedBehaviorSanitizer, on CPython 3.11 and
# 3.13 (the two layouts of interpreter internals the forced cancel touches
# most). The interpreter itself is not instrumented: the sanitizer runtimes are
# preloaded, PYTHONMALLOC=malloc lets ASan see every allocation, and leak
# reports are off (an interpreter frees little at exit, and a forced kill leaks
# the dead thread's frames on purpose). Any ASan error or UBSan report fails
# the run. Each version builds in its own copy of the checkout under
# build/sanitize/, so the regular in-place builds are left alone.
#
#   tools/sanitize.sh [version-prefix ...]      default: 3.11 3.13
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
suites="tests/core/test_kill.py tests/core/test_force.py tests/core/test_races.py
        tests/core/test_hostile.py tests/core/test_bad_input.py tests/core/test_arguments.py
        tests/core/test_time_limit.py"
[ $# -gt 0 ] || set -- 3.11 3.13

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
if [ ! -e "$asan" ] || [ ! -e "$ubsan" ]; then
    echo "sanitize: skipped: gcc has no AddressSanitizer/UBSan runtime here" >&2
    exit 0
fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"

status=0
for prefix in "$@"; do
    version=$(ls -d "$pyenv_root"/versions/"$prefix".* 2>/dev/null | xargs -n1 basename \
              | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -t. -k3,3n | tail -n1 || true)
    if [ -z "$version" ]; then
        echo "sanitize: skipped CPython $prefix: not installed under $pyenv_root/versions" >&2
        continue
    fi
    work=$root/build/sanitize/$version
    rm -rf "$work"
    mkdir -p "$work"
    (cd "$root" && git ls-files -co --exclude-standard -- ipy_threadkill tests setup.py \
        pyproject.toml README.md MANIFEST.in | grep -v '\.so$' | tar -cf - -T -) \
        | tar -xf - -C "$work"
    venv=$root/.venvs/sanitize-$version
    [ -x "$venv/bin/python" ] || "$pyenv_root/versions/$version/bin/python3" -m venv "$venv"
    "$venv/bin/python" -m pip install -q -r "$root/requirements/core.txt"
    echo "== CPython $version, C core under ASan + UBSan"
    (cd "$work" && CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
        IPY_THREADKILL_STRICT=1 "$venv/bin/python" setup.py -q build_ext --inplace) \
        >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
    # shellcheck disable=SC2086
    if ! (cd "$work" && LD_PRELOAD="$asan $ubsan" PYTHONMALLOC=malloc \
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            IPY_THREADKILL_SANITIZED=1 PYTHONPATH="$work" "$venv/bin/python" -m pytest -q -p no:cacheprovider $suites); then
        echo "sanitize: failed on CPython $version" >&2
        status=1
    fi
done
exit $status
