#!/usr/bin/env bash
# Builds the browser's E2EE engine (the e2ee-wasm crate for wasm32, profile
# `wasm`) and runs wasm-bindgen on it into OUT_DIR (e2ee_wasm.js and
# e2ee_wasm_bg.wasm, plus what the extra wasm-bindgen flags ask for).
#
# The same bytes from any checkout: rustc writes source paths into the
# .wasm (panic locations), so the checkout and the cargo home are remapped
# to fixed prefixes. The flags apply to the wasm32 target only
# (CARGO_TARGET_<triple>_RUSTFLAGS), so host builds keep their cache, and
# every caller (scripts/browser-test.sh, scripts/webapp-build.sh) passes the
# same ones, so they share one cached wasm build.
#
#   scripts/wasm-engine.sh OUT_DIR [wasm-bindgen flags...]
# Needs the matching wasm-bindgen on PATH (scripts/browser-deps.sh --env).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: $0 OUT_DIR [wasm-bindgen flags...]}"
shift
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$root=/src" \
    cargo build --quiet -p e2ee-wasm --target wasm32-unknown-unknown --profile wasm --manifest-path "$root/Cargo.toml"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
wasm-bindgen --target web --out-dir "$out" "$@" "$target_dir/wasm32-unknown-unknown/wasm/e2ee_wasm.wasm"
