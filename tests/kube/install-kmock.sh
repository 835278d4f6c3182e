#!/usr/bin/env bash
# Installs the Kubernetes API emulator kmock (pinned) into a Python venv at DIR, for tests/kube/emulator.py.
# Usage: tests/kube/install-kmock.sh DIR   — idempotent and safe to run concurrently: a lock file
# serialises installers, and a half-built venv (an interrupted run) is rebuilt from scratch.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=${1%/}
VERSION=0.8
installed() {
  [ -x "$DIR/bin/python" ] &&
    "$DIR/bin/python" -c "import kmock,sys; sys.exit(kmock.__version__ != '$VERSION')" 2>/dev/null
}
command -v python3 >/dev/null || { echo "install-kmock: python3 is required" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "install-kmock: kmock $VERSION needs python3 >= 3.11" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if installed; then
  echo "kmock: $VERSION already installed in $DIR"
  exit 0
fi
rm -rf "$DIR"
python3 -m venv "$DIR"
"$DIR/bin/pip" install --quiet --disable-pip-version-check "kmock==$VERSION"
installed || { echo "install-kmock: kmock $VERSION is not importable from $DIR" >&2; exit 1; }
echo "kmock: installed $VERSION in $DIR"
