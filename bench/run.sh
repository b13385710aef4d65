#!/usr/bin/env bash
# The benchmark, in one command (as root, on Debian):
#
#   bash bench/run.sh [--smoke] [--out FILE.md] [--json FILE.json]
#
# Installs what it compares against when missing (runc, crun, conmon from
# Debian; busybox-static for the bundle), builds the static binaries
# (scripts/build-static.sh, which builds zctr-bench too) and runs zctr-bench:
# zctr next to runc, crun and conmon on one busybox bundle. The full run
# (about 3 minutes on a quiet 2-core VM) writes docs/benchmarks.md and
# bench/results.json (raw samples). --smoke runs a few iterations of every
# part (under a minute, for CI) and writes to a temporary directory unless
# --out/--json are given, so a smoke run never replaces the committed figures.
# Everything it creates (containers, cgroups below its own cgroup, state
# directories, the private daemon) is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench: run as root: it starts real containers" >&2
    exit 1
fi

packages=(busybox-static conmon crun runc util-linux)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash scripts/build-static.sh >/dev/null
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release"

args=("$@")
smoke=0 out=0 json=0
for a in "$@"; do
    case "$a" in
        --smoke) smoke=1 ;;
        --out) out=1 ;;
        --json) json=1 ;;
    esac
done
if [ "$smoke" = 1 ]; then
    tmp=$(mktemp -d /tmp/zctr-bench-smoke.XXXXXX)
    [ "$out" = 1 ] || args+=(--out "$tmp/benchmarks.md")
    [ "$json" = 1 ] || args+=(--json "$tmp/results.json")
fi
exec "$bin/zctr-bench" --bin-dir "$bin" "${args[@]}"
