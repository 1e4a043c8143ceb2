# shellcheck shell=bash
# Shared by tools/interpreters.sh (set-up) and tools/each-python.sh (runner):
# where each interpreter of tools/interpreters.txt lives, and how to run a
# command inside the Debian sid root. Sourced, not run.

tk_tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tk_list_file=$tk_tools/interpreters.txt
tk_cache=${IPY_THREADKILL_CACHE:-/var/cache/ipy_threadkill}
tk_sid_root=$tk_cache/sid-root
tk_pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
# Inside the sid root: the host's CA bundle (pip needs it) and the venvs.
tk_root_ca=/etc/ipy_threadkill/host-ca-certificates.crt
# shellcheck disable=SC2034  # used by tools/each-python.sh
tk_root_venvs=/opt/ipy_threadkill/venvs

# "name where state" for every line of tools/interpreters.txt.
tk_entries() {
    sed -e 's/#.*//' "$tk_list_file" | awk 'NF >= 3 { print $1, $2, $3 }'
}

# The pyenv version directory name for an interpreter name: 3.12 -> the newest
# 3.12.N, 3.13t -> the newest 3.13.Nt. Prints nothing when there is none; any
# other version under $PYENV_ROOT/versions (3.14-dev, 3.13.5t for "3.13", ...)
# is never picked.
tk_pyenv_version() {
    local name=$1 minor suffix="" pattern
    case $name in
        *t) minor=${name%t}; suffix=t ;;
        *) minor=$name ;;
    esac
    pattern="^${minor//./\\.}\\.[0-9]+${suffix}\$"
    [ -d "$tk_pyenv_root/versions" ] || return 0
    find "$tk_pyenv_root/versions" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null \
        | grep -E "$pattern" \
        | while IFS= read -r v; do
              [ -x "$tk_pyenv_root/versions/$v/bin/python3" ] && echo "$v"
          done \
        | sort -V | tail -n 1
}

# True when the sid root is complete and has python<name>.
tk_sid_has() {
    [ -x "$tk_sid_root/usr/bin/python$1" ]
}

# tk_in_root [--root DIR] [--bind DIR] [--cd DIR] [--env VAR=VALUE]... [--] CMD...
# Runs CMD in the sid root with /proc, /dev (and /dev/pts, /dev/shm) mounted
# and, with --bind, a host directory visible at the same path. The mounts live
# in a private mount namespace: they vanish with CMD, so nothing is left
# mounted under the cache and concurrent runs do not disturb each other.
# CMD gets a clean environment: HOME, PATH, the CA bundle for pip, and the
# host's PIP_*, IPY_THREADKILL_*, PYTEST_* and proxy variables.
tk_in_root() {
    local root=$tk_sid_root bind="" cd=/ name
    local -a envs=()
    while [ $# -gt 0 ]; do
        case $1 in
            --root) root=$2; shift 2 ;;
            --bind) bind=$2; shift 2 ;;
            --cd) cd=$2; shift 2 ;;
            --env) envs+=("$2"); shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    local -a base=(HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}"
                   PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
    for name in $(compgen -e); do
        case $name in
            PIP_CERT|PIP_FIND_LINKS) ;;   # host paths: the root has its own
            PIP_*|IPY_THREADKILL_*|PYTEST_*|http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY)
                base+=("$name=${!name}") ;;
        esac
    done
    base+=("PIP_CERT=$tk_root_ca" "SSL_CERT_FILE=$tk_root_ca" "REQUESTS_CA_BUNDLE=$tk_root_ca")
    # shellcheck disable=SC2016  # expanded by the inner shells
    unshare --mount --propagation private -- /bin/sh -ec '
        root=$1 bind=$2; shift 2
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        if [ -n "$bind" ]; then
            mkdir -p "$root$bind"
            mount --bind "$bind" "$root$bind"
        fi
        exec chroot "$root" "$@"
    ' sh "$root" "$bind" /usr/bin/env -i "${base[@]}" "${envs[@]}" \
        /bin/sh -c 'cd "$0" && exec "$@"' "$cd" "$@"
}
