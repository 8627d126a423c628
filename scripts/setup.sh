#!/usr/bin/env bash
# Installs what building and testing Bazil needs, and nothing when it is all
# there already (this runs before every `npm test` and `npm run demo`, so the
# no-op path must stay well under a second: one dpkg-query, two stat calls).
#
# Debian packages: listed in APT_PACKAGES below. To add one, append it there;
# it is installed with apt-get when dpkg does not report it installed.
# npm packages: `npm ci` when node_modules is missing, or when package-lock.json
# is newer than the lock npm wrote into node_modules on its last install.
set -euo pipefail

# Build tools node-gyp needs to compile the native addon (native/, binding.gyp).
APT_PACKAGES=(
  make
  g++
  python3
  libxxhash-dev
  # BLAKE3's official C sources (under /usr/share/cargo/registry), compiled
  # into the ingest addon for new volumes' chunk keys (binding.gyp,
  # scripts/blake3-sources.mjs, docs/crypto.md "Content formats").
  librust-blake3-dev
  # FUSE: the patched fuse-native (scripts/build-fuse.sh) builds against
  # libfuse 2 and mounts/unmounts with fusermount (docs/fuse.md).
  libfuse-dev
  libfuse2
  fuse
  pkg-config
  patch
)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing_apt_packages() {
  # dpkg-query prints one status line per known package and fails for unknown
  # ones; a package counts as present only when fully installed.
  local pkg status
  for pkg in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

install_apt_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system (no dpkg-query): skipping system packages; make sure these are installed: ${APT_PACKAGES[*]}"
    return
  fi
  local missing
  mapfile -t missing < <(missing_apt_packages)
  if ((${#missing[@]} == 0)); then
    return
  fi

  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      die "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    fi
  fi

  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >&2 \
    || die "apt-get update failed; install by hand: apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >&2 \
    || die "apt-get install failed for: ${missing[*]}"
}

install_npm_packages() {
  local stamp=node_modules/.package-lock.json
  local reason=
  if [[ ! -d node_modules ]]; then
    reason="node_modules is missing"
  elif [[ ! -f $stamp ]]; then
    reason="node_modules was not installed by npm ci/install"
  elif [[ package-lock.json -nt $stamp ]]; then
    reason="package-lock.json changed since the last install"
  fi
  if [[ -z $reason ]]; then
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 20 or newer (it comes with npm)"
  say "running npm ci ($reason)"
  npm ci --no-audit --no-fund >&2 || die "npm ci failed"
}

install_apt_packages
install_npm_packages
# The patched fuse-native (a no-op when already built).
bash scripts/build-fuse.sh
