#!/usr/bin/env bash
# Installs the Kubernetes API emulator kmock (pinned) into a Python venv at DIR, for
# tests/kube/emulator.py. Usage: tests/kube/install-kmock.sh DIR   (idempotent, concurrent-safe)
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
exec bash "$(dirname "$0")/../install-venv.sh" "$1" "kmock==0.8" kmock 0.8 3.11
