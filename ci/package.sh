#!/usr/bin/env bash
# The .deb, installed and used as a user would (packaging/test-deb.sh: files, user, unit, the daemon as
# the unit starts it, a deploy through it, upgrade, remove, purge). It packages the debug binary that
# `cargo test` already built, so CI needs no second, optimised build. Needs root (it installs a package
# and creates a user); elsewhere it says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "note: not root, so the package test (packaging/test-deb.sh) did not run" >&2
  exit 0
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
SLIPWAY_DEB_PROFILE=dev packaging/test-deb.sh
