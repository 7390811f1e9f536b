#!/usr/bin/env bash
# Fuzzing in CI (docs/security.md): builds every cargo-fuzz target in fuzz/ and runs each for a bounded
# time (FUZZ_SECONDS, default 20) from its committed corpus, two at a time (the machine has 2 cores). A
# crash, a broken property or a hang fails the run; the input that did it is left in
# fuzz/artifacts/<target>/ and the end of the target's log is printed, so it can become a regression test.
#
# No sanitizer (`-s none`): the code under test is safe Rust, so AddressSanitizer would add build time and
# slow each run for nothing; overflow checks, debug assertions and the targets' own assertions are what
# catch bugs here. That also lets the stable toolchain build the targets (RUSTC_BOOTSTRAP for cargo-fuzz's
# few unstable flags) on a machine with no nightly.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-20}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# Nightly when installed (FUZZ_TOOLCHAIN picks one), else stable.
toolchain=${FUZZ_TOOLCHAIN:-stable}
if [ -z "${FUZZ_TOOLCHAIN:-}" ] && rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=nightly
fi
[ "$toolchain" = nightly ] || export RUSTC_BOOTSTRAP=1

# New inputs a run finds go to a scratch folder, so CI never dirties the committed corpora.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

start=$(date +%s)
cargo "+$toolchain" fuzz build -s none
echo "fuzz: built every target with $toolchain in $(( $(date +%s) - start ))s"

# cargo fuzz builds where cargo does: fuzz/target, or $CARGO_TARGET_DIR when set.
binaries=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
run() {
  local target=$1
  mkdir -p "$scratch/$target" "corpus/$target" "artifacts/$target"
  # -timeout: one input taking over 10 s is a hang, and fails like a crash.
  if "$binaries/$target" -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -timeout=10 \
      -print_final_stats=1 "$scratch/$target" "corpus/$target" >"$scratch/$target.log" 2>&1; then
    echo "fuzz: $target ran ${seconds}s: $(grep -m1 -o 'Done [0-9]* runs' "$scratch/$target.log")"
  else
    tail -n 60 "$scratch/$target.log"
    echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    return 1
  fi
}
failed=0
running=0
for target in $(cargo "+$toolchain" fuzz list); do
  run "$target" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
[ "$failed" = 0 ] || exit 1
echo "fuzz: all targets passed in $(( $(date +%s) - start ))s"
