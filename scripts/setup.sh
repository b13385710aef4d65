#!/usr/bin/env bash
# Installs what zctr needs on a Debian machine (as root) and builds the static
# binaries. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(busybox-static curl file iproute2 procps util-linux)
# OCI clients and reference runtimes: tests/tests/oci_podman.rs and
# oci_containerd.rs drive zctr-oci through podman (with conmon) and containerd
# (ctr, containerd-shim-runc-v2); runc and crun also serve the benchmark.
packages+=(podman conmon containerd runc crun)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "setup: adding the x86_64-unknown-linux-musl target"
    rustup target add x86_64-unknown-linux-musl
fi
for c in rustfmt clippy; do
    rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done

# cargo-deny (licenses, duplicate versions, sources: scripts/test.sh) from
# crates.io; building it takes a few minutes, so only when it is missing.
if ! cargo deny --version >/dev/null 2>&1; then
    echo "setup: installing cargo-deny (builds from crates.io, a few minutes)"
    cargo install --locked cargo-deny@0.20.2
fi

bash scripts/build-static.sh
