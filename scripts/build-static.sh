#!/bin/sh
# Build every binary of the workspace as a static musl executable and check that
# each one really is statically linked. Exits non-zero if a build fails or a
# binary is missing or dynamically linked.
set -eu

TARGET=x86_64-unknown-linux-musl
cd "$(dirname "$0")/.."

# The build id both `zctr version` and `zctr-shim --version` print: after a
# partial upgrade they differ and `zctr version` says so.
if [ -z "${ZCTR_BUILD:-}" ]; then
    ZCTR_BUILD=$(git describe --always 2>/dev/null || echo unknown)
fi
export ZCTR_BUILD

cargo build --release --target "$TARGET" --workspace --bins

dir="${CARGO_TARGET_DIR:-target}/$TARGET/release"
status=0
for bin in zctr-probe zctr-shim zctr-shim-monitor zctr-oci zctr; do
    path="$dir/$bin"
    if [ ! -f "$path" ]; then
        echo "build-static: missing $path" >&2
        status=1
        continue
    fi
    desc=$(file -b "$path")
    case "$desc" in
        *"statically linked"* | *"static-pie linked"*)
            echo "build-static: $path: static" ;;
        *)
            echo "build-static: $path is not static: $desc" >&2
            status=1 ;;
    esac
done
exit "$status"
