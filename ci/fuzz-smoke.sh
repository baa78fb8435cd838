#!/usr/bin/env bash
# The fuzz smoke pass of the test suite (docs/fuzzing.md): every target of
# fuzz/ runs over its committed corpus — each input there once found new
# coverage or a bug, so this is the regression test — and then for a few
# seconds on new inputs. A crash or a failed property stops with the target's
# log and the input that failed (fuzz/artifacts/<target>/). The long runs
# (10 minutes a target) are done by hand; docs/fuzzing.md says how.
#
# Needs cargo-fuzz and the nightly toolchain fuzz/rust-toolchain.toml pins;
# `./k1os doctor --install` installs both. New inputs go to a scratch corpus
# under the build directory, never into the committed one.
#
#   ci/fuzz-smoke.sh [TARGET…]     all targets when none is named
#   K1OS_FUZZ_SECONDS=N            new-input time per target (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${K1OS_FUZZ_SECONDS:-10}
out=${K1OS_BUILD_DIR:-build}/fuzz-smoke
channel=$(sed -n 's/^channel *= *"\(.*\)"$/\1/p' fuzz/rust-toolchain.toml)
if [ -z "$channel" ]; then
    echo "error: no channel in fuzz/rust-toolchain.toml" >&2
    exit 1
fi
# cargo fuzz's defaults, as the long runs: optimised, debug assertions and
# overflow checks on, AddressSanitizer. (`--dev` builds a third faster cold
# but runs about ten times slower: fewer inputs in the same seconds.)
flags=()
fuzz() { cargo "+$channel" fuzz "$@"; }

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(fuzz list)
fi

start=$(date +%s)
echo "    building ${#targets[@]} targets (cargo +$channel fuzz build)"
fuzz build ${flags[@]+"${flags[@]}"}
echo "    built in $(($(date +%s) - start)) s"

mkdir -p "$out"
for t in "${targets[@]}"; do
    scratch="$out/$t"
    rm -rf "$scratch"
    mkdir -p "$scratch" "fuzz/corpus/$t"
    log="$out/$t.log"
    t0=$(date +%s)
    # Tokens of the format for the JSON targets (fuzz/dict/).
    dict=()
    case $t in
    warp_manifest | warp_index) dict=(-dict=fuzz/dict/warp-json.dict) ;;
    esac
    # The scratch directory first: libFuzzer writes new inputs to the first.
    if ! fuzz run ${flags[@]+"${flags[@]}"} "$t" "$scratch" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 ${dict[@]+"${dict[@]}"} >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "error: fuzz target $t failed (log: $log; the input is in fuzz/artifacts/$t/;" \
            "reproduce: cargo +$channel fuzz run $t fuzz/artifacts/$t/<file>)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    printf '    %-14s %8s runs in %3d s (committed corpus: %d inputs)\n' \
        "$t" "${runs:-?}" "$(($(date +%s) - t0))" "$corpus"
done
echo "    fuzz smoke pass: ${#targets[@]} targets, $(($(date +%s) - start)) s in all"
