# slipway in a container: one statically linked binary on `scratch`, run as a non-root user.
#
#   From source (the build needs crates.io):   docker build -t slipway .
#   From a binary built on the host:           ci/slipway-image.sh   (the two-step build, for builders
#                                               that cannot reach crates.io: see docs/docker.md)
#
# Stages, in this order so that the classic builder (which runs every stage up to the target) never
# needs the network for the two-step build:
#   from-host  the image around a binary passed with --build-arg HOST_BINARY=... (--target from-host)
#   build      compiles slipway statically (glibc static-pie, x86_64)
#   (last)     the image around the binary from `build`

ARG HOST_BINARY=ci/image/no-binary

FROM scratch AS from-host
ARG HOST_BINARY
COPY ci/image/passwd /etc/passwd
COPY ci/image/group /etc/group
COPY --chown=10001:10001 ci/image/no-binary /var/lib/slipway/.keep
COPY ${HOST_BINARY} /usr/local/bin/slipway
USER 10001:10001
WORKDIR /var/lib/slipway
ENV SLIPWAY_STATE_DIR=/var/lib/slipway
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["serve", "--state-dir", "/var/lib/slipway", "--listen", "0.0.0.0:8080"]

FROM rust:1-bookworm AS build
# Cargo features, e.g. --build-arg FEATURES=kubernetes for `slipway kube install`'s Deployment.
ARG FEATURES=
WORKDIR /src
COPY . .
# +crt-static links glibc statically; the explicit --target keeps the flag away from build scripts and
# proc-macros, which must stay dynamic.
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked -p slipway --target x86_64-unknown-linux-gnu ${FEATURES:+--features "$FEATURES"} \
 && cp target/x86_64-unknown-linux-gnu/release/slipway /slipway

FROM scratch
COPY ci/image/passwd /etc/passwd
COPY ci/image/group /etc/group
COPY --chown=10001:10001 ci/image/no-binary /var/lib/slipway/.keep
COPY --from=build /slipway /usr/local/bin/slipway
USER 10001:10001
WORKDIR /var/lib/slipway
ENV SLIPWAY_STATE_DIR=/var/lib/slipway
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["serve", "--state-dir", "/var/lib/slipway", "--listen", "0.0.0.0:8080"]
