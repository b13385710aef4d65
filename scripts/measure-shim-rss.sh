#!/usr/bin/env bash
# Measures the memory of zctr-shim per container: starts N idle busybox
# containers with `zctr-shim create` + `start` (no manager), waits until their
# monitors idle, and prints RSS, anonymous RSS and PSS per shim (from
# /proc/PID/status and smaps_rollup), then the same for one container that
# writes a log line every 10 ms. Cleans up everything it started, also on
# failure. Run as root after scripts/build-static.sh.
#
#   bash scripts/measure-shim-rss.sh [N]     (default N=10)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10}
BIN=${ZCTR_BIN_DIR:-${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release}
SHIM=$BIN/zctr-shim
BUSYBOX=$(command -v busybox || true)
[ "$(id -u)" = 0 ] || { echo "measure: run as root" >&2; exit 1; }
[ -x "$SHIM" ] || { echo "measure: $SHIM missing; run scripts/build-static.sh" >&2; exit 1; }
[ -n "$BUSYBOX" ] || { echo "measure: busybox missing (apt-get install busybox-static)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/zctr-rss.XXXXXX)
STATES=()
cleanup() {
    for s in "${STATES[@]}"; do
        "$SHIM" kill --state-dir "$s" KILL >/dev/null 2>&1 || true
    done
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,proc,dev,tmp}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in sh sleep; do ln -s busybox "$ROOTFS/bin/$a"; done

bundle() { # name args-json
    mkdir -p "$WORK/$1"
    cat >"$WORK/$1/config.json" <<JSON
{"ociVersion":"1.0.2","root":{"path":"$ROOTFS","readonly":true},
 "process":{"cwd":"/","user":{"uid":0,"gid":0},"args":$2,"env":["PATH=/bin"]},
 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
           {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}],
 "linux":{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"ipc"},{"type":"uts"}]}}
JSON
}

start() { # name (its state dir is already in STATES: this runs in a subshell)
    local state=$WORK/$1.state
    "$SHIM" create --bundle "$WORK/$1" --id "$1" --state-dir "$state" >/dev/null
    "$SHIM" start --state-dir "$state" >/dev/null
    sed -n 's/.*"shim":{[^}]*"pid":\([0-9]*\).*/\1/p' "$state/status.json"
}

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "$2"; }

report() { # label pids...
    local label=$1; shift
    local rss=0 anon=0 pss=0 n=0
    for pid in "$@"; do
        rss=$((rss + $(kib VmRSS /proc/"$pid"/status)))
        anon=$((anon + $(kib RssAnon /proc/"$pid"/status)))
        pss=$((pss + $(kib Pss /proc/"$pid"/smaps_rollup)))
        n=$((n + 1))
    done
    printf '%-34s %4d shims  RSS %4d KiB  anon %4d KiB  PSS %4d KiB  (mean per shim)\n' \
        "$label" "$n" $((rss / n)) $((anon / n)) $((pss / n))
}

PIDS=()
bundle idle '["/bin/sleep","1000000"]'
for i in $(seq "$N"); do
    cp -r "$WORK/idle" "$WORK/idle$i"
    STATES+=("$WORK/idle$i.state")
    PIDS+=("$(start "idle$i")")
done
bundle chatty '["/bin/sh","-c","while :; do echo tick; sleep 0.01; done"]'
STATES+=("$WORK/chatty.state")
CHATTY=$(start chatty)
# The monitors release what they do not need after 1 s without events.
sleep 2

printf 'zctr-shim %s KiB, zctr-shim-monitor %s KiB on disk\n' \
    $(($(stat -c %s "$SHIM") / 1024)) $(($(stat -c %s "$BIN/zctr-shim-monitor") / 1024))
report "idle containers" "${PIDS[@]}"
report "container logging every 10 ms" "$CHATTY"
