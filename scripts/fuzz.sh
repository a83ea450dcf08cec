#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz, on the stable
# toolchain, without sanitizers) of the targets in fuzz/harness.
#
#   scripts/fuzz.sh --ci                 every target for FUZZ_CI_SECONDS (20) each; fails on any crash
#   scripts/fuzz.sh TARGET [SECONDS]     one target for SECONDS (600), keeping its working corpus
#   scripts/fuzz.sh --merge TARGET       add inputs that reach new coverage to the seed corpus
#   scripts/fuzz.sh --list               the targets
#
# Environment: FUZZ_TARGET_DIR (build directory; default fuzz/libfuzzer/target),
# FUZZ_CI_SECONDS, FUZZ_JOBS (parallel fuzzing processes for a long run; 1), FUZZ_SEED
# (libFuzzer's -seed; --ci uses 1, other runs a random one).
# See docs/fuzzing.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir="$root/fuzz/libfuzzer"
seeds="$root/fuzz/corpus"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
cargo_fuzz_version=0.13.2

targets() {
    sed -n 's/^name = "\([a-z_]*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^fuzz-libfuzzer$' || true
}

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz $cargo_fuzz_version (about a minute)"
        cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
    fi
}

build() {
    ensure_cargo_fuzz
    local start=$SECONDS
    # No sanitizer: sanitizers need a nightly compiler, and the code under
    # test forbids `unsafe`. Debug assertions and overflow checks stay on.
    (cd "$root" && cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none "$@")
    echo "fuzz: build took $((SECONDS - start)) s"
}

# run TARGET SECONDS WORK_CORPUS ARTIFACT_DIR: prints the final stats line.
run() {
    local t=$1 secs=$2 work=$3 artifacts=$4 log
    mkdir -p "$work" "$artifacts"
    log="$artifacts/$t.log"
    local rc=0
    "$bin_dir/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" \
        ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} ${FUZZ_SEED:+-seed=$FUZZ_SEED} "$work" "$seeds/$t" >"$log" 2>&1 || rc=$?
    local execs cov ft
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    printf 'fuzz: %-20s %4ss  execs %-10s cov %-6s ft %-6s %s\n' "$t" "$secs" "${execs:-?}" \
        "${cov:-?}" "${ft:-?}" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc, see $log)")"
    if [ $rc -ne 0 ]; then
        grep -m1 -A6 -E 'panicked|ERROR: libFuzzer' "$log" || true
        ls "$artifacts" | grep -E '^(crash|timeout|oom|leak)-' | sed "s|^|fuzz:   reproducer $artifacts/|" || true
    fi
    return $rc
}

case "${1:-}" in
--list)
    targets
    ;;
--ci)
    secs=${FUZZ_CI_SECONDS:-20}
    # A fixed seed: a failing CI run replays the same way on the same build.
    export FUZZ_SEED=${FUZZ_SEED:-1}
    # An unoptimised build: half the compile time of a release build (5.4
    # against about 10 CPU-minutes); a 5 s smoke run from the seeds is about
    # reaching code near them, not about executions per second.
    bin_dir="${bin_dir%/release}/debug"
    build --dev
    out=$(mktemp -d)
    passed=0 failed=0
    for t in $(targets); do
        if run "$t" "$secs" "$out/corpus/$t" "$out/artifacts/$t"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    echo "fuzz: $passed passed, $failed failed"
    [ $failed -eq 0 ] && rm -rf "$out"
    exit $((failed > 0))
    ;;
--merge)
    t=${2:?usage: scripts/fuzz.sh --merge TARGET}
    build "$t"
    "$bin_dir/$t" -merge=1 "$seeds/$t" "$fuzz_dir/corpus/$t"
    ;;
"" | -h | --help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    ;;
*)
    t=$1
    secs=${2:-600}
    targets | grep -qx "$t" || { echo "fuzz: no target $t (see --list)" >&2; exit 2; }
    build "$t"
    run "$t" "$secs" "$fuzz_dir/corpus/$t" "$fuzz_dir/artifacts/$t"
    ;;
esac
