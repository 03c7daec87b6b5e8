#!/usr/bin/env bash
# ensure-venv.sh -- create or refresh a virtual environment, idempotently.
#
# Usage: tools/ensure-venv.sh VENV_DIR BASE_PYTHON PACKAGE...
#
# Cheap when nothing changed: it only checks that VENV_DIR/bin/python runs
# and that VENV_DIR/.sbi-stamp records the same base interpreter and package
# list.  Otherwise:
#   * the venv is (re)created from BASE_PYTHON when it is missing, broken,
#     or was made from another base interpreter;
#   * pip is upgraded quietly and the packages are installed.
# The stamp is written last, so an interrupted run is redone next time.

set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 VENV_DIR BASE_PYTHON [PACKAGE...]" >&2
    exit 2
fi

venv=$1
base=$2
shift 2
pkgs=("$@")

stamp_file=$venv/.sbi-stamp
want_base="base=$base"
want_pkgs="packages=${pkgs[*]:-}"

have_base=
have_pkgs=
if [ -f "$stamp_file" ]; then
    have_base=$(sed -n 1p "$stamp_file")
    have_pkgs=$(sed -n 2p "$stamp_file")
fi

healthy=0
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' >/dev/null 2>&1; then
    healthy=1
fi

if [ "$healthy" = 1 ] && [ "$have_base" = "$want_base" ] \
        && [ "$have_pkgs" = "$want_pkgs" ]; then
    exit 0
fi

if [ "$healthy" = 0 ] || [ "$have_base" != "$want_base" ]; then
    echo "==> creating $venv from $base"
    rm -rf "$venv"
    "$base" -m venv "$venv"
    # An old pip still works, so failing to upgrade it is not fatal.
    "$venv/bin/python" -m pip install -q --upgrade pip \
        || echo "warning: could not upgrade pip in $venv" >&2
else
    echo "==> updating packages in $venv"
fi

if [ "${#pkgs[@]}" -gt 0 ]; then
    "$venv/bin/python" -m pip install -q "${pkgs[@]}"
fi

printf '%s\n%s\n' "$want_base" "$want_pkgs" >"$stamp_file"
