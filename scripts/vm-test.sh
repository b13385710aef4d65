#!/usr/bin/env bash
# Run zctr's end-to-end tests (and the manager's unit tests, which attach BPF
# device programs to real cgroups) inside a small qemu VM whose only cgroup
# hierarchy is cgroup2 at /sys/fs/cgroup: the layout of the production nodes,
# which a hybrid host cannot show (ZCTR_VM_CGROUP=v1: only cgroup v1
# hierarchies instead). Exits non-zero if any test fails.
# See docs/vm-test.md.
#
# Settings (environment):
#   ZCTR_VM_CGROUP=v2|v1         the VM's cgroup layout: pure cgroup2 (default) or v1 only
#   ZCTR_VM_ACCEL=auto|kvm|tcg   accelerator (auto: kvm if a probe boot works, cached)
#   ZCTR_VM_TIMEOUT=SECS         hard limit for the VM run (default 1800)
#   ZCTR_VM_MEM=2G ZCTR_VM_SMP=2 VM size
#   ZCTR_VM_TCG_THREAD=single|multi  TCG: one host thread for all vCPUs (default), or
#                                one each (~30% faster, but qemu 7.2's multi-threaded TCG
#                                has oopsed the guest at a kernel text_poke int3)
#   ZCTR_VM_KERNEL=/boot/vmlinuz-X  kernel to boot (default: the newest in /boot,
#                                installing ZCTR_VM_KERNEL_PKG=linux-image-6.12-amd64 if none is >= 6.3)
#   ZCTR_VM_THREADS=N            --test-threads for each test executable (default: ZCTR_VM_SMP)
#   ZCTR_VM_ONLY="a b"           run only these test executables (names as in the summary)
#   ZCTR_VM_TEST_ARGS="..."      extra libtest arguments (a name filter, --exact, --nocapture)
#   ZCTR_VM_RUNNER_CGROUP=root|child  cgroup of the test runner (see scripts/vm/init)
#   ZCTR_VM_ROOT_PROPAGATION=shared|private  mounts shared as under systemd (default) or private
#   ZCTR_VM_SKIP_BUILD=1         reuse the binaries of the previous run
#   ZCTR_VM_HOST_BINS="unshare findmnt"  more host binaries (with their libraries) in the VM
#   ZCTR_VM_PRE='shell code'     run in the VM before the tests (debugging)
#   ZCTR_VM_QUIET=1              do not stream the VM console, print its tail at the end
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
TARGET=x86_64-unknown-linux-musl
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$REPO/$TARGET_DIR ;; esac
OUT=$TARGET_DIR/vm
TIMEOUT=${ZCTR_VM_TIMEOUT:-1800}
MEM=${ZCTR_VM_MEM:-2G}
SMP=${ZCTR_VM_SMP:-2}
THREADS=${ZCTR_VM_THREADS:-$SMP}
START=$(date +%s)
LAYOUT=${ZCTR_VM_CGROUP:-v2}
case "$LAYOUT" in v1 | v2) ;; *)
    echo "vm-test: ZCTR_VM_CGROUP must be v1 or v2, not $LAYOUT" >&2
    exit 2
    ;;
esac

log() { echo "vm-test: [$(($(date +%s) - START))s] $*" >&2; }
die() {
    log "$*"
    exit 2
}

[ "$(id -u)" = 0 ] || die "run as root (installs packages, reads /boot/vmlinuz-*)"
mkdir -p "$OUT"

# ---- 1. what the VM is made of ----
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
# A kernel >= 6.3: idmapped mounts of tmpfs (the VM's /tmp, where the tests
# put rootfs and volumes) need it; Debian 12's default 6.1 refuses them (EINVAL).
newest_kernel() { find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n1; }
kernel_ok() {
    local k
    k=$(newest_kernel)
    [ -n "$k" ] && [ "$(printf '6.3\n%s\n' "${k#/boot/vmlinuz-}" | sort -V | head -n1)" = 6.3 ]
}
if [ -z "${ZCTR_VM_KERNEL:-}" ] && ! kernel_ok; then
    missing+=("${ZCTR_VM_KERNEL_PKG:-linux-image-6.12-amd64}")
fi
pkg_installed busybox-static || missing+=(busybox-static)
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v cpio >/dev/null || missing+=(cpio)
command -v jq >/dev/null || missing+=(jq)
command -v xz >/dev/null || missing+=(xz-utils)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$OUT/apt.log" 2>&1 ||
        { apt-get update -q >>"$OUT/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$OUT/apt.log" 2>&1; } ||
        die "apt-get install ${missing[*]} failed: see $OUT/apt.log"
fi
[ ${#missing[@]} -eq 0 ] || log "installed"
KERNEL=${ZCTR_VM_KERNEL:-$(newest_kernel)}
[ -r "$KERNEL" ] || die "no kernel: $KERNEL"
KVER=${KERNEL#/boot/vmlinuz-}
BUSYBOX=/usr/bin/busybox
[ -f "$BUSYBOX" ] || BUSYBOX=/bin/busybox

# ---- 2. the binaries and test executables (static musl) ----
if [ "${ZCTR_VM_SKIP_BUILD:-}" != 1 ]; then
    log "building the static binaries"
    bash scripts/build-static.sh
    log "building the test executables for $TARGET (debug: no LTO, builds fastest)"
    cargo test --target "$TARGET" -p zctr-tests -p zctr -p zctr-cgroups --no-run --message-format=json \
        >"$OUT/tests.json"
fi
[ -s "$OUT/tests.json" ] || die "no $OUT/tests.json: run without ZCTR_VM_SKIP_BUILD"
# name<TAB>path: integration tests by their target name, unit tests as unit-<crate>.
mapfile -t TESTS < <(
    jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
        | [(if .target.kind[0] == "test" then .target.name else "unit-" + .target.name end),
           .executable] | @tsv' "$OUT/tests.json" |
        sort -t$'\t' -k1,1 | awk -F'\t' '
            # The real clients (podman, containerd) run on the host only: the
            # VM carries no engine. zctr-oci itself is tested here too.
            $1 ~ /^oci_(podman|containerd)$/ { next }
            # scripts/install.sh is not in the VM (its test is about files).
            $1 == "install" { next }
            # unit tests first, then the helpers, shim and manager tests
            { o = ($1 ~ /^unit-/) ? 0 : ($1 == "helpers") ? 1 : ($1 ~ /^shim_/) ? 2 : 3
              print o "\t" $0 }' | sort -s -n -k1,1 | cut -f2-
)
[ ${#TESTS[@]} -gt 0 ] || die "no test executables in $OUT/tests.json"

# ---- 3. the initramfs ----
ROOT=$OUT/root
rm -rf "$ROOT"
mkdir -p "$ROOT"/usr/{bin,sbin,lib,lib64} "$ROOT"/{etc,root,proc,sys,dev,tmp,run,var,vm} \
    "$ROOT"/opt/zctr/{bin,tests}
for d in bin sbin lib lib64; do ln -s usr/$d "$ROOT/$d"; done
cp "$BUSYBOX" "$ROOT/usr/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    [ -e "$ROOT/$applet" ] || [ -L "$ROOT/$applet" ] || ln -s /usr/bin/busybox "$ROOT/$applet"
done

# Host tools busybox lacks or has in a smaller form, with their libraries:
# `ip netns` (iproute2) for joined network namespaces, curl for the raw API calls.
add_host_binary() {
    local bin real lib
    bin=$(command -v "$1") || die "$1 not found on the host"
    real=$(readlink -f "$bin")
    rm -f "$ROOT/usr/bin/$1" "$ROOT/usr/sbin/$1"
    case "$bin" in
        */sbin/*) cp "$real" "$ROOT/usr/sbin/$1" ;;
        *) cp "$real" "$ROOT/usr/bin/$1" ;;
    esac
    for lib in $(ldd "$real" | grep -o '/[^ ]*'); do
        mkdir -p "$ROOT$(dirname "$lib")"
        [ -e "$ROOT$lib" ] || cp -L "$lib" "$ROOT$lib"
    done
}
add_host_binary ip
add_host_binary curl
# bash: the seccomp test runs a distribution shell (with its libraries) under the default filter.
add_host_binary bash
# setpriv with --reuid (busybox's has none): the set-id tests run files as a host user.
add_host_binary setpriv
# prlimit: the daemon tests run the daemon with small fd and memory limits.
add_host_binary prlimit
# GNU tar for the OCI image builder of the test helpers (busybox tar lacks
# --sort, --mtime, --owner); runc for `runc spec` (a config the shim must run).
add_host_binary tar
add_host_binary runc
for b in ${ZCTR_VM_HOST_BINS:-}; do add_host_binary "$b"; done

# Kernel modules zctr needs that Debian builds as modules (overlayfs: every
# container's rootfs is an overlay); the init loads them with busybox insmod,
# which takes only uncompressed modules. A kernel with them built in has none.
mkdir -p "$ROOT/vm/modules"
for m in fs/overlayfs/overlay; do
    src=/lib/modules/$KVER/kernel/$m.ko
    if [ -f "$src.xz" ]; then
        xz -dc "$src.xz" >"$ROOT/vm/modules/${m##*/}.ko"
    elif [ -f "$src" ]; then
        cp "$src" "$ROOT/vm/modules/"
    fi
done

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$ROOT/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
echo zctr-vm >"$ROOT/etc/hostname"
printf '127.0.0.1 localhost zctr-vm\n::1 localhost\n' >"$ROOT/etc/hosts"

# Every binary scripts/build-static.sh made (zctr, zctr-shim, zctr-probe, ...).
for b in "$TARGET_DIR/$TARGET/release"/zctr*; do
    [ -f "$b" ] && [ -x "$b" ] && cp "$b" "$ROOT/opt/zctr/bin/"
done
for b in zctr zctr-shim zctr-probe; do
    [ -f "$ROOT/opt/zctr/bin/$b" ] || die "missing $TARGET_DIR/$TARGET/release/$b"
done
: >"$ROOT/vm/tests"
for t in "${TESTS[@]}"; do
    name=${t%%$'\t'*}
    # Debug info is most of their size; symbols stay for backtraces.
    strip --strip-debug -o "$ROOT/opt/zctr/tests/$name" "${t#*$'\t'}"
    echo "$name" >>"$ROOT/vm/tests"
done
cat >"$ROOT/vm/conf" <<EOF
VM_THREADS='$THREADS'
VM_ONLY='${ZCTR_VM_ONLY:-}'
VM_TEST_ARGS='${ZCTR_VM_TEST_ARGS:-}'
VM_RUNNER_CGROUP='${ZCTR_VM_RUNNER_CGROUP:-root}'
VM_ROOT_PROPAGATION='${ZCTR_VM_ROOT_PROPAGATION:-shared}'
VM_CONTROLLERS='cpu cpuset io memory pids'
VM_CGROUP='$LAYOUT'
VM_CI='${CI:-}'
EOF
[ -z "${ZCTR_VM_PRE:-}" ] || printf '%s\n' "$ZCTR_VM_PRE" >"$ROOT/vm/pre.sh"
install -m 0755 scripts/vm/init "$ROOT/init"
INITRD=$OUT/initramfs.cpio
# Uncompressed: the kernel unpacks it faster than it inflates it under TCG.
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$INITRD"
log "initramfs $INITRD: $(du -h "$INITRD" | cut -f1), ${#TESTS[@]} test executables, kernel $KVER"

# ---- 4. accelerator ----
QEMU=(qemu-system-x86_64 -m "$MEM" -smp "$SMP" -nographic -no-reboot -kernel "$KERNEL")
APPEND="console=ttyS0 quiet panic=-1 rdinit=/init"
kvm_works() {
    # /dev/kvm may exist and still not run an ordinary kernel (e.g. a nested
    # software-virtualisation host): boot a tiny initramfs and look for it.
    local dir=$OUT/kvm-probe
    rm -rf "$dir" && mkdir -p "$dir/root/bin" "$dir/root/dev" "$dir/root/proc"
    cp "$BUSYBOX" "$dir/root/bin/busybox"
    printf '#!/bin/busybox sh\n/bin/busybox echo ZCTR-KVM-PROBE-OK\n/bin/busybox poweroff -f\n' \
        >"$dir/root/init"
    chmod 0755 "$dir/root/init"
    (cd "$dir/root" && find . | cpio -o -H newc -R 0:0 --quiet) >"$dir/initrd"
    timeout -k 5 30 qemu-system-x86_64 -enable-kvm -cpu host -m 256M -nographic -no-reboot \
        -kernel "$KERNEL" -initrd "$dir/initrd" -append "$APPEND" </dev/null >"$dir/log" 2>&1 || true
    grep -q ZCTR-KVM-PROBE-OK "$dir/log"
}
ACCEL=${ZCTR_VM_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
    cache=$OUT/accel-$(uname -r)-$KVER
    if [ -f "$cache" ]; then
        ACCEL=$(cat "$cache")
    elif [ -r /dev/kvm ] && [ -w /dev/kvm ] && log "probing KVM (a test boot, at most 30s)" && kvm_works; then
        ACCEL=kvm
    else
        ACCEL=tcg
    fi
    echo "$ACCEL" >"$cache"
fi
case "$ACCEL" in
    kvm) QEMU+=(-enable-kvm -cpu host) ;;
    tcg)
        log "WARNING: no working KVM here: TCG emulation (slower); see $OUT/kvm-probe/log"
        QEMU+=(-accel "tcg,thread=${ZCTR_VM_TCG_THREAD:-single}" -cpu max)
        ;;
    *) die "ZCTR_VM_ACCEL=$ACCEL: use auto, kvm or tcg" ;;
esac

# ---- 5. boot and run ----
LOG=$OUT/console-$LAYOUT.log
PIDFILE=$OUT/qemu.pid
rm -f "$PIDFILE"
# timeout(1) runs qemu in a process group of its own, out of reach of ^C:
# whatever ends this script ends the VM too.
# shellcheck disable=SC2317 # called by the traps
stop_vm() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 0
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = qemu-system-x86 ]; then
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}
trap stop_vm EXIT
trap 'stop_vm; exit 130' INT TERM
log "booting ($ACCEL, $MEM, $SMP cpus, limit ${TIMEOUT}s); console: $LOG"
BOOT_START=$(date +%s.%N)
BOOTED_AT=""
: >"$LOG"
set +e
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" -pidfile "$PIDFILE" -initrd "$INITRD" -append "$APPEND" \
    </dev/null 2>&1 |
    tr -d '\r' | sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | while IFS= read -r line; do
        printf '%s\n' "$line" >>"$LOG"
        case "$line" in
            *ZCTR-VM-BOOTED:*)
                date +%s.%N >"$OUT/booted-at" ;;
        esac
        [ "${ZCTR_VM_QUIET:-}" = 1 ] || printf '%s\n' "$line"
    done
QEMU_RC=${PIPESTATUS[0]}
set -e
END=$(date +%s)

# ---- 6. verdict ----
[ "${ZCTR_VM_QUIET:-}" != 1 ] || tail -n 80 "$LOG"
echo
echo "==== zctr VM, cgroup layout $LAYOUT: summary ===="
grep -a '^ZCTR-VM-TEST:' "$LOG" || echo "(no test executable finished)"
failed=$(grep -a -E '^test .* \.\.\. FAILED$' "$LOG" | sed 's/^test \(.*\) \.\.\. FAILED$/\1/' || true)
if [ -n "$failed" ]; then
    echo "failed tests:"
    echo "$failed" | sed 's/^/  /'
fi
if [ -f "$OUT/booted-at" ]; then
    BOOTED_AT=$(cat "$OUT/booted-at")
    rm -f "$OUT/booted-at"
    awk -v a="$BOOT_START" -v b="$BOOTED_AT" 'BEGIN { printf "boot: %.1fs from qemu start to the tests (host clock)\n", b - a }'
fi
grep -a -o 'ZCTR-VM-BOOTED:.*' "$LOG" || true
echo "accelerator: $ACCEL; total wall time: $((END - START))s"
result=$(grep -a -o '^ZCTR-VM-RESULT: [a-z]*' "$LOG" | tail -n1 | cut -d' ' -f2 || true)
if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    echo "ZCTR-VM-RESULT: timeout after ${TIMEOUT}s (qemu killed)"
    exit 1
fi
case "$result" in
    pass)
        echo "ZCTR-VM-RESULT: pass"
        exit 0
        ;;
    fail)
        echo "ZCTR-VM-RESULT: fail"
        exit 1
        ;;
    *)
        if grep -a -q -E 'Kernel panic|Oops:' "$LOG"; then
            grep -a -m1 -B2 -A6 -E 'Kernel panic|Oops:' "$LOG"
            echo "ZCTR-VM-RESULT: no result: the guest kernel crashed (above; whole console in $LOG)"
        else
            echo "ZCTR-VM-RESULT: no result (qemu exit $QEMU_RC; the VM never finished the tests)"
        fi
        exit 1
        ;;
esac
