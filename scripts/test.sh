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
# The same end-to-end tests again in a VM with the production layout: pure
# cgroup v2, shared mounts (docs/vm-test.md; ~3.5 min on a fresh machine).
# ZCTR_SKIP_VM=1 leaves it out, e.g. for a quick local run.
if [ "${ZCTR_SKIP_VM:-}" = 1 ]; then
    echo "test: ZCTR_SKIP_VM=1: the pure cgroup v2 VM run is skipped" >&2
else
    ZCTR_VM_QUIET=1 bash scripts/vm-test.sh
fi
