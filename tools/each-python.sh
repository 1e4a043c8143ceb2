#!/usr/bin/env bash
# Run a command under each interpreter the project claims (tools/interpreters.txt),
# each from its own venv with an in-place strict build of the C core (the .so
# names differ per interpreter, so the builds live side by side).
#
#   tools/each-python.sh python -m pytest -q tests/core
#   tools/each-python.sh --only 3.14 python -m pytest -q tests/core
#   tools/each-python.sh --all -k python -m pytest -q tests/core
#   tools/each-python.sh --only 3.14 --requirements requirements/kernel.txt \
#       python -m pytest -q tests/test_kernel.py
#   tools/each-python.sh --list
#
#   --only NAME[,NAME]  just these interpreters, claimed or not (repeatable)
#   --requirements FILE what each venv installs (default requirements/core.txt)
#   --all               the pending and early ones too
#   -k, --keep-going    run every interpreter, then name the ones that failed
#                       (without it: stop at the first failure)
#   --if-present        none of them set up here is a note, not a failure (for
#                       make targets that run beyond the main interpreter)
#   --list              say what each interpreter is and whether it is here
#
# "python" in the command is that interpreter's venv python. Interpreters from
# pyenv use .venvs/<version>; the sid root's run inside it (chroot), with the
# checkout bind-mounted at the same path and a venv inside the root. An
# interpreter that is not set up here is skipped with a note (tools/interpreters.sh
# or `make interpreters` sets them up); versions under $PYENV_ROOT/versions that
# the list does not name are ignored. The build is strict (warnings are errors)
# unless IPY_THREADKILL_STRICT is set to something else than 1.
set -eu
# shellcheck source=tools/interpreters-lib.sh
. "$(dirname "$0")/interpreters-lib.sh"
root=$(cd "$tk_tools/.." && pwd)

only="" all=0 keep_going=0 if_present=0 list=0 requirements=requirements/core.txt
while [ $# -gt 0 ]; do
    case $1 in
        --only) only="$only ${2//,/ }"; shift 2 ;;
        --only=*) v=${1#--only=}; only="$only ${v//,/ }"; shift ;;
        --all) all=1; shift ;;
        --requirements) requirements=$2; shift 2 ;;
        --requirements=*) requirements=${1#--requirements=}; shift ;;
        -k|--keep-going) keep_going=1; shift ;;
        --if-present) if_present=1; shift ;;
        --list) list=1; shift ;;
        --) shift; break ;;
        -*) echo "each-python: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $list = 0 ] && [ $# = 0 ]; then
    echo "usage: $0 [--only NAME[,NAME]] [--all] [-k] COMMAND... | --list" >&2
    exit 2
fi
for n in $only; do
    tk_entries | awk -v n="$n" '$1 == n { found = 1 } END { exit !found }' ||
        { echo "each-python: $n is not in $tk_list_file" >&2; exit 2; }
done

strict=${IPY_THREADKILL_STRICT-1}
cd "$root"
[ -f "$requirements" ] || { echo "each-python: no requirements file $requirements" >&2; exit 2; }

# Where entry NAME WHERE lives here: sets label (what to call it) and place
# (a pyenv version, or "sid"), or returns 1 with why set.
locate() {
    local name=$1 where=$2 v
    case $where in
        pyenv)
            v=$(tk_pyenv_version "$name")
            if [ -z "$v" ]; then why="not installed here (no $name under $tk_pyenv_root/versions)"; return 1; fi
            place=$v label="CPython $v (pyenv)" ;;
        sid)
            if ! tk_sid_has "$name"; then why="not installed here (no python$name in $tk_sid_root)"; return 1; fi
            if [ "$(id -u)" != 0 ]; then why="the sid root needs root (chroot)"; return 1; fi
            place=sid label="CPython $name (Debian sid root)" ;;
        *) why="unknown place '$where' in $tk_list_file"; return 1 ;;
    esac
}

run_pyenv() {   # run_pyenv VERSION COMMAND...
    local v=$1 venv=.venvs/$1; shift
    # Called under "||", where set -e does not apply: each step checks.
    [ -x "$venv/bin/python" ] || "$tk_pyenv_root/versions/$v/bin/python3" -m venv "$venv" || return
    "$venv/bin/python" -m pip install -q -r "$requirements" || return
    IPY_THREADKILL_STRICT=$strict "$venv/bin/python" setup.py -q build_ext --inplace -t "build/temp-$v" || return
    PATH="$root/$venv/bin:$PATH" PYTHONPATH="$root" "$@"
}

run_sid() {     # run_sid NAME COMMAND...: inside the root, the checkout at the same path
    local name=$1 venv=$tk_root_venvs/$1; shift
    # shellcheck disable=SC2016  # expanded inside the root
    tk_in_root --bind "$root" --cd "$root" \
        --env "PATH=$venv/bin:/usr/local/bin:/usr/bin:/bin" --env "PYTHONPATH=$root" \
        --env "VIRTUAL_ENV=$venv" --env "IPY_THREADKILL_STRICT=$strict" -- \
        /bin/sh -ec '
            venv=$1 name=$2 requirements=$3; shift 3
            [ -x "$venv/bin/python" ] || "python$name" -m venv "$venv"
            "$venv/bin/python" -m pip install -q -r "$requirements"
            "$venv/bin/python" setup.py -q build_ext --inplace -t "build/temp-sid-$name"
            exec "$@"' sh "$venv" "$name" "$requirements" "$@"
}

ran=0 failed=""
while read -r name where state; do
    if [ -n "$only" ]; then
        case " $only " in *" $name "*) ;; *) continue ;; esac
    fi
    if ! locate "$name" "$where"; then
        if [ $list = 1 ]; then echo "$name: $why, $state"; else echo "-- skipped $name: $why"; fi
        continue
    fi
    if [ $list = 1 ]; then
        echo "$name: $label, $state"
        continue
    fi
    if [ -z "$only" ] && [ $all = 0 ] && [ "$state" != claimed ]; then
        case $state in
            pending) echo "-- skipped $name ($label): set up, not yet supported" ;;
            early) echo "-- skipped $name ($label): an early warning, not yet supported" ;;
            *) echo "-- skipped $name ($label): state '$state'" ;;
        esac
        continue
    fi
    echo "== $label"
    ran=$((ran + 1))
    if [ "$place" = sid ]; then
        rc=0; run_sid "$name" "$@" || rc=$?
    else
        rc=0; run_pyenv "$place" "$@" || rc=$?
    fi
    if [ $rc != 0 ]; then
        echo "failed on $label" >&2
        [ $keep_going = 1 ] || exit 1
        failed="$failed $name"
    fi
done < <(tk_entries)

[ $list = 1 ] && exit 0
if [ $ran = 0 ] && [ $if_present = 1 ]; then
    echo "-- each-python: none of these interpreters is set up here; nothing run"
    exit 0
elif [ $ran = 0 ]; then
    echo "each-python: no interpreter to run here (tools/interpreters.sh sets them up)" >&2
    exit 1
fi
if [ -n "$failed" ]; then
    echo "failed on:$failed" >&2
    exit 1
fi
