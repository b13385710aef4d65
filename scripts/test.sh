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
# Licenses, duplicate versions (warnings), sources (deny.toml). Advisories are
# not checked here: the RustSec database is on GitHub, out of this machine's
# reach (docs/architecture.md, "Dependencies").
# cargo-deny reads every package of the lock file, other platforms' too
# (which no build here downloads): fetch them first.
cargo fetch --locked
cargo deny --offline check --hide-inclusion-graph licenses bans sources
# A test that cannot run here (not root, no static busybox, a missing tool)
# prints one "SKIPPED: <test>: <reason>" line and passes; under CI=true it
# fails instead (tests/src/skip.rs). Count the skips so none goes unseen.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
skips=$(grep -o 'SKIPPED: .*' "$log" || true)
if [ -n "$skips" ]; then
    echo "test: $(printf '%s\n' "$skips" | wc -l) skipped (with CI=true each would fail):" >&2
    printf '%s\n' "$skips" | sed 's/^/  /' >&2
else
    echo "test: nothing skipped" >&2
fi
# The benchmark in smoke mode (a few iterations of each part, < 60 s): it
# keeps working; its figures go to a temporary directory, never to
# docs/benchmarks.md (bench/run.sh).
bash bench/run.sh --smoke
# The same end-to-end tests again in a VM with the production layout: pure
# cgroup v2, shared mounts (docs/vm-test.md; ~3.5 min on a fresh machine).
# ZCTR_SKIP_VM=1 leaves it out, e.g. for a quick local run.
if [ "${ZCTR_SKIP_VM:-}" = 1 ]; then
    echo "test: ZCTR_SKIP_VM=1: the pure cgroup v2 VM run is skipped" >&2
else
    ZCTR_VM_QUIET=1 bash scripts/vm-test.sh
fi
