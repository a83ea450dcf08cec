#!/usr/bin/env bash
# Fails if webapp/dist (the web app the sfu binary embeds) is not exactly
# what scripts/webapp-build.sh makes from the sources now: rebuilds into a
# temporary directory and compares every byte. On a difference it says
# which files differ and how to update the committed copy.
#
#   scripts/webapp-check.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$root/scripts/webapp-build.sh" "$tmp/dist"
if ! diff -r -q "$root/webapp/dist" "$tmp/dist"; then
    if ! diff -q "$root/webapp/dist/BUILD-INFO" "$tmp/dist/BUILD-INFO" >/dev/null; then
        echo "webapp-check: the toolchain differs from the one webapp/dist was built with:" >&2
        diff "$root/webapp/dist/BUILD-INFO" "$tmp/dist/BUILD-INFO" >&2 || true
    fi
    echo "webapp-check: webapp/dist is not what its sources build; run scripts/webapp-build.sh and commit webapp/dist" >&2
    exit 1
fi
echo "webapp-check: webapp/dist matches its sources"
