#!/usr/bin/env bash
# debian-root.sh -- a minimal Debian unstable root holding the CPythons that
# users run today (3.13 latest, 3.14, 3.15), for building and testing there.
#
# Usage:
#   tools/debian-root.sh build ROOT      make ROOT from scratch (needs root,
#                                        debootstrap and Debian's mirror)
#   tools/debian-root.sh clean ROOT      unmount what is left below ROOT and
#                                        delete it
#   tools/debian-root.sh pythons ROOT    print "deb3.X=/usr/bin/python3.X"
#                                        for each usable Python inside ROOT
#   tools/debian-root.sh run ROOT CMD... run CMD inside ROOT, in this
#                                        repository (bind-mounted at the same
#                                        path), with /proc and /dev/shm
#                                        mounted for the run only
#
# ROOT holds a stamp file (.sbi-root-ready) written last, so an interrupted
# build is redone.  The host's CA bundle and pip configuration are copied in,
# so pip inside reaches PyPI exactly as the host's pip does.  The bind mount
# of the repository is the dangerous part: "build" refuses to delete a ROOT
# that still has anything mounted below it.

set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${DEBIAN_SUITE:-sid}
MINORS=${SBI_DEBIAN_MINORS:-3.13 3.14 3.15}
STAMP=.sbi-root-ready

die() { echo "debian-root: $*" >&2; exit 1; }

mounts_below() {
    # Mount points at or below $1 (absolute), deepest first.
    local abs
    abs=$(realpath -m "$1")
    awk -v p="$abs" '$2 == p || index($2, p "/") == 1 { print $2 }' \
        /proc/self/mounts | sort -r
}

unmount_all() {
    local m
    for m in $(mounts_below "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}

# Every file that configures the host's pip (global, user, site), plus the
# CA bundle the host trusts; copied to the same paths inside the root.
host_pip_files() {
    local f
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt \
            "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" \
            "${PIP_CONFIG_FILE:-}" "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" \
            /etc/ssl/certs/ca-certificates.crt; do
        [ -n "$f" ] && [ -f "$f" ] && echo "$f"
    done
    return 0
}

local_pip_dirs() {
    # Existing local directories that the host's pip configuration or
    # environment uses as package sources (find-links, index-url,
    # extra-index-url as paths or file:// URLs; an index "X/simple" is
    # mounted as X, whose pages link to files beside it), one per line.
    {
        host_pip_files | grep '\.conf$' | xargs -r cat
        env | grep '^PIP_'
    } | grep -iE '^(find[-_]links|(extra[-_])?index[-_]url|PIP_(FIND_LINKS|(EXTRA_)?INDEX_URL))' \
        | grep -oE '(file://)?/[^ ,;"]+' | sed 's|^file://||; s|/*$||; s|/simple$||' \
        | while IFS= read -r d; do
            [ -d "$d" ] && echo "$d"
        done | sort -u
}

cmd_build() {
    local root=$1
    [ "$(id -u)" = 0 ] || die "building the root needs root (chroot, mount)"
    command -v debootstrap >/dev/null \
        || die "debootstrap not found (apt-get install debootstrap)"
    if [ -n "$(mounts_below "$root")" ]; then
        die "$root has mounts below it; refusing to touch it:
$(mounts_below "$root")"
    fi
    rm -rf "$root"
    mkdir -p "$root"
    local pkgs="gcc,make,libc6-dev,ca-certificates,valgrind"
    local m
    for m in $MINORS; do
        pkgs="$pkgs,python$m-dev,python$m-venv"
    done
    echo "==> debootstrap $SUITE into $root ($pkgs)"
    local t0=$SECONDS
    debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$root" \
        "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
    local f
    while IFS= read -r f; do
        mkdir -p "$root$(dirname "$f")"
        cp -L "$f" "$root$f"
    done < <(host_pip_files)
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    # Local package directories the host's pip configuration points at are
    # bind-mounted read-only by "run" (local_pip_dirs), not copied.
    date -u +%FT%TZ >"$root/$STAMP"
    echo "==> $root ready in $((SECONDS - t0)) s; Pythons: $(cmd_pythons "$root")"
}

cmd_clean() {
    local root=$1
    unmount_all "$root"
    if [ -n "$(mounts_below "$root")" ]; then
        die "could not unmount everything below $root"
    fi
    rm -rf "$root" "$root.log"
}

cmd_pythons() {
    local root=$1 m out=()
    [ -f "$root/$STAMP" ] || return 0
    for m in $MINORS; do
        if [ -x "$root/usr/bin/python$m" ] \
                && [ -f "$root/usr/include/python$m/Python.h" ]; then
            out+=("deb$m=/usr/bin/python$m")
        fi
    done
    echo "${out[*]:-}"
}

cmd_run() {
    local root=$1
    shift
    [ -f "$root/$STAMP" ] || die "$root is not built (make debian-root)"
    local repo
    repo=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
    # What this run mounted, innermost first; global, for the EXIT trap.
    SBI_OWN_MOUNTS=()
    # mount_once TARGET ARGS...: mount unless something is already there
    # (an outer run owns it then), remember what this run must undo.
    mount_once() {
        local target=$1
        shift
        mkdir -p "$target"
        if ! mountpoint -q "$target"; then
            mount "$@" "$target"
            SBI_OWN_MOUNTS=("$target" "${SBI_OWN_MOUNTS[@]}")
        fi
    }
    cleanup() {
        local t
        for t in "${SBI_OWN_MOUNTS[@]}"; do
            umount "$t" 2>/dev/null || umount -l "$t"
        done
    }
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mount_once "$root/proc" -t proc proc
    mount_once "$root/dev/shm" -t tmpfs -o mode=1777 tmpfs
    mount_once "$root$repo" --bind "$repo"
    # Local package directories the host's pip configuration names
    # (find-links, extra indexes), read-only, so pip resolves alike.
    local d
    for d in $(local_pip_dirs); do
        mount_once "$root$d" --bind -o ro "$d"
    done
    local rc=0
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        ${PYTHONFAULTHANDLER:+PYTHONFAULTHANDLER=$PYTHONFAULTHANDLER} \
        ${SBI_STRESS_SECONDS:+SBI_STRESS_SECONDS=$SBI_STRESS_SECONDS} \
        ${SBI_FUZZ_PROFILE:+SBI_FUZZ_PROFILE=$SBI_FUZZ_PROFILE} \
        ${SBI_REALCODE:+SBI_REALCODE=$SBI_REALCODE} \
        /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$repo" "$@" || rc=$?
    return $rc
}

case ${1:-} in
    build) [ $# -eq 2 ] || die "usage: $0 build ROOT"; cmd_build "$2" ;;
    clean) [ $# -eq 2 ] || die "usage: $0 clean ROOT"; cmd_clean "$2" ;;
    pythons) [ $# -eq 2 ] || die "usage: $0 pythons ROOT"; cmd_pythons "$2" ;;
    run) [ $# -ge 3 ] || die "usage: $0 run ROOT CMD..."; root=$2; shift 2
        cmd_run "$root" "$@" ;;
    *) die "usage: $0 build|clean|pythons|run ROOT [CMD...]" ;;
esac
