#!/usr/bin/env bash
# The whole test suite, as CI runs it (`make test`). A fresh Debian/Ubuntu
# machine with Rust needs nothing else: `doctor --install` fetches the host
# packages, rustup targets, the fuzz targets' nightly toolchain and the cargo
# tools (cargo-deny, cargo-fuzz), the qemu-profile kernel is built once and then
# comes from the cache (${K1OS_CACHE:-~/.cache/k1os}).
set -euo pipefail
cd "$(dirname "$0")/.."

# ./k1os: host-tools through cargo, acting on this checkout.
host_tools() { ./k1os "$@"; }

echo "==> host packages"
host_tools doctor --install

echo "==> formatting"
cargo fmt --all -- --check

echo "==> external programs run only through host-tools/src/run.rs"
# run.rs names a missing program's package and a failing one's command line,
# status and output tail; nothing else in host-tools/src may use duct or
# std::process::Command. Tests are not checked (host-tools/tests/ and
# init-nostd's probe tests run programs directly), nor are comments.
if grep -rnE 'duct::|process::Command|process::\{[^}]*Command' host-tools/src --include='*.rs' |
    grep -v '^host-tools/src/run\.rs:' | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
    echo "error: the lines above run programs outside host-tools/src/run.rs: use run::Cmd" >&2
    exit 1
fi

echo "==> clippy (warnings are errors)"
# Three runs, not one `--workspace --all-targets`: built in one cargo run with
# host-tools, the stage-1 binary would get rustix's `std` feature (cargo
# unifies features across the packages it builds together) and two panic
# handlers. The library half is checked with its tests, the binaries alone.
cargo clippy --locked --workspace --all-targets --exclude init-nostd -- -D warnings
cargo clippy --locked -p init-nostd --lib --tests -- -D warnings
cargo clippy --locked -p init-nostd -p bench-floor --bins -- -D warnings
# warp's test-only build (crash points, tests/warp.rs) is code too.
cargo clippy --locked -p warp --all-targets --features crash-points -- -D warnings

echo "==> dependency licences and duplicates (deny.toml, deny-stage1.toml)"
cargo deny --locked check licenses bans
cargo deny --locked --manifest-path init-nostd/Cargo.toml --config deny-stage1.toml check bans

echo "==> kernel (qemu profile; cached after the first build)"
host_tools kernel --profile qemu

echo "==> stage 1 and initramfs"
host_tools initramfs
host_tools bench --check-budget

echo "==> root filesystem (packages cached after the first build)"
host_tools rootfs

echo "==> tests (unit, probe images, QEMU boots)"
cargo test --workspace --locked

echo "==> fuzz smoke pass: each target over its committed corpus, then 10 s of new inputs (docs/fuzzing.md)"
ci/fuzz-smoke.sh

echo "==> benchmarks, quick: init-nostd (without and with dm-verity), the busybox reference and the floor (build/bench/)"
host_tools bench --quick --no-build

echo "==> warp's benchmark: binary size, a 50 MiB install, search in 10,000 packages (build/bench/warp/)"
host_tools bench --warp
