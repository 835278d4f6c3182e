#!/usr/bin/env bash
# Installs the AWS emulator moto (server mode, pinned) into a Python venv at DIR.
# Usage: tests/aws/install-moto.sh DIR   (idempotent, safe to run concurrently)
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
exec bash "$(dirname "$0")/../install-venv.sh" "$1" "moto[server]==5.2.5" moto 5.2.5
