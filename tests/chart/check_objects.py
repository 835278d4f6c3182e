"""Assertions on the chart's rendered objects, the alert rules and the runbooks (make chart).

Usage: python check_objects.py --default DEFAULT.yaml --all ALL.yaml --rules RULES.yaml
Each check prints `ok   <what>` or `FAIL <what>: <why>`; the exit status is 1 when one fails.
Runs in the kubernetes-validate venv (PyYAML). Reads, never writes, the repository.
"""

import argparse
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "karpenter-doctor"
RUNBOOKS = ROOT / "docs" / "runbooks"
RELEASE_NAMESPACE = "karpenter-doctor"  # check.sh renders into this namespace
SA = "karpenter-doctor"
UID = 65532
# Alerts whose runbook is not a reason code's.
DOCTOR_RUNBOOKS = ["DoctorAwsLookupsFailing", "DoctorDown", "DoctorKubeAccessDenied"]
EXPECTED_ALERTS = {
    "KarpenterLaunchesBlockedByIAM",
    "KarpenterLaunchRefusalPredicted",
    "KarpenterNodePoolPodsBlocked",
    "KarpenterKmsKeyUnusable",
    "KarpenterDoctorAwsLookupsFailing",
    "KarpenterDoctorDown",
    "KarpenterDoctorKubeAccessDenied",
}
# Label values of contract §6.
STATES = {"active", "resolved", "predicted"}
OUTCOMES = {"ok", "throttled", "denied", "error"}
# The `error` label of karpenter_doctor_kube_errors_total (an extension of §6; metrics.rs).
KUBE_ERRORS = {"unauthorized", "forbidden", "not_found", "conflict", "gone", "throttled",
               "server_error", "connection", "other"}

failures = []


def check(what):
    """Decorator: run a check function that returns a list of problems, and report it."""

    def run(fn):
        def wrapped(*args):
            problems = fn(*args)
            if problems:
                failures.append(what)
                print(f"FAIL {what}:")
                for p in problems:
                    print(f"       - {p}")
            else:
                print(f"ok   {what}")

        return wrapped

    return run


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None, namespace=None):
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]


def one(docs, kind):
    found = find(docs, kind)
    if len(found) != 1:
        raise SystemExit(f"FAIL expected exactly one {kind}, found {len(found)}")
    return found[0]


def crd():
    with open(ROOT / "manifests" / "crd.yaml") as f:
        return yaml.safe_load(f)


def crd_enum(path):
    """The enum at a dotted path of the CRD's v1alpha1 schema, e.g. spec.category."""
    node = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path.split("."):
        node = node["properties"][part]
    return list(node["enum"])


def contract_reasons(contract):
    """The reason codes of contract §5 (table of root-cause reasons), or None without a contract."""
    if contract is None or not contract.exists():
        return None
    text = contract.read_text()
    m = re.search(r"^## 5\..*?(?=^## 6\.)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"FAIL no section 5 in {contract}")
    reasons = set()
    for line in m.group(0).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].startswith("`"):
            reasons.update(re.findall(r"`([A-Za-z]+)`", cells[0]))
    return reasons


# ---------------------------------------------------------------------------------------------
# Objects


@check("default render: the objects of the chart, no ServiceMonitor/PrometheusRule")
def check_default_kinds(docs):
    kinds = sorted(d["kind"] for d in docs)
    want = sorted(
        [
            "CustomResourceDefinition",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
        ]
    )
    return [] if kinds == want else [f"kinds {kinds}, want {want}"]


@check("every toggle on: ServiceMonitor, PrometheusRule, NetworkPolicy (metrics from the monitoring namespace only), --region, IRSA annotation, extra args")
def check_all_kinds(docs):
    problems = []
    for kind in ["ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"]:
        if len(find(docs, kind)) != 1:
            problems.append(f"no {kind}")
    args = container(one(docs, "Deployment"))["args"]
    for arg in ["--region=cn-northwest-1", "--karpenter-namespace=karpenter"]:
        if arg not in args:
            problems.append(f"{arg} missing from {args}")
    sa = one(docs, "ServiceAccount")
    if "eks.amazonaws.com/role-arn" not in (sa["metadata"].get("annotations") or {}):
        problems.append("the ServiceAccount lacks the eks.amazonaws.com/role-arn annotation")
    # The NetworkPolicy: the doctor's pods, ingress only to the metrics port, only from
    # networkPolicy.metricsFrom (values-all.yaml's monitoring namespace).
    policy = one(docs, "NetworkPolicy")["spec"]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    if not policy["podSelector"]["matchLabels"].items() <= labels.items():
        problems.append(f"NetworkPolicy selects {policy['podSelector']}, not the pods {labels}")
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    want = [{"from": [monitoring], "ports": [{"port": "metrics", "protocol": "TCP"}]}]
    if policy.get("policyTypes") != ["Ingress"] or policy.get("ingress") != want:
        problems.append(f"NetworkPolicy {policy}, want ingress {want} only")
    return problems


@check("the CRD rendered from crds/ is manifests/crd.yaml")
def check_crd(docs):
    got = find(docs, "CustomResourceDefinition")
    return [] if got == [crd()] else ["the rendered CRD differs from manifests/crd.yaml"]


def container(deploy):
    return deploy["spec"]["template"]["spec"]["containers"][0]


def arg_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def hardening(docs, karpenter_namespace):
    problems = []
    deploy = one(docs, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    if spec.get("replicas") != 2:
        problems.append(f"replicas {spec.get('replicas')}, want 2")
    psc = pod.get("securityContext") or {}
    for key, want in [("runAsNonRoot", True), ("runAsUser", UID), ("runAsGroup", UID)]:
        if psc.get(key) != want:
            problems.append(f"pod securityContext.{key} = {psc.get(key)!r}, want {want!r}")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod securityContext.seccompProfile.type is not RuntimeDefault")
    for key in ["hostNetwork", "hostPID", "hostIPC"]:
        if pod.get(key):
            problems.append(f"pod {key} is set")
    for v in pod.get("volumes") or []:
        if "hostPath" in v:
            problems.append(f"hostPath volume {v['name']}")
    if pod.get("automountServiceAccountToken") is not True:
        problems.append("automountServiceAccountToken is not true (the controller talks to the API)")
    if pod.get("serviceAccountName") != SA:
        problems.append(f"serviceAccountName {pod.get('serviceAccountName')!r}, want {SA!r}")
    aff = (pod.get("affinity") or {}).get("podAntiAffinity")
    if not aff:
        problems.append("no podAntiAffinity spreading the replicas")
    containers = pod["containers"] + (pod.get("initContainers") or [])
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        for key, want in [
            ("runAsNonRoot", True),
            ("runAsUser", UID),
            ("runAsGroup", UID),
            ("readOnlyRootFilesystem", True),
            ("allowPrivilegeEscalation", False),
        ]:
            if sc.get(key) != want:
                problems.append(f"container {name}: securityContext.{key} = {sc.get(key)!r}, want {want!r}")
        if sc.get("privileged"):
            problems.append(f"container {name}: privileged")
        caps = sc.get("capabilities") or {}
        if caps.get("drop") != ["ALL"] or caps.get("add"):
            problems.append(f"container {name}: capabilities {caps}, want drop [ALL] and no add")
        if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"container {name}: seccompProfile.type is not RuntimeDefault")
        res = c.get("resources") or {}
        for kind, keys in [("requests", ["cpu", "memory"]), ("limits", ["memory"])]:
            for key in keys:
                if key not in (res.get(kind) or {}):
                    problems.append(f"container {name}: no resources.{kind}.{key}")
    c = container(deploy)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") != "health":
            problems.append(f"{probe} is {get}, want GET {path} on port health")
    args = c.get("args") or []
    if args[:1] != ["controller"]:
        problems.append(f"args start with {args[:1]}, want controller")
    if "--leader-elect" not in args:
        problems.append("no --leader-elect with 2 replicas")
    expect = {
        "--leader-election-namespace": RELEASE_NAMESPACE,
        "--karpenter-namespace": karpenter_namespace,
        "--metrics-bind-address": f"0.0.0.0:{ports.get('metrics')}",
        "--health-probe-bind-address": f"0.0.0.0:{ports.get('health')}",
    }
    for flag, want in expect.items():
        if arg_value(args, flag) != want:
            problems.append(f"{flag} = {arg_value(args, flag)!r}, want {want!r}")
    for flag in ["--karpenter-selector", "--log-level", "--recheck-interval-seconds",
                 "--resolved-retention-hours", "--max-diagnoses"]:
        if arg_value(args, flag) is None:
            problems.append(f"no {flag}")
    env = {e["name"]: e for e in c.get("env") or []}
    for name, path in [("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")]:
        got = (((env.get(name) or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if got != path:
            problems.append(f"env {name} from {got!r}, want fieldRef {path}")
    if ports.get("metrics") != 8080 or ports.get("health") != 8081:
        problems.append(f"ports {ports}, want metrics 8080 and health 8081")
    # The Service and the PodDisruptionBudget select the pods.
    labels = spec["template"]["metadata"]["labels"]
    svc = one(docs, "Service")
    if not svc["spec"]["selector"].items() <= labels.items():
        problems.append(f"Service selector {svc['spec']['selector']} does not select pods {labels}")
    if [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] != [("metrics", 8080, "metrics")]:
        problems.append(f"Service ports {svc['spec']['ports']}, want metrics 8080 → metrics")
    for pdb in find(docs, "PodDisruptionBudget"):
        if not pdb["spec"]["selector"]["matchLabels"].items() <= labels.items():
            problems.append("PodDisruptionBudget does not select the pods")
    if not spec["selector"]["matchLabels"].items() <= labels.items():
        problems.append("Deployment selector does not match its pod labels")
    return problems


@check("default render: Deployment hardened (non-root 65532, read-only root, no privilege escalation, drop ALL, seccomp RuntimeDefault), probes, resources, 2 replicas with --leader-elect")
def check_hardening_default(docs):
    problems = hardening(docs, "kube-system")
    c = container(one(docs, "Deployment"))
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    if c["image"] != f"ghcr.io/karpenter-doctor/karpenter-doctor:{chart['appVersion']}":
        problems.append(f"image {c['image']}, want the chart's appVersion {chart['appVersion']} as tag")
    cargo = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    if chart["appVersion"] != cargo:
        problems.append(f"Chart.yaml appVersion {chart['appVersion']} != Cargo.toml version {cargo}")
    if arg_value(c["args"], "--region") is not None:
        problems.append("--region without aws.region")
    return problems


@check("every toggle on: the same hardening")
def check_hardening_all(docs):
    return hardening(docs, "karpenter")


# ---------------------------------------------------------------------------------------------
# RBAC

FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*", "deletecollection"}
# The roles of check's readers (rbac.triage): the ClusterRole and its two Roles.
TRIAGE = re.compile(r".*-triage(-karpenter|-events)?")


def rbac_rules(docs):
    """(kind, namespace, apiGroup, resource, verb) for every permission the chart grants."""
    grants = set()
    for d in docs:
        if d["kind"] not in ("ClusterRole", "Role"):
            continue
        ns = d["metadata"].get("namespace", "")
        for r in d.get("rules") or []:
            for g in r.get("apiGroups") or []:
                for res in r.get("resources") or []:
                    for v in r.get("verbs") or []:
                        grants.add((d["kind"], ns, g, res, v))
    return grants


def rbac(docs, karpenter_namespace, triage_groups=()):
    problems = []
    group = crd()["spec"]["group"]
    plural = crd()["spec"]["names"]["plural"]
    for d in docs:
        if d["kind"] not in ("ClusterRole", "Role"):
            continue
        where = f"{d['kind']} {d['metadata']['name']}"
        if d.get("aggregationRule"):
            problems.append(f"{where}: aggregationRule")
        for r in d.get("rules") or []:
            for field in ["apiGroups", "resources", "verbs", "resourceNames"]:
                if any("*" in x for x in r.get(field) or []):
                    problems.append(f"{where}: wildcard in {field}: {r}")
            if r.get("nonResourceURLs"):
                problems.append(f"{where}: nonResourceURLs {r['nonResourceURLs']}")
            if any(res.split("/")[0] == "secrets" for res in r.get("resources") or []):
                problems.append(f"{where}: grants secrets")
            bad = FORBIDDEN_VERBS & set(r.get("verbs") or [])
            if bad:
                problems.append(f"{where}: verbs {sorted(bad)}")
    read = ["get", "list", "watch"]
    full = read + ["create", "update", "patch", "delete"]
    want = set()

    def grant(kind, ns, g, resources, verbs):
        for res in resources:
            for v in verbs:
                want.add((kind, ns, g, res, v))

    grant("ClusterRole", "", "karpenter.sh", ["nodeclaims", "nodepools"], read)
    grant("ClusterRole", "", "karpenter.k8s.aws", ["ec2nodeclasses"], read)
    # Pending pods on (the default): pods and Karpenter's nominations in every namespace, the
    # doctor's Events on pods (and its Diagnoses') created and patched in every namespace.
    grant("Role", "default", "events.k8s.io", ["events"], read)
    grant("ClusterRole", "", "", ["pods", "events"], ["list", "watch"])
    grant("ClusterRole", "", "events.k8s.io", ["events"], ["create", "patch"])
    grant("ClusterRole", "", group, [plural, f"{plural}/status"], full)
    grant("Role", karpenter_namespace, "", ["serviceaccounts"], read)
    grant("Role", karpenter_namespace, "", ["pods/log"], ["get"])
    grant("Role", RELEASE_NAMESPACE, "coordination.k8s.io", ["leases"], ["get", "create", "update"])
    if triage_groups:
        # check's readers (rbac.triage): list, and get of pods/log, each where check reads it —
        # cluster-wide only the cluster-scoped objects, Karpenter's pods, logs, ServiceAccounts
        # and Deployment in its namespace, its Events in default.
        grant("ClusterRole", "", "karpenter.sh", ["nodeclaims", "nodepools"], ["list"])
        grant("ClusterRole", "", "karpenter.k8s.aws", ["ec2nodeclasses"], ["list"])
        grant("ClusterRole", "", group, [plural], ["list"])
        grant("ClusterRole", "", "", ["pods"], ["get"])
        grant("ClusterRole", "", "", ["events"], ["list"])
        grant("Role", karpenter_namespace, "", ["pods", "serviceaccounts"], ["list"])
        grant("Role", karpenter_namespace, "", ["pods/log"], ["get"])
        grant("Role", karpenter_namespace, "apps", ["deployments"], ["list"])
        grant("Role", "default", "events.k8s.io", ["events"], ["list"])
    got = rbac_rules(docs)
    for extra in sorted(got - want):
        problems.append(f"grants more than least privilege: {extra}")
    for missing in sorted(want - got):
        problems.append(f"lacks {missing}")
    # Every binding binds a rendered role to the doctor's ServiceAccount.
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]) for d in docs
             if d["kind"] in ("ClusterRole", "Role")}
    bound = set()
    for b in docs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        ns = b["metadata"].get("namespace", "")
        ref = b["roleRef"]
        key = (ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"])
        if key not in roles:
            problems.append(f"{b['kind']} {b['metadata']['name']} binds {key}, which the chart does not render")
        bound.add(key)
        if TRIAGE.fullmatch(ref["name"]):
            want_groups = [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g}
                           for g in triage_groups]
            if b["subjects"] != want_groups:
                problems.append(f"{b['kind']} {b['metadata']['name']} binds {b['subjects']}, want {want_groups}")
        elif b["subjects"] != [{"kind": "ServiceAccount", "name": SA, "namespace": RELEASE_NAMESPACE}]:
            problems.append(f"{b['kind']} {b['metadata']['name']} binds {b['subjects']}")
    for role in sorted(roles - bound):
        problems.append(f"{role} is bound to nothing")
    return problems


@check("default render: RBAC least privilege (exact grants; no wildcard, secrets, escalate/bind/impersonate; Roles in kube-system, the release namespace and default)")
def check_rbac_default(docs):
    return rbac(docs, "kube-system")


@check("every toggle on: the same RBAC, the Karpenter Role in karpenter.namespace, and check's triage roles (a ClusterRole for the cluster-scoped objects, Roles in karpenter.namespace and default) bound to rbac.triage.groups")
def check_rbac_all(docs):
    return rbac(docs, "karpenter", ["oncall", "sre"])


# ---------------------------------------------------------------------------------------------
# Monitoring


@check("ServiceMonitor scrapes the Service's metrics port; the PrometheusRule is manifests/prometheus-rules.yaml")
def check_monitoring(docs, rules):
    problems = []
    sm = one(docs, "ServiceMonitor")
    svc = one(docs, "Service")
    sel = sm["spec"]["selector"]["matchLabels"]
    if not sel.items() <= svc["metadata"]["labels"].items():
        problems.append(f"ServiceMonitor selector {sel} does not select the Service")
    ports = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        if ep.get("port") not in ports or ep.get("path") != "/metrics":
            problems.append(f"endpoint {ep} is not /metrics on a Service port {sorted(ports)}")
    if sm["metadata"]["namespace"] != svc["metadata"]["namespace"]:
        problems.append("ServiceMonitor and Service in different namespaces")
    pr = one(docs, "PrometheusRule")
    if pr["spec"] != rules:
        problems.append("the PrometheusRule's spec differs from manifests/prometheus-rules.yaml")
    return problems


def alerts(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def metric_names():
    """The metric names the controller registers (src/cluster/metrics.rs, read only)."""
    src = ROOT / "src" / "cluster" / "metrics.rs"
    names = set(re.findall(r'"(karpenter_doctor_[a-z_]+)"', src.read_text())) if src.exists() else set()
    return names


@check("alert rules: the seven alerts, each with severity, summary, description, runbook_url; metrics, categories and label values of the contract")
def check_alerts(rules):
    problems = []
    rs = alerts(rules)
    names = {r["alert"] for r in rs}
    if names != EXPECTED_ALERTS:
        problems.append(f"alerts {sorted(names)}, want {sorted(EXPECTED_ALERTS)}")
    categories = set(crd_enum("spec.category"))
    registered = metric_names()
    if not registered:
        problems.append("no karpenter_doctor_* metric names found in src/cluster/metrics.rs")
    used_categories = set()
    for r in rs:
        a = r["alert"]
        if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{a}: severity {r.get('labels')}")
        ann = r.get("annotations") or {}
        for key in ["summary", "description", "runbook_url"]:
            if not ann.get(key):
                problems.append(f"{a}: no {key} annotation")
        if not r.get("for"):
            problems.append(f"{a}: no `for` (alerts on one bad scrape)")
        expr = r["expr"]
        for m in re.findall(r"\b(karpenter_doctor_[a-z_]+)", expr):
            if registered and m not in registered:
                problems.append(f"{a}: metric {m} is not one the controller registers {sorted(registered)}")
        for m in re.finditer(r'category=~?"([^"]+)"', expr):
            used = set(m.group(1).split("|"))
            used_categories |= used
            if not used <= categories:
                problems.append(f"{a}: categories {sorted(used - categories)} are not in the CRD's {sorted(categories)}")
        for m in re.finditer(r'state=~?"([^"]+)"', expr):
            if not set(m.group(1).split("|")) <= STATES:
                problems.append(f"{a}: state {m.group(1)} not in {sorted(STATES)}")
        for m in re.finditer(r'outcome=~?"([^"]+)"', expr):
            if not set(m.group(1).split("|")) <= OUTCOMES:
                problems.append(f"{a}: outcome {m.group(1)} not in {sorted(OUTCOMES)}")
        for m in re.finditer(r'error=~?"([^"]+)"', expr):
            if not set(m.group(1).split("|")) <= KUBE_ERRORS:
                problems.append(f"{a}: error {m.group(1)} not in {sorted(KUBE_ERRORS)}")
    for c in sorted(categories - used_categories):
        print(f"     note: no alert names the category {c}")
    return problems


@check("Grafana dashboard: the ConfigMap carries the sidecar label and dashboards/karpenter-doctor.json; it parses, every panel has a query, every query names a metric the controller registers, and the panels cover causes by reason, blocked pods by NodePool, time to diagnosis, AWS calls by outcome")
def check_dashboard(docs):
    problems = []
    maps = find(docs, "ConfigMap")
    if len(maps) != 1:
        return [f"{len(maps)} ConfigMaps, want the dashboard's"]
    cm = maps[0]
    if cm["metadata"]["labels"].get("grafana_dashboard") != "1":
        problems.append(f"ConfigMap labels {cm['metadata']['labels']} lack grafana_dashboard: \"1\"")
    if cm["metadata"].get("namespace") != "monitoring":
        problems.append(f"ConfigMap in {cm['metadata'].get('namespace')}, want grafanaDashboard.namespace")
    text = cm["data"]["karpenter-doctor.json"]
    if text.strip() != (CHART / "dashboards" / "karpenter-doctor.json").read_text().strip():
        problems.append("the ConfigMap's dashboard is not dashboards/karpenter-doctor.json")
    dash = json.loads(text)
    registered = metric_names()
    seen = set()
    for panel in dash["panels"]:
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"panel {panel.get('title')}: no query")
        for t in targets:
            names = re.findall(r"\b(karpenter_doctor_[a-z_]+)", t["expr"])
            if not names:
                problems.append(f"panel {panel['title']}: query {t['expr']} names no metric of the doctor's")
            for m in names:
                base = re.sub(r"_(bucket|sum|count)$", "", m)
                if base not in registered:
                    problems.append(f"panel {panel['title']}: {m} is not a metric the controller registers")
                seen.add(base)
    for want in ["karpenter_doctor_diagnoses", "karpenter_doctor_blocked_pods",
                 "karpenter_doctor_reconcile_duration_seconds", "karpenter_doctor_aws_requests_total"]:
        if want not in seen:
            problems.append(f"no panel shows {want}")
    return problems


@check("runbook_url of every alert resolves to docs/runbooks/<file>.md (reason-templated ones for every reason code)")
def check_runbook_urls(rules, reasons):
    problems = []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    base = values["runbookBaseUrl"].rstrip("/") + "/"
    for r in alerts(rules):
        url = r["annotations"].get("runbook_url", "")
        if not url.startswith(base):
            problems.append(f"{r['alert']}: {url} is not under {base}")
            continue
        rest = url[len(base):]
        if "$labels.reason" in rest:
            by = re.findall(r"by \(([^)]*)\)", r["expr"])
            if not any("reason" in [x.strip() for x in b.split(",")] for b in by):
                problems.append(f"{r['alert']}: runbook_url uses $labels.reason but the expr keeps no reason label")
            for reason in sorted(reasons):
                f = re.sub(r"\{\{\s*\$labels\.reason\s*\}\}", reason, rest)
                if not (RUNBOOKS / f).is_file():
                    problems.append(f"{r['alert']}: reason {reason} → docs/runbooks/{f} does not exist")
        elif "{{" in rest:
            problems.append(f"{r['alert']}: runbook_url {url} templates something other than the reason")
        elif not (RUNBOOKS / rest).is_file():
            problems.append(f"{r['alert']}: docs/runbooks/{rest} does not exist")
    return problems


@check("docs/runbooks: one runbook per reason code, all in the README index, every relative link resolves")
def check_runbooks(reasons):
    problems = []
    for reason in sorted(reasons):
        if not (RUNBOOKS / f"{reason}.md").is_file():
            problems.append(f"no docs/runbooks/{reason}.md")
    index = (RUNBOOKS / "README.md").read_text()
    for name in sorted(reasons) + DOCTOR_RUNBOOKS:
        if f"]({name}.md)" not in index:
            problems.append(f"docs/runbooks/README.md does not link {name}.md")
    for md in sorted(RUNBOOKS.glob("*.md")):
        for link in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", md.read_text()):
            if not (md.parent / link).is_file():
                problems.append(f"{md.name}: link {link} does not resolve")
    return problems


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--default", required=True)
    p.add_argument("--all", required=True)
    p.add_argument("--rules", required=True)
    p.add_argument("--contract", type=pathlib.Path)
    a = p.parse_args()
    default, every, rules = load_docs(a.default), load_docs(a.all), load_docs(a.rules)[0]

    reasons = set(crd_enum("status.rootCause.reason"))
    from_contract = contract_reasons(a.contract)
    if from_contract is None:
        print(f"     note: reason codes from manifests/crd.yaml ({len(reasons)}); no contract at {a.contract}")
    else:
        if from_contract != reasons:
            print(f"     note: contract §5 and the CRD differ: contract only {sorted(from_contract - reasons)}, "
                  f"CRD only {sorted(reasons - from_contract)}")
        reasons |= from_contract
        print(f"     note: reason codes from manifests/crd.yaml and contract §5 ({len(reasons)})")

    check_default_kinds(default)
    check_all_kinds(every)
    check_crd(default)
    check_hardening_default(default)
    check_hardening_all(every)
    check_rbac_default(default)
    check_rbac_all(every)
    check_monitoring(every, rules)
    check_dashboard(every)
    check_alerts(rules)
    check_runbook_urls(rules, reasons)
    check_runbooks(reasons)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
