#!/usr/bin/env bash
# Installs the AWS emulator moto (server mode, pinned) into a Python venv at DIR.
# Usage: tests/aws/install-moto.sh DIR   — idempotent.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
VERSION=5.2.5
if [ -x "$DIR/bin/moto_server" ] && "$DIR/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$VERSION')" 2>/dev/null; then
  echo "moto: already installed in $DIR"
  exit 0
fi
python3 -m venv "$DIR"
"$DIR/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$VERSION"
echo "moto: installed $VERSION in $DIR"
