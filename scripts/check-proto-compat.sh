#!/usr/bin/env bash
# Fails when proto/ changes in a way that breaks generated clients (buf's FILE rules: a removed or
# renumbered field, a renamed RPC, a changed type...) compared with the previous commit, unless the
# change moves the API to a new package version (a proto/payments/vN directory the previous commit
# did not have): then the old version's clients are expected to move, and the check says so.
#
#   bash scripts/check-proto-compat.sh [against-ref]    (default HEAD~1)
set -euo pipefail
cd "$(dirname "$0")/.."

against="${1:-HEAD~1}"
if [ "$(git rev-parse --is-shallow-repository)" = "true" ] && ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "proto compatibility: $against is not in this shallow clone; fetch more history to check" >&2
  exit 1
fi
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "proto compatibility: no commit $against (the first commit): nothing to compare with"
  exit 0
fi

versions() { git ls-tree --name-only "$1" proto/payments/ 2>/dev/null | sed 's#.*/##' | sort; }
before="$(versions "$against")"
now="$(ls proto/payments | sort)"
new_versions="$(comm -13 <(echo "$before") <(echo "$now") | tr '\n' ' ')"
if [ -n "${new_versions// /}" ]; then
  echo "proto compatibility: new package version(s) ${new_versions}since $against: breaking changes allowed"
  exit 0
fi

npx buf breaking --against ".git#ref=$against"
echo "proto compatibility: no breaking change since $against"
