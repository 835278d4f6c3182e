#!/usr/bin/env bash
# Builds the real Kubernetes API server and etcd from source (tests/kube/apiserver/go.mod pins
# them, go.sum verifies them) into DIR, for tests/common/kubeapi.rs:
#   kube-apiserver   k8s.io/kubernetes/cmd/kube-apiserver
#   kube-scheduler   k8s.io/kubernetes/cmd/kube-scheduler (the same module: it marks pending pods
#                    Unschedulable, as Karpenter waits for; tests/karpenter_live.rs)
#   etcd             go.etcd.io/etcd/server/v3 (the release that Kubernetes release names)
#   kubeapi-pki      writes the test cluster's CA, certificates and ServiceAccount keys
#   kubelet-double   serves container logs for pods/NAME/log, as a kubelet would
# Only the Go module proxy is needed (nothing prebuilt is downloaded); Go >= the module's `go`
# line (else GOTOOLCHAIN fetches that toolchain, from the proxy too).
# Usage: tests/kube/build-apiserver.sh DIR   (e.g. .tools/kube-v1.37.2)
# Idempotent: nothing is built when DIR/stamp names the same sources and Go; safe to run
# concurrently (a lock). Exit status 75 when the module proxy cannot be reached (tests skip on
# it), 1 on any other failure.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
MODULE=$(cd "$(dirname "$0")/apiserver" && pwd)
DIR=$(mkdir -p "$1" && cd "$1" && pwd)
log() { echo "build-apiserver: $*" >&2; }
command -v go >/dev/null || { log "go is required (https://go.dev/dl/, or Debian's golang-go)"; exit 1; }
cd "$MODULE"
version() { sed -n "s|^\t$1 \(v[^ ]*\).*|\1|p" go.mod; }
KUBE=$(version k8s.io/kubernetes)
ETCD=$(version go.etcd.io/etcd/server/v3)
[ -n "$KUBE" ] && [ -n "$ETCD" ] || { log "cannot read the pinned versions from $MODULE/go.mod"; exit 1; }
# Readonly: go.sum must already hold every checksum (a stale go.sum fails, it is never rewritten);
# no VCS stamping (the module lives in the doctor's git work tree).
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
# The stamp names what was built and from what: the pins, the helpers' sources, the Go release.
STAMP="kubernetes $KUBE etcd $ETCD $(go env GOVERSION) $(cat go.mod go.sum ./*/*.go | sha256sum | cut -c1-16)"
BINARIES=(kube-apiserver kube-scheduler etcd kubeapi-pki kubelet-double)

exec 9>"$DIR/.build.lock"
flock 9
built() {
  [ "$(cat "$DIR/stamp" 2>/dev/null)" = "$STAMP" ] || return 1
  for b in "${BINARIES[@]}"; do [ -x "$DIR/$b" ] || return 1; done
}
if built; then
  log "kube-apiserver $KUBE and etcd $ETCD already in $DIR"
  exit 0
fi

start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
log "downloading the modules of kube-apiserver $KUBE and etcd $ETCD (go.sum verifies them)"
if ! go mod download 2>"$out"; then
  tail -20 "$out" >&2
  if grep -qiE 'dial tcp|no such host|connection refused|i/o timeout|network is unreachable|TLS handshake timeout|proxyconnect|server misbehaving|temporary failure in name resolution' "$out"; then
    log "the Go module proxy ($(go env GOPROXY)) cannot be reached"
    exit 75
  fi
  exit 1
fi

rm -f "$DIR/stamp"
versions="-X 'k8s.io/component-base/version.gitVersion=$KUBE' -X 'k8s.io/client-go/pkg/version.gitVersion=$KUBE'"
versions+=" -X 'k8s.io/component-base/version.gitMajor=$(echo "${KUBE#v}" | cut -d. -f1)'"
versions+=" -X 'k8s.io/component-base/version.gitMinor=$(echo "$KUBE" | cut -d. -f2)'"
versions+=" -X 'k8s.io/component-base/version.gitTreeState=clean'"
log "building kube-apiserver and kube-scheduler $KUBE, etcd $ETCD and the helpers into $DIR"
go build -trimpath -ldflags "-s -w $versions" -o "$DIR/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "-s -w $versions" -o "$DIR/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler
go build -trimpath -ldflags "-s -w" -o "$DIR/etcd" go.etcd.io/etcd/server/v3
go build -trimpath -ldflags "-s -w" -o "$DIR/" ./kubeapi-pki ./kubelet-double
# Each version is read whole before it is matched: `cmd | grep -q` under pipefail fails whenever
# grep exits at its match before cmd has written the rest (SIGPIPE), as etcd's three lines can.
said=$("$DIR/kube-apiserver" --version)
grep -qx "Kubernetes $KUBE" <<<"$said" || { log "kube-apiserver says $said, expected $KUBE"; exit 1; }
said=$("$DIR/kube-scheduler" --version)
grep -qx "Kubernetes $KUBE" <<<"$said" || { log "kube-scheduler says $said, expected $KUBE"; exit 1; }
said=$("$DIR/etcd" --version)
grep -q "^etcd Version: ${ETCD#v}$" <<<"$said" || { log "etcd says ${said%%$'\n'*}, expected $ETCD"; exit 1; }
echo "$STAMP" >"$DIR/stamp"
log "built in $(( $(date +%s) - start )) s"
