#!/usr/bin/env bash
# The README's second command: install, build and run every test.
#  1. dependencies (scripts/install-deps.sh)
#  2. format and generated-code checks
#  3. debug build with AddressSanitizer + UndefinedBehaviorSanitizer: all tests
#  4. release build: all tests (what ships), benchmarks compiled
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh
scripts/check-format.sh
python3 tools/gen_ie_registry.py --check

for preset in debug release; do
  echo "=== build: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== test: $preset"
  ctest --preset "$preset" -j "$jobs"
done
