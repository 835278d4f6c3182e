#!/usr/bin/env bash
# Renders the plain manifests from the chart with its default values, into OUTDIR:
#   karpenter-doctor.yaml   the Namespace, the CRD and every object of the chart (kubectl apply -f)
#   prometheus-rules.yaml   the alert rules as a Prometheus rules file (the PrometheusRule's spec)
# `make manifests` renders into manifests/; `make chart` renders into a scratch directory and
# fails when manifests/ differs.
# Usage: tests/chart/render.sh HELM OUTDIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 HELM OUTDIR" >&2; exit 2; }
HELM=$1 OUT=$2
cd "$(dirname "$0")/../.."
CHART=charts/karpenter-doctor
RELEASE=karpenter-doctor
NAMESPACE=karpenter-doctor
VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")

{
  cat <<EOF
# karpenter-doctor $VERSION: plain manifests, rendered from charts/karpenter-doctor with its default
# values by \`make manifests\` (do not edit). Review the ServiceAccount's annotations for IRSA
# (README: "IAM setup") before \`kubectl apply -f manifests/karpenter-doctor.yaml\`.
---
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    pod-security.kubernetes.io/enforce: restricted
EOF
  "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --include-crds
} >"$OUT/karpenter-doctor.yaml.tmp"

# The PrometheusRule's spec, de-indented: exactly rules/alerts.yaml as the chart renders it.
"$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" \
  --set prometheusRule.enabled=true --show-only templates/prometheusrule.yaml |
  awk 'spec { print substr($0, 3) } /^spec:$/ { spec = 1 }' >"$OUT/prometheus-rules.yaml.tmp"
grep -q '^groups:' "$OUT/prometheus-rules.yaml.tmp" ||
  { echo "render.sh: no rule groups in the rendered PrometheusRule" >&2; exit 1; }

mv "$OUT/karpenter-doctor.yaml.tmp" "$OUT/karpenter-doctor.yaml"
mv "$OUT/prometheus-rules.yaml.tmp" "$OUT/prometheus-rules.yaml"
