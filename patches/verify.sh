#!/usr/bin/env bash
# Checks that patches/str0m is exactly the published str0m crate plus the
# patch series in patches/str0m-patches, minus the files we do not vendor.
#
#   patches/verify.sh                 rebuild and compare; exit 1 on any difference
#   patches/verify.sh --update        rebuild and replace patches/str0m with the result
#   patches/verify.sh --series DIR    make DIR a git repository: the pristine crate,
#                                     then one commit per patch (to rebase on a new release)
#
# The crate is downloaded once from crates.io, checked against the sha256
# pinned below (the checksum Cargo.lock recorded for it) and cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/e2ee-conf/crates. Cargo's own download
# cache is used when it holds the crate, so the check also runs offline.
set -euo pipefail

CRATE=str0m
VERSION=0.25.0
SHA256=357c7e453c033c8bb59e912312f9f9ff07c2a9ce7268bcb94f0c828a5b47e58f
# What the vendored tree keeps of the published crate; everything else
# (tests, examples, docs, README, Cargo.lock, Cargo.toml.orig, CI files)
# stays upstream.
KEEP=(Cargo.toml LICENSE-MIT.txt src)

here="$(cd "$(dirname "$0")" && pwd)"
vendored="$here/$CRATE"
series="$here/$CRATE-patches"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/e2ee-conf/crates"
file="$CRATE-$VERSION.crate"

mode=verify
series_dir=
case "${1:-}" in
    "") ;;
    --update) mode=update ;;
    --series)
        mode=series
        series_dir="${2:?--series needs a directory}"
        ;;
    *)
        sed -n '2,9p' "$0" >&2
        exit 2
        ;;
esac

fail() {
    echo "verify.sh: $*" >&2
    exit 1
}

sha_ok() {
    [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$SHA256" ]]
}

# The pristine crate: cached, in Cargo's cache, or downloaded.
crate="$cache/$file"
if ! sha_ok "$crate"; then
    mkdir -p "$cache"
    found=
    for c in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$file"; do
        if sha_ok "$c"; then
            cp "$c" "$crate.part"
            found=1
            break
        fi
    done
    if [[ -z "$found" ]]; then
        curl -sSfL --retry 3 -o "$crate.part" \
            "https://static.crates.io/crates/$CRATE/$file" ||
            fail "cannot download $file"
    fi
    sha_ok "$crate.part" || {
        rm -f "$crate.part"
        fail "$file does not have the pinned sha256 $SHA256"
    }
    mv "$crate.part" "$crate"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$crate" -C "$work"
tree="$work/$CRATE-$VERSION"
[[ -d "$tree" ]] || fail "$file has no $CRATE-$VERSION/ directory"

patches=("$series"/*.patch)
[[ -e "${patches[0]}" ]] || fail "no patches in $series"

if [[ "$mode" == series ]]; then
    [[ ! -e "$series_dir" ]] || fail "$series_dir exists"
    cp -a "$tree" "$series_dir"
    git() { command git -C "$series_dir" -c user.name=verify.sh -c user.email=verify.sh@localhost "$@"; }
    git init -q
    git add -A -f
    git commit -q -m "$CRATE $VERSION as published on crates.io"
    git am -q "${patches[@]}"
    git log --oneline
    exit 0
fi

# --fuzz=0: every context line must match, as the patches were made.
for p in "${patches[@]}"; do
    patch -d "$tree" -p1 --forward --fuzz=0 --no-backup-if-mismatch --quiet -i "$p" ||
        fail "$(basename "$p") does not apply"
done

# Trim to what is vendored.
shopt -s dotglob nullglob
for entry in "$tree"/*; do
    name="$(basename "$entry")"
    keep=
    for k in "${KEEP[@]}"; do
        [[ "$name" == "$k" ]] && keep=1
    done
    [[ -n "$keep" ]] || rm -rf "$entry"
done
shopt -u dotglob nullglob

if [[ "$mode" == update ]]; then
    rm -rf "$vendored"
    cp -r "$tree" "$vendored"
    echo "patches/$CRATE rebuilt from $file and ${#patches[@]} patches"
    exit 0
fi

# Byte for byte, including files only on one side.
if ! diff -r "$tree" "$vendored" >"$work/diff"; then
    sed -e "s#$tree#pristine+patches#g" -e "s#$vendored#patches/$CRATE#g" "$work/diff" | head -n 60 >&2
    fail "patches/$CRATE differs from $file plus patches/$CRATE-patches (above)"
fi
echo "patches/$CRATE = $file (sha256 ok) + ${#patches[@]} patches, trimmed to ${KEEP[*]}"
