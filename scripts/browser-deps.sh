#!/usr/bin/env bash
# Installs what the browser SDK's build and tests need, and nothing that is
# already there:
#   - Debian's chromium (/usr/bin/chromium), with apt, when it is missing;
#   - client-sdk-js's npm devDependencies (`npm ci`), when package-lock.json
#     changed since the last install;
#   - the wasm-bindgen CLI at exactly the version of the wasm-bindgen crate in
#     Cargo.lock (the CLI refuses a .wasm made by another version), built
#     with `cargo install` into a per-version cache directory when the one on
#     PATH is missing or another version;
#   - the wasm32-unknown-unknown Rust target, when rustup lacks it.
#
# Quiet when everything is in place; progress goes to stderr.
#
#   scripts/browser-deps.sh               install what is missing
#   eval "$(scripts/browser-deps.sh --env)"
#                                         the same, then put the matching
#                                         wasm-bindgen first on PATH
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/e2ee-sfu"
print_env=false
case "${1:-}" in
--env) print_env=true ;;
"") ;;
*)
    echo "usage: $0 [--env]" >&2
    exit 2
    ;;
esac

say() { printf 'browser-deps: %s\n' "$*" >&2; }

# Runs "$@" and reports how long it took.
timed() {
    local what="$1" start=$SECONDS
    shift
    "$@"
    say "$what took $((SECONDS - start)) s"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install_chromium() {
    export DEBIAN_FRONTEND=noninteractive
    local install=(apt-get install -y -qq --no-install-recommends chromium)
    # Package lists that were never fetched, or are stale enough that the
    # mirror no longer has the version they name, need one update.
    if ! apt-cache show chromium >/dev/null 2>&1 || ! as_root "${install[@]}" >/dev/null; then
        as_root apt-get update -qq
        as_root "${install[@]}" >/dev/null
    fi
}

if [ ! -x /usr/bin/chromium ]; then
    say "installing chromium with apt"
    timed "chromium install" apt_install_chromium
fi

# npm ci when package-lock.json differs from the one last installed.
js="$root/client-sdk-js"
stamp="$js/node_modules/.browser-deps-lock"
if ! cmp -s "$js/package-lock.json" "$stamp"; then
    say "installing client-sdk-js npm packages"
    timed "npm ci" npm ci --prefix "$js" --no-audit --no-fund --loglevel=error >/dev/null
    cp "$js/package-lock.json" "$stamp"
fi

# The wasm-bindgen CLI matching Cargo.lock.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
if [ -z "$want" ]; then
    say "no wasm-bindgen in Cargo.lock"
    exit 1
fi
have_version() { "$1" --version 2>/dev/null | awk '{ print $2 }'; }
bindgen_dir=""
on_path="$(command -v wasm-bindgen || true)"
if [ -n "$on_path" ] && [ "$(have_version "$on_path")" = "$want" ]; then
    bindgen_dir="$(dirname "$on_path")"
else
    cached="$cache/wasm-bindgen-$want"
    if [ "$(have_version "$cached/bin/wasm-bindgen")" != "$want" ]; then
        say "building wasm-bindgen-cli $want into $cached (a few minutes, once)"
        # Not --locked: a dependency version its lock file names is no
        # longer in the registry. --debug: it compiles in about 2 minutes of
        # CPU instead of 8, and on our ~4 MB module it runs in 2 s instead
        # of 0.4 s with byte-identical output.
        timed "cargo install wasm-bindgen-cli" \
            cargo install --quiet --debug wasm-bindgen-cli --version "$want" --root "$cached"
    fi
    bindgen_dir="$cached/bin"
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    timed "rustup target add" rustup target add wasm32-unknown-unknown
fi

if $print_env; then
    printf 'export PATH=%q:"$PATH"\n' "$bindgen_dir"
fi
