#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 10s).
# Targets are found by name (func FuzzXxx in *_test.go), so new ones are
# picked up without editing this file. New failing inputs land in the
# package's testdata/fuzz/ directory, where `go test` replays them.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-10s}"
failed=0
while IFS= read -r line; do
  file="${line%%:*}"
  name="$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"$line")"
  pkg="./$(dirname "$file")"
  echo "== $pkg $name ($fuzztime)"
  if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg"; then
    echo "!! $pkg $name failed"
    failed=1
  fi
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sed 's#^\./##' | sort)
exit $failed
