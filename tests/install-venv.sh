#!/usr/bin/env bash
# Installs one pinned PyPI package into a Python venv, for the emulators and clients the tests
# start. MODULE is imported to check VERSION (its __version__, else its distribution's metadata).
# Usage: tests/install-venv.sh DIR PIP_SPEC MODULE VERSION [MIN_PYTHON]   (e.g. 3.11)
# Idempotent and safe to run concurrently: a lock file serialises installers, and a half-built
# venv (an interrupted run) is rebuilt from scratch.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 DIR PIP_SPEC MODULE VERSION [MIN_PYTHON]" >&2; exit 2; }
DIR=${1%/} SPEC=$2 MODULE=$3 VERSION=$4 MIN=${5:-3.9}
installed() {
  [ -x "$DIR/bin/python" ] &&
    "$DIR/bin/python" -c "import $MODULE,sys,importlib.metadata as m
sys.exit((getattr($MODULE, '__version__', None) or m.version('$MODULE')) != '$VERSION')" 2>/dev/null
}
command -v python3 >/dev/null || { echo "install-venv: python3 is required" >&2; exit 1; }
python3 -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN'.split('.'))))" ||
  { echo "install-venv: $SPEC needs python3 >= $MIN" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if installed; then
  echo "$MODULE: $VERSION already installed in $DIR"
  exit 0
fi
rm -rf "$DIR"
python3 -m venv "$DIR"
"$DIR/bin/pip" install --quiet --disable-pip-version-check "$SPEC"
installed || { echo "install-venv: $MODULE $VERSION is not importable from $DIR" >&2; exit 1; }
echo "$MODULE: installed $VERSION in $DIR"
