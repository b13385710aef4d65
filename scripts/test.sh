#!/usr/bin/env bash
# The whole test suite: formatting, lints, static builds, unit and end-to-end
# tests. Run as root on Debian (the end-to-end tests start real containers).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "test: run as root: the end-to-end tests create namespaces, mounts and cgroups" >&2
    exit 1
fi
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
