#!/usr/bin/env bash
# find-pythons.sh -- list the CPython interpreters this project can build for.
#
# Usage: tools/find-pythons.sh [PYTHON ...]
#
# Prints one "X.Y=/path/to/pythonX.Y" word per usable interpreter, oldest
# minor version first, at most one per minor version.  An interpreter is
# usable when it starts, is CPython 3.12 or newer, is not a free-threaded
# build, ships Python.h, and has the venv/ensurepip modules.
#
# With no arguments it searches pythonX.Y for X.Y in $SBI_MINORS (default
# 3.12 3.13 3.14 3.15): first under $(pyenv root)/versions/*/bin/, newest patch
# release first, then on PATH.  With arguments (names or paths) it checks
# exactly those; a bare name is looked up the same way as above.  The path
# printed is sys.executable, so a pyenv shim resolves to the real
# interpreter.
#
# Prints nothing (and exits 0) when nothing usable is found; the Makefile
# turns that into a clear error.

set -u

# The check runs inside each candidate; prints "X.Y=sys.executable" or fails.
probe='
import os, sys, sysconfig
ok = (
    sys.implementation.name == "cpython"
    and sys.version_info >= (3, 12)
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
    and os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
)
import venv, ensurepip  # noqa: F401  (raises if missing -> not usable)
if not ok:
    raise SystemExit(1)
print("%d.%d=%s" % (sys.version_info[0], sys.version_info[1], sys.executable))
'

check() {
    # $1: candidate name or path.  Prints the probe's answer on success.
    local exe
    exe=$(command -v "$1" 2>/dev/null) || return 1
    [ -x "$exe" ] || return 1
    "$exe" -I -c "$probe" 2>/dev/null
}

declare -A seen=()
out=()

emit() {
    # $1: "X.Y=path"; keep the first interpreter found per minor version.
    local minor=${1%%=*}
    [ -n "${seen[$minor]:-}" ] && return 0
    seen[$minor]=1
    out+=("$1")
}

root=${PYENV_ROOT:-}
if [ -z "$root" ] && command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root 2>/dev/null || true)
fi
[ -n "$root" ] || root=$HOME/.pyenv

find_named() {
    # $1: a command name such as python3.13.  Tries every pyenv version
    # (newest first), then PATH; prints the first usable answer.
    local dir line
    if [ -d "$root/versions" ]; then
        while IFS= read -r dir; do
            [ -n "$dir" ] || continue
            if line=$(check "$dir/bin/$1"); then
                echo "$line"
                return 0
            fi
        done < <(ls -d "$root"/versions/*/ 2>/dev/null | sed 's:/$::' | sort -rV)
    fi
    check "$1"
}

if [ "$#" -gt 0 ]; then
    for cand in "$@"; do
        case $cand in
            */*) line=$(check "$cand") ;;
            *) line=$(find_named "$cand") ;;
        esac
        if [ -n "$line" ]; then
            emit "$line"
        else
            echo "find-pythons: ignoring unusable interpreter: $cand" >&2
        fi
    done
else
    for minor in ${SBI_MINORS:-3.12 3.13 3.14 3.15}; do
        if line=$(find_named "python$minor"); then
            emit "$line"
        fi
    done
fi

# Oldest minor version first.
if [ "${#out[@]}" -gt 0 ]; then
    printf '%s\n' "${out[@]}" | sort -t= -k1,1V | tr '\n' ' '
    echo
fi
