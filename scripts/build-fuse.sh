#!/usr/bin/env bash
# Builds the patched fuse-native: copies node_modules/fuse-native (as npm
# installed it, so `npm ci` always restores pristine sources) to
# node_modules/.cache/bazil-fuse-native, applies patches/fuse-native+2.2.6.patch
# and compiles it with node-gyp against the system libfuse (libfuse-dev).
#
# Not build/: `node-gyp rebuild` of our own addon deletes that directory. Under
# node_modules/.cache it goes away with node_modules, and `npm ci` is followed
# by this script in setup.sh.
#
# Idempotent and fast when nothing changed: a stamp holds the SHA-256 of the
# inputs (package sources, patch, this script, Node version) and the build is
# skipped when it matches.
set -euo pipefail

VERSION=2.2.6
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SRC=node_modules/fuse-native
DEST=node_modules/.cache/bazil-fuse-native
PATCH=patches/fuse-native+$VERSION.patch
STAMP=$DEST/.bazil-build-stamp

say() { printf 'build-fuse: %s\n' "$*" >&2; }
die() { printf 'build-fuse: error: %s\n' "$*" >&2; exit 1; }

[[ -f $SRC/package.json ]] || die "$SRC is missing: run npm ci"
[[ -f $PATCH ]] || die "$PATCH is missing"

inputs_hash() {
  {
    cat "$SRC/package.json" "$SRC/fuse-native.c" "$SRC/index.js" "$SRC/binding.gyp" "$PATCH" "${BASH_SOURCE[0]}"
    node --version
  } | sha256sum | cut -d' ' -f1
}

hash=$(inputs_hash)
if [[ -f $STAMP && -f $DEST/build/Release/fuse.node && $(<"$STAMP") == "$hash" ]]; then
  exit 0
fi

installed=$(node -p "require('./$SRC/package.json').version")
[[ $installed == "$VERSION" ]] || die "node_modules/fuse-native is $installed, the patch is for $VERSION"
command -v patch >/dev/null 2>&1 || die "patch not found (apt-get install patch)"
pkg-config --exists fuse 2>/dev/null || die "libfuse 2 development files not found (apt-get install libfuse-dev pkg-config)"

say "building patched fuse-native $VERSION in $DEST"
tmp=$DEST.tmp.$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$(dirname "$DEST")"
cp -R "$SRC" "$tmp"
# Without the prebuilt binaries, node-gyp-build can only load what we build.
rm -rf "$tmp/prebuilds" "$tmp/build"
patch -d "$tmp" -p1 --forward --batch --quiet <"$PATCH" || die "$PATCH does not apply to $SRC"

nodedir=${npm_config_nodedir:-}
if [[ -z $nodedir && -f /usr/include/node/node_api.h ]]; then
  nodedir=/usr
fi
(
  cd "$tmp"
  ../../.bin/node-gyp rebuild --loglevel=warn ${nodedir:+--nodedir="$nodedir"} >&2
) || die "node-gyp failed to build fuse-native"

printf '%s\n' "$hash" >"$tmp/.bazil-build-stamp"
rm -rf "$DEST"
mv "$tmp" "$DEST"
trap - EXIT
say "built $DEST/build/Release/fuse.node"
