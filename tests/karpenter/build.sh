#!/usr/bin/env bash
# Builds Karpenter's AWS controller (github.com/aws/karpenter-provider-aws/cmd/controller) from the
# Go module proxy into OUTDIR, for the live tests (tests/karpenter_live.rs):
#   controller   the controller, as `go build` makes it from the module (nothing patched)
#   crds/        that version's own CRDs (the module's pkg/apis/crds)
#   aws-front    tests/karpenter/aws-front: an HTTPS CONNECT proxy that answers for AWS's host
#                names with a test CA and forwards to a plain-HTTP endpoint (aws-sdk-go v1, in
#                Karpenter v1.0.x, has no endpoint setting: it is reached through HTTPS_PROXY +
#                AWS_CA_BUNDLE)
#   build.json   version, the module's h1: sum (go.sum), Go release, seconds the build took
# Each VERSION has a wrapper module, tests/karpenter/modules/VERSION/{go.mod,go.sum}: it requires
# that release and pins every module the build reads (go.sum verifies them, -mod=readonly). Not
# `go mod tidy` and not `go install …@VERSION`: both pull test-only modules the proxy does not
# serve. Make a new VERSION's wrapper with `tests/karpenter/build.sh --resolve VERSION` (it runs
# `go get` and writes go.mod/go.sum; a go.mod already there keeps its replace lines).
# Usage: tests/karpenter/build.sh VERSION OUTDIR   (e.g. v1.15.0 .tools/karpenter-v1.15.0)
# Idempotent: nothing is built when OUTDIR/stamp names the same sources and toolchain; safe to
# run concurrently (a lock). Exit status 75 when the module proxy cannot be reached, 1 on any
# other failure. The toolchain is GOTOOLCHAIN (default go1.27.3, fetched through the proxy:
# v1.15's go.mod needs a Go newer than 1.26.8).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MODULE=github.com/aws/karpenter-provider-aws
log() { echo "karpenter/build: $*" >&2; }
command -v go >/dev/null || { log "go is required (https://go.dev/dl/, or Debian's golang-go)"; exit 1; }
export GOTOOLCHAIN=${GOTOOLCHAIN_KARPENTER:-go1.27.3}
export CGO_ENABLED=0

if [ "${1:-}" = "--resolve" ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --resolve VERSION" >&2; exit 2; }
  dir="$HERE/modules/$2"
  mkdir -p "$dir"
  [ -f "$dir/go.mod" ] || printf 'module karpenter-doctor/tests/karpenter/%s\n\ngo 1.22\n' "$2" >"$dir/go.mod"
  cd "$dir"
  GOFLAGS=-mod=mod go get "$MODULE/cmd/controller@$2"
  # Every package the build reads, loaded (not compiled): go.sum gets any sum `go get` left out.
  GOFLAGS=-mod=mod go list -deps "$MODULE/cmd/controller" >/dev/null
  exit 0
fi

[ $# -eq 2 ] || { echo "usage: $0 VERSION OUTDIR | --resolve VERSION" >&2; exit 2; }
VERSION=$1
WRAPPER="$HERE/modules/$VERSION"
[ -f "$WRAPPER/go.mod" ] && [ -f "$WRAPPER/go.sum" ] || {
  log "no wrapper module for $VERSION in $WRAPPER (make one: $0 --resolve $VERSION)"; exit 1; }
OUT=$(mkdir -p "$2" && cd "$2" && pwd)
export GOFLAGS="-mod=readonly -buildvcs=false"
STAMP="karpenter $VERSION $GOTOOLCHAIN $(cat "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$HERE"/aws-front/*.go "$HERE"/aws-front/go.mod | sha256sum | cut -c1-16)"

exec 9>"$OUT/.build.lock"
flock 9
built() {
  [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ] || return 1
  [ -x "$OUT/controller" ] && [ -x "$OUT/aws-front" ] && [ -d "$OUT/crds" ]
}
if built; then
  log "Karpenter $VERSION already in $OUT"
  exit 0
fi

start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$WRAPPER"
log "downloading Karpenter $VERSION's modules (and the $GOTOOLCHAIN toolchain; go.sum verifies them)"
if ! go mod download "$MODULE" 2>"$out" || ! go list -deps "$MODULE/cmd/controller" >/dev/null 2>>"$out"; then
  tail -20 "$out" >&2
  if grep -qiE 'dial tcp|no such host|connection refused|i/o timeout|network is unreachable|TLS handshake timeout|proxyconnect|server misbehaving|temporary failure in name resolution' "$out"; then
    log "the Go module proxy ($(go env GOPROXY)) cannot be reached"
    exit 75
  fi
  exit 1
fi
rm -f "$OUT/stamp"
src=$(go list -m -f '{{.Dir}}' "$MODULE")
sum=$(awk -v m="$MODULE" -v v="$VERSION" '$1 == m && $2 == v { print $3 }' go.sum)
[ -n "$sum" ] || { log "no h1: sum of $MODULE $VERSION in $WRAPPER/go.sum"; exit 1; }
downloaded=$(date +%s)
log "building $MODULE/cmd/controller $VERSION into $OUT"
go build -trimpath -ldflags "-s -w -X sigs.k8s.io/karpenter/pkg/operator.Version=$VERSION" \
  -o "$OUT/controller" "$MODULE/cmd/controller"
(cd "$HERE/aws-front" && GOFLAGS=-buildvcs=false go build -trimpath -o "$OUT/aws-front" .)
rm -rf "$OUT/crds"
mkdir -p "$OUT/crds"
cp "$src"/pkg/apis/crds/*.yaml "$OUT/crds/"
chmod u+w "$OUT"/crds/*.yaml
# It runs and has the flags the tests give it (v1.0.x panics before parsing flags without
# SYSTEM_NAMESPACE; --help exits 0 or 2 by version).
said=$(SYSTEM_NAMESPACE=kube-system "$OUT/controller" --help 2>&1 || true)
grep -q -- '-cluster-name' <<<"$said" || { log "the built controller does not run: ${said:0:400}"; exit 1; }
end=$(date +%s)
cat >"$OUT/build.json" <<JSON
{"module": "$MODULE", "version": "$VERSION", "sum": "$sum", "go": "$(go env GOVERSION)",
 "download_seconds": $((downloaded - start)), "build_seconds": $((end - downloaded)), "seconds": $((end - start))}
JSON
echo "$STAMP" >"$OUT/stamp"
log "built Karpenter $VERSION ($sum) in $((end - start)) s ($((downloaded - start)) s downloading)"
