#!/usr/bin/env bash
# `make chart`: checks the Helm chart, the plain manifests, the alert rules and the runbooks with
# the real tools (helm v4, kubernetes-validate, promtool), installed first into TOOLS_DIR
# (default .tools/). Prints one line per check; exits 1 when any fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
CONTRACT=${CONTRACT:-$ROOT/../shared/docs/contract.md}
CHART=charts/karpenter-doctor
ALL_VALUES=tests/chart/values-all.yaml
NAMESPACE=karpenter-doctor
START=$SECONDS

echo "==> tools ($TOOLS_DIR)"
bash tests/chart/install-tools.sh "$TOOLS_DIR"
HELM="$TOOLS_DIR/bin/helm"
PROMTOOL="$TOOLS_DIR/bin/promtool"
VENV="$TOOLS_DIR/kubernetes-validate"
echo "    $("$HELM" version --short), $("$PROMTOOL" --version 2>&1 | head -1), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=()
passed=0

# run DESCRIPTION COMMAND...: one check; its output is shown only when it fails.
run() {
  local what=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok   $what"
    passed=$((passed + 1))
  else
    echo "FAIL $what"
    sed 's/^/       /' "$WORK/out"
    failed+=("$what")
  fi
}

# validate FILE: kubernetes-validate --strict on every object; only the kinds of prometheus-operator
# (monitoring.coreos.com, no schema in kubernetes-validate) may go unvalidated.
validate() {
  local out rc=0
  out=$("$VENV/bin/kubernetes-validate" --strict "$1" 2>&1) || rc=$?
  echo "$out"
  [ $rc -eq 0 ] || return 1
  # One grep, no pipe: under pipefail an early-exiting `grep -q` would make the test lie.
  if grep -v -e 'INFO .* passed for resource' -e 'monitoring.coreos.com/v1' <<<"$out" >/dev/null; then
    echo "unexpected output (only ServiceMonitor/PrometheusRule may lack a schema)"
    return 1
  fi
}

# same FILE FRESH: FILE in the repository equals the fresh render.
same() {
  diff -u "$1" "$2" || { echo "$1 is stale: run make manifests"; return 1; }
}

echo "==> chart ($CHART)"
run "helm lint --strict, default values" "$HELM" lint --strict "$CHART"
run "helm lint --strict, every toggle on ($ALL_VALUES)" "$HELM" lint --strict "$CHART" -f "$ALL_VALUES"
run "helm template, default values" \
  sh -c '"$1" template karpenter-doctor "$2" --namespace "$3" --include-crds >"$4"' _ \
  "$HELM" "$CHART" "$NAMESPACE" "$WORK/default.yaml"
run "helm template, every toggle on" \
  sh -c '"$1" template karpenter-doctor "$2" --namespace "$3" --include-crds -f "$4" >"$5"' _ \
  "$HELM" "$CHART" "$NAMESPACE" "$ALL_VALUES" "$WORK/all.yaml"
run "kubernetes-validate --strict: default render ($(grep -cs '^kind:' "$WORK/default.yaml" || true) objects, the CRD included)" \
  validate "$WORK/default.yaml"
run "kubernetes-validate --strict: every toggle on ($(grep -cs '^kind:' "$WORK/all.yaml" || true) objects; ServiceMonitor, PrometheusRule have no schema)" \
  validate "$WORK/all.yaml"

echo "==> in sync"
mkdir -p "$WORK/manifests" "$WORK/tests/chart"
run "$CHART/crds/diagnoses.yaml is manifests/crd.yaml (karpenter-doctor crd)" \
  sh -c 'cmp "$1" "$2" || { echo "run make manifests (after make crd)"; exit 1; }' _ \
  manifests/crd.yaml "$CHART/crds/diagnoses.yaml"
run "render the plain manifests and rules (tests/chart/render.sh)" bash tests/chart/render.sh "$HELM" "$WORK/manifests"
run "manifests/karpenter-doctor.yaml is a fresh render of the chart" \
  same manifests/karpenter-doctor.yaml "$WORK/manifests/karpenter-doctor.yaml"
run "manifests/prometheus-rules.yaml is a fresh render of $CHART/rules/alerts.yaml" \
  same manifests/prometheus-rules.yaml "$WORK/manifests/prometheus-rules.yaml"

echo "==> objects, RBAC, alerts, runbooks (tests/chart/check_objects.py)"
if "$VENV/bin/python" tests/chart/check_objects.py --default "$WORK/default.yaml" --all "$WORK/all.yaml" \
  --rules "$WORK/manifests/prometheus-rules.yaml" --contract "$CONTRACT" >"$WORK/objects" 2>&1; then
  cat "$WORK/objects"
else
  cat "$WORK/objects"
  failed+=("check_objects.py")
fi
passed=$((passed + $(grep -c '^ok ' "$WORK/objects" || true)))

echo "==> alert rules (promtool, on the fresh render)"
cp tests/chart/alerts_test.yaml "$WORK/tests/chart/"
run "promtool check rules: $(grep -cs -- '- alert:' "$WORK/manifests/prometheus-rules.yaml" || true) alerts" \
  "$PROMTOOL" check rules "$WORK/manifests/prometheus-rules.yaml"
run "promtool test rules tests/chart/alerts_test.yaml: each alert fires (labels, annotations, runbook_url) and does not" \
  "$PROMTOOL" test rules "$WORK/tests/chart/alerts_test.yaml"

elapsed=$((SECONDS - START))
if [ ${#failed[@]} -gt 0 ]; then
  echo "make chart: ${#failed[@]} failed, $passed passed (${elapsed}s):"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
echo "make chart: $passed checks passed (${elapsed}s)"
