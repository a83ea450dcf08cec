#!/usr/bin/env bash
# Builds what the browser tests need and runs them: the sfu binary (debug),
# the TypeScript SDK (type check, then one esbuild bundle), and the tests in
# client-sdk-js/test, which start the sfu and headless Chromium on loopback.
# Run scripts/browser-deps.sh first. Exits non-zero on any failure.
#
#   scripts/browser-test.sh [test files...]    default: every *.test.mjs
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
js="$root/client-sdk-js"

cargo build --quiet -p sfu --manifest-path "$root/Cargo.toml"
(cd "$js" && npx --no-install tsc --noEmit -p . && node scripts/bundle.mjs)

if [ "$#" -eq 0 ]; then
    set -- "$js"/test/*.test.mjs
fi
tests=()
for file in "$@"; do tests+=("$(realpath "$file")"); done
# One file at a time: each starts its own sfu and browser on a 2-core machine.
# The outer timeout only turns a hang into a failure.
cd "$js"
exec timeout --kill-after=10s 600s node --test --test-concurrency=1 --test-timeout=300000 "${tests[@]}"
