#!/usr/bin/env bash
# Fails when a C++ file is not clang-formatted (.clang-format). Generated files are exempt.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
  case "$f" in *ie_registry_data.cpp) continue ;; esac
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=1
  fi
done < <(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find src tests bench -name '*.[ch]pp')
[ $bad -eq 0 ] && echo "check-format: ok"
exit $bad
