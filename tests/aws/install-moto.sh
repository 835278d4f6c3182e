#!/usr/bin/env bash
# Installs the AWS emulator moto (server mode, pinned) into a Python venv at DIR.
# Usage: tests/aws/install-moto.sh DIR   — idempotent and safe to run concurrently: a lock file
# serialises installers, and a half-built venv (an interrupted run) is rebuilt from scratch.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=${1%/}
VERSION=5.2.5
installed() {
  [ -x "$DIR/bin/moto_server" ] &&
    "$DIR/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$VERSION')" 2>/dev/null
}
command -v python3 >/dev/null || { echo "install-moto: python3 is required" >&2; exit 1; }
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9
if installed; then
  echo "moto: $VERSION already installed in $DIR"
  exit 0
fi
rm -rf "$DIR"
python3 -m venv "$DIR"
"$DIR/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION"
installed || { echo "install-moto: moto $VERSION is not importable from $DIR" >&2; exit 1; }
echo "moto: installed $VERSION in $DIR"
