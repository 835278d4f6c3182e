#!/usr/bin/env bash
# Installs the official MCP Python SDK (PyPI `mcp`, pinned) into a Python venv at DIR: the client
# tests/mcp_client.rs drives `karpenter-doctor mcp` with.
# Usage: tests/mcp/install.sh DIR   (idempotent, safe to run concurrently)
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
exec bash "$(dirname "$0")/../install-venv.sh" "$1" "mcp==2.3.0" mcp 2.3.0 3.10
