#!/usr/bin/env bash
# The README's second command: install, build and run every test.
#  1. dependencies (scripts/install-deps.sh)
#  2. format and generated-code checks
#  3. debug build with AddressSanitizer + UndefinedBehaviorSanitizer: every test
#     (unit, fuzz-corpus replay, and the integration tests against real peers)
#  4. release build (what ships), benchmarks compiled: unit and fuzz-corpus tests again,
#     optimised. The integration tests run once, under the sanitizers, where they find
#     most; running them twice would double the slowest part of CI, so the release pass
#     does not build them either (FLOWSEC_INTEGRATION_TESTS=OFF: ~5 minutes of CI).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh
scripts/check-format.sh
python3 tools/gen_ie_registry.py --check

for preset in debug release; do
  echo "=== build: $preset"
  extra=()
  [ "$preset" = release ] && extra=(-DFLOWSEC_INTEGRATION_TESTS=OFF)
  cmake --preset "$preset" "${extra[@]}" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== test: $preset"
  if [ "$preset" = debug ]; then
    ctest --preset "$preset" -j "$jobs"
  else
    ctest --preset "$preset" -j "$jobs" -L "unit|fuzz"
  fi
done
