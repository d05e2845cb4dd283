#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 60), one after another, from
# the seeds in seeds/<target>/ plus the corpus it grows in corpus/<target>/ (not committed).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable toolchain
# build with the sanitizer flags cargo-fuzz passes. Not part of scripts/test.sh.
#
#   fuzz/run.sh            # all targets, 60 s each
#   SECONDS_PER_TARGET=300 fuzz/run.sh page_token secret
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${SECONDS_PER_TARGET:-60}
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(secret destination_url retry_after duration page_token publish_event)
fi
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz: $target for ${seconds}s" >&2
    cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1
done
