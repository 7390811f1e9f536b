#!/usr/bin/env bash
# slipway's own image, in two steps, for builders that cannot reach crates.io from inside `docker build`
# (like the test engine of ci/dockerd.sh, whose containers have no route out):
#   1. build slipway statically on the host (glibc static-pie; --target keeps +crt-static away from
#      build scripts and proc-macros),
#   2. `docker build --target from-host`: the Dockerfile's scratch image around that binary,
# then check that the image starts and answers `slipway --version`.
#
#   ci/slipway-image.sh                 release build, tagged slipway:<version>
#   PROFILE=debug TAG=slipway:test ci/slipway-image.sh
#   FEATURES=kubernetes ci/slipway-image.sh   with cargo features (`slipway kube install` needs kubernetes)
#
# Uses $DOCKER_HOST like the docker CLI does. Builds only the `slipway` package, in target/static.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-release}
FEATURES=${FEATURES:-}
TRIPLE=x86_64-unknown-linux-gnu
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
TAG=${TAG:-slipway:$VERSION}
case "$PROFILE" in
  release) FLAG=--release; DIR=release ;;
  debug) FLAG=; DIR=debug ;;
  *) echo "ci/slipway-image.sh: PROFILE is release or debug, not $PROFILE" >&2; exit 1 ;;
esac

RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  cargo build $FLAG --locked -p slipway --target "$TRIPLE" ${FEATURES:+--features "$FEATURES"}
BINARY="target/static/$TRIPLE/$DIR/slipway"
file "$BINARY" | grep -q "static" || { echo "ci/slipway-image.sh: $BINARY is not statically linked" >&2; exit 1; }

docker build --target from-host --build-arg "HOST_BINARY=$BINARY" -t "$TAG" .
echo "built $TAG; checking it starts:"
docker run --rm "$TAG" --version
