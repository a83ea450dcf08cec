#!/usr/bin/env bash
# Builds the meeting web app that the sfu binary embeds and serves at `/`,
# into OUT_DIR (default webapp/dist, which is committed so that a fresh
# clone needs only `cargo run --release -p sfu`):
#   - the E2EE engine: the e2ee-wasm crate for wasm32 and wasm-bindgen
#     (scripts/wasm-engine.sh) into OUT_DIR/wasm/;
#   - the app, type-checked by tsc, and the SDK's E2EE worker, bundled by
#     esbuild, and the page and style sheet (webapp/scripts/bundle.mjs);
#   - BUILD-INFO: the toolchain versions the bytes depend on.
# Run scripts/browser-deps.sh once first (npm packages, wasm-bindgen, the
# wasm32 target). scripts/webapp-check.sh verifies the committed copy.
#
#   scripts/webapp-build.sh [OUT_DIR]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$root/webapp/dist}")"

eval "$("$root/scripts/browser-deps.sh" --env)"

rm -rf "$out"
mkdir -p "$out"
"$root/scripts/wasm-engine.sh" "$out/wasm" --no-typescript
# esbuild does not type-check; tsc does (the app and the SDK sources it imports).
"$root/client-sdk-js/node_modules/.bin/tsc" --noEmit -p "$root/webapp"
node "$root/webapp/scripts/bundle.mjs" "$out"
{
    echo "Built by scripts/webapp-build.sh with:"
    rustc --version
    wasm-bindgen --version
    echo "esbuild $(node -e 'console.log(require(process.argv[1]).version)' "$root/client-sdk-js/node_modules/esbuild/package.json")"
} >"$out/BUILD-INFO"
