#!/usr/bin/env bash
# Supply chain (docs/security.md): every dependency's license, duplicate and wildcard versions, and that
# everything comes from crates.io, as deny.toml says. Offline: it reads Cargo.lock and the local registry
# cache and fetches no advisory database. A build fills that cache only with the crates of this platform;
# `cargo fetch` adds the others Cargo.lock names (Windows-only ones too), which cargo metadata reads.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null || cargo install cargo-deny --locked --version 0.20.2
cargo fetch --locked --quiet
cargo deny --offline --locked check --hide-inclusion-graph licenses bans sources
