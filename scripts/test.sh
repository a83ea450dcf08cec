#!/usr/bin/env bash
# Every test: the Rust workspace, then the browser SDK's tests in headless
# Chromium. What the browser tests need (chromium, npm packages, the
# wasm-bindgen CLI, the wasm32 target) is installed first when missing
# (scripts/browser-deps.sh; cached, so a warm run skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
# An assignment, not `eval "$(...)"`, so that a failed install stops here.
browser_env="$(scripts/browser-deps.sh --env)"
eval "$browser_env"
scripts/browser-test.sh
