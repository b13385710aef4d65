#!/usr/bin/env bash
# Installs zctr on a node: the static binaries, a systemd unit and a zinit
# service file for `zctr daemon`.
#
#   scripts/install.sh [PREFIX]          PREFIX default /usr/local
#   DESTDIR=/stage scripts/install.sh /usr   (into an image being built)
#
# Files: PREFIX/bin/{zctr,zctr-shim,zctr-shim-monitor[,zctr-oci]},
# PREFIX/lib/systemd/system/zctr.service, DESTDIR/etc/zinit/zctr.yaml,
# PREFIX/share/doc/zctr/*.md. Builds the static binaries first when they are
# missing. Nothing is started or enabled: `systemctl enable --now zctr` or
# `zinit monitor zctr` does that.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${1:-/usr/local}
case "$PREFIX" in
/*) ;;
*) echo "install: PREFIX must be an absolute path, not $PREFIX" >&2; exit 2 ;;
esac
DESTDIR=${DESTDIR:-}
BUILD=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release
BINS=(zctr zctr-shim zctr-shim-monitor)
OPTIONAL=(zctr-oci)

for b in "${BINS[@]}"; do
    if [ ! -x "$BUILD/$b" ]; then
        echo "install: $BUILD/$b missing: building the static binaries"
        bash scripts/build-static.sh
        break
    fi
done

bindir=$PREFIX/bin
docdir=$PREFIX/share/doc/zctr
unitdir=$PREFIX/lib/systemd/system
zinitdir=/etc/zinit
install -d "$DESTDIR$bindir" "$DESTDIR$docdir" "$DESTDIR$unitdir" "$DESTDIR$zinitdir"
for b in "${BINS[@]}" "${OPTIONAL[@]}"; do
    if [ -x "$BUILD/$b" ]; then
        # Into a temporary name, then renamed: a running daemon keeps its old
        # file, and a shim spawned meanwhile never sees a half-written one.
        install -m 0755 "$BUILD/$b" "$DESTDIR$bindir/.$b.new"
        mv -f "$DESTDIR$bindir/.$b.new" "$DESTDIR$bindir/$b"
        echo "install: $DESTDIR$bindir/$b"
    fi
done
fill() {
    sed -e "s|@BINDIR@|$bindir|g" -e "s|@DOCDIR@|$docdir|g" "$1" >"$2"
    chmod 0644 "$2"
    echo "install: $2"
}
fill packaging/zctr.service.in "$DESTDIR$unitdir/zctr.service"
fill packaging/zctr.zinit.yaml.in "$DESTDIR$zinitdir/zctr.yaml"
for d in docs/*.md; do
    install -m 0644 "$d" "$DESTDIR$docdir/"
done
echo "install: done; start with 'systemctl enable --now zctr' or 'zinit monitor zctr'"
