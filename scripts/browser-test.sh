#!/usr/bin/env bash
# Builds what the browser tests need and runs them: the sfu binary and the
# native participant of the mixed-room test (debug),
# the E2EE engine (the e2ee-wasm crate for wasm32, then wasm-bindgen into
# client-sdk-js/build/wasm), the TypeScript SDK (type check, then the esbuild
# bundles of the SDK and its E2EE worker), and the tests in
# client-sdk-js/test, which start the sfu and headless Chromium on loopback.
# Run scripts/browser-deps.sh first. Exits non-zero on any failure.
#
#   scripts/browser-test.sh [test files...]    default: every *.test.mjs
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
js="$root/client-sdk-js"

# The matching wasm-bindgen CLI first on PATH.
eval "$("$root/scripts/browser-deps.sh" --env)"

cargo build --quiet -p sfu -p loadtest --bin sfu --bin participant --manifest-path "$root/Cargo.toml"
# The wasm profile optimises fully: SFrame runs on every frame.
"$root/scripts/wasm-engine.sh" "$js/build/wasm"
(cd "$js" && npx --no-install tsc --noEmit -p . && node scripts/bundle.mjs)

if [ "$#" -eq 0 ]; then
    set -- "$js"/test/*.test.mjs "$root"/webapp/test/*.test.mjs
fi
tests=()
for file in "$@"; do tests+=("$(realpath "$file")"); done
# One file at a time: each starts its own sfu and browser on a 2-core machine.
# The outer timeout only turns a hang into a failure.
cd "$js"
exec timeout --kill-after=10s 600s node --test --test-concurrency=1 --test-timeout=300000 "${tests[@]}"
