#!/bin/bash
# zctr demo: run as root (after scripts/setup.sh, which installs busybox-static
# and builds the static binaries). It
#   - builds a busybox-static rootfs and an image meta file in a temp dir,
#   - starts `zctr daemon` in the background (state root and socket in the temp
#     dir, cgroup parent below this script's own cgroup),
#   - runs a container and shows list, inspect, ps, logs, exec (attached,
#     with stdin, detached), stats, pause/resume, kill, wait, events and
#     delete through the CLI, then `run -a` in the foreground,
#   - stops the daemon.
# Every step is echoed. On exit (also on failure or Ctrl-C) everything is
# removed: containers, shims, the daemon, the cgroup parent, the temp dir.
#
# Environment: ZCTR_BIN_DIR (where zctr and zctr-shim are; default
# target/x86_64-unknown-linux-musl/release), BUSYBOX (default: busybox in PATH).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${ZCTR_BIN_DIR:-$here/target/x86_64-unknown-linux-musl/release}
ZCTR=$bin_dir/zctr
SHIM=$bin_dir/zctr-shim
ID=demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() {
    printf '\033[36m$ %s\033[0m\n' "$*"
    "$@"
}
die() {
    echo "demo: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "run me as root"
[ -x "$ZCTR" ] && [ -x "$SHIM" ] || die "no zctr/zctr-shim in $bin_dir (run scripts/build-static.sh)"
busybox=${BUSYBOX:-$(command -v busybox || true)}
[ -n "$busybox" ] || die "busybox not found (apt-get install busybox-static)"
file -L "$busybox" | grep -Eq 'statically linked|static-pie' ||
    die "$busybox is not statically linked (apt-get install busybox-static)"

# On a pure cgroup v2 host the container limits need controllers enabled in
# the parent's ancestors, which the kernel refuses for a cgroup that holds
# processes (such as a login session's scope). Re-run in a scope of our own,
# where this script is the only process and can step aside into a leaf.
if [ -z "${ZCTR_DEMO_SCOPED:-}" ] && ! grep -q ' - cgroup cgroup ' /proc/self/mountinfo &&
    command -v systemd-run >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    export ZCTR_DEMO_SCOPED=1
    exec systemd-run --quiet --scope --unit="zctr-demo-$$" -p Delegate=yes \
        "$BASH" "$0" "$@"
fi

# --- cgroup parent below our own cgroup ------------------------------------
# Our cgroup per hierarchy (from /proc/self/cgroup) can differ between v1
# hierarchies (e.g. memory:/a/b but cpu:/); the deepest one is at or below
# our cgroup in every hierarchy when they form one chain.
base=
while IFS=: read -r _ _ path; do
    [ ${#path} -gt ${#base} ] && base=$path
done </proc/self/cgroup
base=${base%/}
while IFS=: read -r _ _ path; do
    path=${path%/}
    case "$base/" in "$path"/*) ;; *) die "own cgroups do not form one chain: $path vs $base" ;; esac
done </proc/self/cgroup

# Mount points of every cgroup hierarchy.
mapfile -t cg_mounts < <(awk '$0 ~ / - cgroup2? / { split($0, a, " - "); split(a[2], b, " ");
    if (b[1] == "cgroup" || b[1] == "cgroup2") print $5 }' /proc/self/mountinfo)
[ ${#cg_mounts[@]} -gt 0 ] || die "no cgroup hierarchy is mounted"

parent="${base#/}/zctr-demo-$$"
parent=${parent#/}
self_leaf=
v2_only=
grep -q ' - cgroup cgroup ' /proc/self/mountinfo || v2_only=1
if [ -n "$v2_only" ] && [ -n "$base" ]; then
    own="${cg_mounts[0]}$base"
    # Read with a builtin: a forked reader would count itself.
    mapfile -t procs <"$own/cgroup.procs"
    if [ "${#procs[@]}" = 1 ] && [ "${procs[0]}" = "$$" ]; then
        # Step aside into a leaf so our cgroup may enable controllers below it.
        self_leaf="$own/zctr-demo-$$-self"
        mkdir "$self_leaf"
        echo $$ >"$self_leaf/cgroup.procs"
    else
        echo "demo: warning: $own holds other processes; container limits may not apply" >&2
    fi
fi

tmp=$(mktemp -d /tmp/zctr-demo.XXXXXX)
chmod 755 "$tmp"
socket=$tmp/zctr.sock
root=$tmp/state
daemon_pid=

zctr() { "$ZCTR" --socket "$socket" "$@"; }

# Removes a cgroup tree in every hierarchy: kill what is inside, thaw, rmdir deepest first.
remove_cgroup_tree() {
    local rel=$1 m dir d pid
    for m in "${cg_mounts[@]}"; do
        dir="$m/$rel"
        [ -d "$dir" ] || continue
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            [ -f "$dir/cgroup.kill" ] && echo 1 >"$dir/cgroup.kill" 2>/dev/null || true
            find "$dir" -name freezer.state -exec sh -c 'echo THAWED > "$1"' _ {} \; 2>/dev/null || true
            for pid in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null); do
                kill -9 "$pid" 2>/dev/null || true
            done
            find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
            [ -d "$dir" ] || break
            sleep 0.2
        done
        [ -d "$dir" ] && echo "demo: could not remove cgroup $dir" >&2
    done
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    say "cleanup"
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        zctr delete --force "$ID" >/dev/null 2>&1
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    # Whatever is left of containers and shims lives in the parent's cgroup tree.
    remove_cgroup_tree "$parent"
    if [ -n "$self_leaf" ]; then
        own=${self_leaf%/*}
        # Disable what the daemon enabled so we may return into our cgroup.
        ctrls=$(sed 's/\([^ ]\+\)/-\1/g' "$own/cgroup.subtree_control")
        [ -n "$ctrls" ] && echo "$ctrls" >"$own/cgroup.subtree_control"
        echo $$ >"$own/cgroup.procs"
        rmdir "$self_leaf"
    fi
    if [ -d "$tmp" ]; then
        # Nothing should be mounted there; detach anything that is, deepest first.
        awk -v t="$tmp" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo |
            sort -r | while read -r m; do umount -l "$m"; done
        rm -rf "$tmp"
    fi
    echo "demo: cleaned up"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- rootfs and image meta -------------------------------------------------
say "building a busybox-static rootfs in $tmp/rootfs"
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,dev,proc,sys,etc,tmp,root,run,var}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
chmod 755 "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
cat >"$tmp/meta.json" <<'EOF'
{
  "version": 1,
  "args": ["sh", "-c", "while true; do echo tick $(date +%T); sleep 1; done"],
  "env": {"HOME": "/root"}
}
EOF
step cat "$tmp/meta.json"

# --- daemon ------------------------------------------------------------------
say "starting the daemon (cgroup parent /$parent)"
echo "\$ $ZCTR --socket $socket daemon --root $root --cgroup-parent $parent --shim $SHIM &"
"$ZCTR" --socket "$socket" daemon --root "$root" --cgroup-parent "$parent" --shim "$SHIM" \
    </dev/null >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    zctr list >/dev/null 2>&1 && break
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$tmp/daemon.log" >&2; die "the daemon exited"; }
    sleep 0.1
done
zctr list >/dev/null || { cat "$tmp/daemon.log" >&2; die "the daemon does not answer"; }
step curl -s --unix-socket "$socket" http://zctr/v1/ping && echo

# --- the container -------------------------------------------------------------
say "run"
step zctr run "$ID" --rootfs "$rootfs" --meta "$tmp/meta.json" --memory 67108864 --pids 64
say "list"
step zctr list
say "inspect"
step zctr inspect "$ID"
say "ps"
step zctr ps "$ID"
say "logs (after 2 s)"
step sleep 2
step zctr logs "$ID"
say "exec: a process in the running container, its exit code"
step zctr exec "$ID" -- sh -c 'echo "in $(hostname) as $(id -u)"; exit 3' || echo "(exec exited with $?)"
say "exec -i: stdin goes in"
echo "\$ echo hello | zctr exec -i $ID tr a-z A-Z"
echo hello | zctr exec -i "$ID" tr a-z A-Z
say "exec -d: detached, its output in the log"
step zctr exec -d "$ID" -- sh -c 'echo from-exec-d'
step sleep 0.5
step zctr ps "$ID"
say "stats"
step zctr stats "$ID"
say "pause"
step zctr pause "$ID"
step zctr list
step sleep 2
echo "(no ticks while paused:)"
step zctr logs "$ID"
say "resume"
step zctr resume "$ID"
step zctr list
step sleep 1.5
step zctr logs "$ID"
say "kill, wait"
step zctr kill "$ID" KILL
code=0
step zctr wait "$ID" || code=$?
echo "(wait exited with $code)"
step zctr list
say "events (with exec_started / exec_exited)"
step zctr events --no-follow --filter "id=$ID"
say "delete"
step zctr delete "$ID"
step zctr list
say "run -a: attached before the start, exits with the container's code"
code=0
step zctr run -a --rm once --rootfs "$rootfs" -- sh -c 'echo hello from once; exit 5' || code=$?
echo "(run -a exited with $code)"

say "stopping the daemon"
step kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=
step cat "$tmp/daemon.log"
say "done"
