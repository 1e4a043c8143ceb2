#!/usr/bin/env bash
# Set up every interpreter tools/interpreters.txt lists, from Debian's archive
# only (the mirror apt already uses), cached outside the checkout:
#
#   3.9 ... 3.13   pyenv's, as installed: only checked here
#   3.13t          pyenv install 3.13.5t, from Debian trixie's python3.13
#                  source tarball (byte-identical to python.org's, checked
#                  against the sha256 pyenv's definition names)
#   3.14, 3.15     a Debian sid root (debootstrap) under $IPY_THREADKILL_CACHE
#                  (default /var/cache/ipy_threadkill); 3.15, the newest
#                  CPython sid has (an early warning), only if it installs cleanly
#
#   tools/interpreters.sh            set up what is missing (seconds if nothing is)
#   tools/interpreters.sh --refresh  also upgrade the sid root and retry 3.15
#
# Idempotent. What cannot be had here (no root, no network, no debootstrap, a
# failed build) is said on one line, and the rest goes on: the exit status is
# 0 unless the command line is wrong. Builds run under nice: the machine may be
# shared. Logs go to $IPY_THREADKILL_CACHE/logs.
set -u
# shellcheck source=tools/interpreters-lib.sh
. "$(dirname "$0")/interpreters-lib.sh"

refresh=0
case ${1-} in
    "") ;;
    --refresh) refresh=1 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--refresh]" >&2; exit 2 ;;
esac

say() { echo "interpreters: $*"; }
cannot() { local name=$1; shift; echo "interpreters: $name: not set up here: $*"; }

# The free-threaded build made from Debian's source, and where that source is.
ft_version=3.13.5t
ft_tarball=Python-3.13.5.tar.xz
ft_debian_source=python3.13
ft_debian_version=3.13.5-2+deb13u5    # any 3.13.5-* will do: same orig tarball
ft_debian_suite=trixie
sid_packages=python3.14,python3.14-dev,python3.14-venv,gcc,libc6-dev,procps
early_packages="python3.15 python3.15-dev python3.15-venv"

is_root() { [ "$(id -u)" = 0 ]; }

# --- the host's Debian mirror and its keyring, from apt's own configuration --
mirror="" keyring=""
read_mirror() {
    local f=/etc/apt/sources.list.d/debian.sources line
    if [ -r "$f" ]; then
        # deb822: the first "deb" stanza with a plain release suite (not -security).
        line=$(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                types = uris = suites = signed = ""
                for (i = 1; i <= NF; i++) {
                    l = $i
                    if (l ~ /^#/) continue
                    if (sub(/^Types:[ \t]*/, "", l)) types = l
                    else if (sub(/^URIs:[ \t]*/, "", l)) uris = l
                    else if (sub(/^Suites:[ \t]*/, "", l)) suites = l
                    else if (sub(/^Signed-By:[ \t]*/, "", l)) signed = l
                }
                if ((" " types " ") ~ / deb / && (" " suites " ") ~ / [a-z]+ / && uris != "") {
                    split(uris, u, /[ \t]+/); print u[1] " " signed; exit
                }
            }' "$f")
        mirror=${line%% *}
        keyring=${line#* }
        [ "$keyring" = "$line" ] && keyring=""
    fi
    if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
        mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
                 /etc/apt/sources.list)
    fi
    mirror=${mirror%/}
    # A Signed-By that is not a file (an inline key): use Debian's keyring.
    case $keyring in /*) [ -r "$keyring" ] || keyring="" ;; *) keyring="" ;; esac
    [ -n "$keyring" ] || { [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] &&
                           keyring=/usr/share/keyrings/debian-archive-keyring.gpg; }
}

apt_updated=0
host_apt_install() {   # host_apt_install LOG PACKAGE...: apt-get update once, then install
    local log=$1; shift
    if [ $apt_updated = 0 ]; then
        say "apt-get update (host)"
        apt-get update >>"$log" 2>&1 || return 1
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1
}

# --- the cache and its lock --------------------------------------------------
if ! mkdir -p "$tk_cache/logs" 2>/dev/null || [ ! -w "$tk_cache" ]; then
    say "cannot write $tk_cache (set IPY_THREADKILL_CACHE): the sid root cannot be set up"
    tk_cache_ok=0
else
    tk_cache_ok=1
    exec 9>"$tk_cache/.lock"
    if ! flock -n 9; then
        say "waiting for another set-up to finish (lock $tk_cache/.lock)"
        flock 9
    fi
fi
logs=$tk_cache/logs

# --- pyenv's own interpreters: checked, not installed -------------------------
check_pyenv() {
    local name=$1 v
    v=$(tk_pyenv_version "$name")
    if [ -n "$v" ]; then
        say "$name: pyenv $v"
    else
        cannot "$name" "no $name.N under $tk_pyenv_root/versions (install it with pyenv)"
    fi
}

# --- 3.13t: pyenv's 3.13.5t from Debian trixie's source tarball ----------------
ft_ok() {
    [ "$("$tk_pyenv_root/versions/$ft_version/bin/python3" -c \
        'import sys; print(sys._is_gil_enabled())' 2>/dev/null)" = False ]
}

pyenv_definitions() {   # the directory holding pyenv's build definitions
    local pyenv d
    pyenv=$(command -v pyenv 2>/dev/null || echo "$tk_pyenv_root/bin/pyenv")
    for d in "$tk_pyenv_root/plugins/python-build/share/python-build" \
             "$(dirname "$(readlink -f "$pyenv")")/../plugins/python-build/share/python-build" \
             "$(dirname "$(readlink -f "$pyenv")")/../share/python-build"; do
        [ -f "$d/${ft_version%t}" ] && { echo "$d"; return 0; }
    done
    return 1
}

# Downloads Debian's orig tarball into $1 (a directory), with an apt
# configuration of its own: the host's apt sources and lists are not touched.
fetch_debian_orig() {
    local dest=$1 log=$2 tmp version
    tmp=$(mktemp -d) || return 1
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/src"
    echo "deb-src [signed-by=$keyring] $mirror $ft_debian_suite main" >"$tmp/sources.list"
    local -a opts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o Dir::Etc::sourceparts=/nonexistent
                   -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
                   -o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
    say "3.13t: apt-get update ($ft_debian_suite sources, private configuration)"
    # --error-on=any: without it a failed download is only a warning.
    if ! apt-get "${opts[@]}" update --error-on=any >>"$log" 2>&1; then
        rm -rf "$tmp"; fail="apt-get update failed"; return 1
    fi
    version=$ft_debian_version
    if ! apt-cache "${opts[@]}" showsrc "$ft_debian_source" 2>/dev/null \
            | grep -qx "Version: $version"; then
        version=$(apt-cache "${opts[@]}" showsrc "$ft_debian_source" 2>/dev/null \
                  | sed -n "s/^Version: \(${ft_version%t}-.*\)/\1/p" | sort -V | tail -n 1)
        if [ -z "$version" ]; then
            rm -rf "$tmp"; fail="$ft_debian_suite has no $ft_debian_source ${ft_version%t}-*"; return 1
        fi
        say "3.13t: $ft_debian_source=$ft_debian_version is gone, taking $version"
    fi
    say "3.13t: apt-get source --download-only $ft_debian_source=$version"
    if ! (cd "$tmp/src" && apt-get "${opts[@]}" source --download-only \
            "$ft_debian_source=$version") >>"$log" 2>&1; then
        rm -rf "$tmp"; fail="apt-get source failed"; return 1
    fi
    mv "$tmp/src/${ft_debian_source}_${ft_version%t}.orig.tar.xz" "$dest/$ft_tarball.part" &&
        mv "$dest/$ft_tarball.part" "$dest/$ft_tarball"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

setup_ft() {
    local name=$1 log=$logs/3.13t.log defs expected have pyenv
    if ft_ok; then
        say "$name: pyenv $ft_version (free-threaded)"
        return 0
    fi
    if [ -e "$tk_pyenv_root/versions/$ft_version" ]; then
        cannot "$name" "$tk_pyenv_root/versions/$ft_version exists but is not a working free-threaded build (remove it to rebuild)"
        return 0
    fi
    [ $tk_cache_ok = 1 ] || log=/dev/null
    pyenv=$(command -v pyenv 2>/dev/null || echo "$tk_pyenv_root/bin/pyenv")
    [ -x "$pyenv" ] || { cannot "$name" "no pyenv"; return 0; }
    defs=$(pyenv_definitions) || { cannot "$name" "pyenv has no definition for $ft_version (update pyenv)"; return 0; }
    expected=$(grep -o "$ft_tarball#[0-9a-f]\{64\}" "$defs/${ft_version%t}" | head -n 1)
    expected=${expected#*#}
    [ -n "$expected" ] || { cannot "$name" "no sha256 for $ft_tarball in pyenv's definition"; return 0; }
    mkdir -p "$tk_pyenv_root/cache" || { cannot "$name" "cannot create $tk_pyenv_root/cache"; return 0; }
    have=$(sha256sum "$tk_pyenv_root/cache/$ft_tarball" 2>/dev/null | cut -d' ' -f1)
    if [ "$have" != "$expected" ]; then
        if [ -z "$mirror" ] || [ -z "$keyring" ]; then
            cannot "$name" "no Debian mirror or keyring in apt's sources"; return 0
        fi
        if ! fetch_debian_orig "$tk_pyenv_root/cache" "$log"; then
            cannot "$name" "${fail:-download failed} (log: $log)"; return 0
        fi
        have=$(sha256sum "$tk_pyenv_root/cache/$ft_tarball" | cut -d' ' -f1)
        if [ "$have" != "$expected" ]; then
            rm -f "$tk_pyenv_root/cache/$ft_tarball"
            cannot "$name" "Debian's tarball has sha256 $have, pyenv expects $expected"
            return 0
        fi
        say "3.13t: $ft_tarball from Debian, sha256 as pyenv expects"
    fi
    say "3.13t: pyenv install $ft_version (minutes; log: $log)"
    local t0; t0=$(date +%s)
    if ! PYENV_ROOT=$tk_pyenv_root nice -n 10 "$pyenv" install --skip-existing "$ft_version" >>"$log" 2>&1; then
        cannot "$name" "pyenv install $ft_version failed (log: $log)"; return 0
    fi
    if ft_ok; then
        say "$name: pyenv $ft_version (free-threaded, sys._is_gil_enabled() is False), built in $(( $(date +%s) - t0 )) s"
    else
        cannot "$name" "pyenv built $ft_version but its GIL is enabled"
    fi
}

# --- 3.14 and 3.15: a Debian sid root --------------------------------------
# The root is built as sid-root.partial and renamed when complete, so a root
# that exists is whole; a partial one (an interrupted run) is started afresh.
copy_host_config() {   # the host's CA bundle, pip configuration, DNS, into root $1
    local root=$1
    mkdir -p "$root${tk_root_ca%/*}" "$root/etc/xdg"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root$tk_root_ca" 2>/dev/null || true
    if [ -e /etc/pip.conf ]; then cp -L /etc/pip.conf "$root/etc/pip.conf"; else rm -f "$root/etc/pip.conf"; fi
    rm -rf "$root/etc/xdg/pip"
    [ -d /etc/xdg/pip ] && cp -rL /etc/xdg/pip "$root/etc/xdg/pip"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    return 0
}

mounted_under() { grep -q " $1[/ ]" /proc/mounts; }
remove_partial() { mounted_under "$1" || rm -rf "$1"; }

build_sid_root() {
    local log=$1 partial=$tk_sid_root.partial
    if mounted_under "$partial"; then
        fail="something is mounted under $partial"; return 1
    fi
    rm -rf "$partial"
    if ! command -v debootstrap >/dev/null 2>&1; then
        host_apt_install "$log" debootstrap || { fail="cannot install debootstrap"; return 1; }
    fi
    say "3.14: debootstrap sid from $mirror (minutes, 850 MB; log: $log)"
    local t0; t0=$(date +%s)
    # In a private mount namespace: the /proc and /sys debootstrap mounts in
    # the target go away with it, even if it is interrupted.
    if ! nice -n 10 unshare --mount --propagation private -- \
            debootstrap --variant=minbase --include="$sid_packages" sid "$partial" "$mirror" >>"$log" 2>&1; then
        remove_partial "$partial"; fail="debootstrap failed"; return 1
    fi
    copy_host_config "$partial"
    if ! tk_in_root --root "$partial" -- python3.14 -c 'import venv, ensurepip, sysconfig' >>"$log" 2>&1; then
        remove_partial "$partial"; fail="python3.14 in the new root does not work"; return 1
    fi
    say "3.14: apt-get update (inside the root)"
    tk_in_root --root "$partial" -- apt-get update >>"$log" 2>&1 || true
    mv "$partial" "$tk_sid_root"
    say "3.14: the sid root is ready in $(( $(date +%s) - t0 )) s"
}

setup_early() {   # setup_early NAME: a newer python sid offers, if it installs cleanly
    local name=$1 log=$logs/sid-root.log state=$tk_cache/sid-root.python$1
    if tk_sid_has "$name"; then
        say "$name: Debian sid python$name $(tk_in_root -- "python$name" -c \
            'import platform; print(platform.python_version())' 2>/dev/null)"
        return 0
    fi
    # Known not to install: retried by --refresh only.
    if [ -f "$state" ] && [ $refresh = 0 ]; then
        cannot "$name" "$(cat "$state") (tools/interpreters.sh --refresh retries)"
        return 0
    fi
    # shellcheck disable=SC2086  # a list of package names
    if ! tk_in_root -- apt-cache show $early_packages >/dev/null 2>&1; then
        echo "sid does not offer $early_packages" >"$state"
        cannot "$name" "$(cat "$state")"; return 0
    fi
    say "$name: apt-get install $early_packages (inside the root)"
    # shellcheck disable=SC2086
    if tk_in_root --env DEBIAN_FRONTEND=noninteractive -- \
            nice -n 10 apt-get install -y --no-install-recommends $early_packages >>"$log" 2>&1 &&
            tk_in_root -- "python$name" -c 'import venv, ensurepip' >>"$log" 2>&1; then
        rm -f "$state"
        say "$name: Debian sid python$name $(tk_in_root -- "python$name" -c \
            'import platform; print(platform.python_version())' 2>/dev/null)"
    else
        echo "apt-get install $early_packages failed in sid (log: $log)" >"$state"
        cannot "$name" "$(cat "$state")"
    fi
}

sid_checked=0 sid_ok=0
setup_sid() {
    local name=$1 state=$2 log=$logs/sid-root.log why
    if [ $sid_checked = 0 ]; then
        sid_checked=1
        if [ $tk_cache_ok = 0 ]; then
            why="cannot write $tk_cache"
        elif ! is_root; then
            why="needs root (debootstrap, chroot)"
        elif [ -d "$tk_sid_root" ]; then
            sid_ok=1
        elif [ -z "$mirror" ]; then
            why="no Debian mirror in apt's sources"
        elif ! build_sid_root "$log"; then
            why="${fail:-failed} (log: $log)"
        else
            sid_ok=1
        fi
        if [ $sid_ok = 1 ]; then
            copy_host_config "$tk_sid_root"
            if [ $refresh = 1 ]; then
                say "sid root: apt-get update && full-upgrade (log: $log)"
                tk_in_root --env DEBIAN_FRONTEND=noninteractive -- sh -c \
                    'apt-get update && nice -n 10 apt-get full-upgrade -y' >>"$log" 2>&1 ||
                    say "sid root: upgrade failed (log: $log)"
            fi
        else
            sid_why=$why
        fi
    fi
    if [ $sid_ok = 0 ]; then
        cannot "$name" "the Debian sid root: $sid_why"
        return 0
    fi
    if [ "$state" = early ]; then
        setup_early "$name"
    elif tk_sid_has "$name"; then
        say "$name: Debian sid python$name $(tk_in_root -- "python$name" -c \
            'import platform; print(platform.python_version())' 2>/dev/null) in $tk_sid_root"
    else
        cannot "$name" "the sid root has no python$name"
    fi
}

read_mirror
sid_why="" fail=""
start=$(date +%s)
while read -r name where state; do
    case $where in
        pyenv)
            case $name in
                "${ft_version%.*}t") setup_ft "$name" ;;
                *t) cannot "$name" "no recipe for a free-threaded $name" ;;
                *) check_pyenv "$name" ;;
            esac ;;
        sid) setup_sid "$name" "$state" ;;
        *) cannot "$name" "unknown place '$where' in $tk_list_file" ;;
    esac
done < <(tk_entries)
say "done in $(( $(date +%s) - start )) s"
exit 0
