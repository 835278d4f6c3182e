# karpenter-doctor: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
ORACLE_DIR ?= $(CURDIR)/.oracle
export ORACLE_DIR

.PHONY: demo test lint unit oracle moto mcpclient kubeapi karpenter chart bench fuzz fuzz-cargo crd manifests image

CHINA := examples/china-passrole
CMK := examples/cross-account-cmk

## demo: the two seed stories, diagnosed offline from their bundled inputs and snapshots.
demo:
	cargo build --quiet --locked
	@echo "=== AWS China: iam:PassRole denied ($(CHINA)) ==="
	./target/debug/karpenter-doctor explain $(CHINA)/karpenter.log $(CHINA)/serviceaccount.yaml \
		--iam-snapshot $(CHINA)/iam-snapshot.json
	@echo
	@echo "=== Cross-account customer-managed KMS key ($(CMK)) ==="
	./target/debug/karpenter-doctor explain $(CMK)/describe-instances.json $(CMK)/nodeclaims.json \
		$(CMK)/ec2nodeclass.yaml $(CMK)/serviceaccount.yaml \
		--iam-snapshot $(CMK)/iam-snapshot.json --kms-snapshot $(CMK)/kms-snapshot.json

## test: the whole suite — lint, unit and integration tests, the differential test against
## the independent IAM evaluator (installed into .oracle/ first), the live-AWS tests against
## the moto emulator (installed into .venv-moto/ first), the controller end to end against a
## real kube-apiserver and etcd (built from source into .tools/ first), real Karpenter v1.15.0
## (built from source into .tools/ first) writing the doctor's input live, the Helm chart,
## manifests and alert rules (helm, kubernetes-validate, promtool, installed into .tools/ first),
## `karpenter-doctor mcp` driven by the official MCP client SDK (installed into .venv-mcp/ first).
test: lint oracle moto mcpclient kubeapi karpenter chart unit

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

unit:
	cargo test --locked --no-fail-fast

oracle:
	bash tests/oracle/install.sh "$(ORACLE_DIR)"

moto:
	bash tests/aws/install-moto.sh "$(CURDIR)/.venv-moto"

## mcpclient: the official MCP Python SDK (PyPI `mcp`, pinned), the client of tests/mcp_client.rs.
mcpclient:
	bash tests/mcp/install.sh "$(CURDIR)/.venv-mcp"

## kubeapi: kube-apiserver, kube-scheduler and etcd, pinned by tests/kube/apiserver/go.mod, built
## from source (~16 min cold on two cores, the scheduler under a minute of it; nothing when built).
KUBE_VERSION := $(shell sed -n 's|^\tk8s.io/kubernetes \(v[^ ]*\).*|\1|p' tests/kube/apiserver/go.mod)
kubeapi:
	bash tests/kube/build-apiserver.sh "$(CURDIR)/.tools/kube-$(KUBE_VERSION)"

## karpenter: Karpenter's AWS controller (github.com/aws/karpenter-provider-aws cmd/controller),
## KARPENTER_VERSION, built from the Go module proxy with its CRDs into .tools/ (pinned by
## tests/karpenter/modules/VERSION/go.sum; ~6 min cold on two cores; nothing when already built).
## Other versions: make karpenter KARPENTER_VERSION=v1.8.2 (v1.0.8), then
## KARPENTER_LIVE_VERSIONS=v1.8.2 cargo test --test karpenter_live.
KARPENTER_VERSION ?= v1.15.0
karpenter:
	bash tests/karpenter/build.sh $(KARPENTER_VERSION) "$(CURDIR)/.tools/karpenter-$(KARPENTER_VERSION)"

## chart: helm lint --strict and helm template (default values, every toggle on), every object
## through kubernetes-validate --strict, hardening and RBAC assertions, manifests/ and the CRD
## copy in sync, runbooks for every reason code, promtool check/test rules on the alerts.
chart:
	bash tests/chart/check.sh

## bench: evaluations per second of the IAM engine; explain's scan against grep on a
## generated 256 MB Karpenter log; the controller's signal → Diagnosis latency and memory with
## 5 000 and 50 000 NodeClaims watched, and 5 000 with 50 000 pending pods nominated for them; `check`'s wall time and peak memory on 5 000 NodeClaims and an hour
## of Karpenter's debug log; offline `preflight` on 100 EC2NodeClasses on one core; `explain` on 256 MiB
## and 2 GiB of distinct denials; the controller under 1 000 Events of 1 MB (not part of `test`).
bench: moto kubeapi
	cargo bench --bench evaluate
	cargo bench --bench scan
	cargo bench --bench controller
	BENCH_NODECLAIMS=50000 BENCH_EVENTS=0 cargo bench --bench controller
	BENCH_PENDING_PODS=50000 BENCH_EVENTS=0 cargo bench --bench controller
	cargo bench --bench check
	cargo bench --bench preflight
	cargo bench --bench explain

## fuzz: property-based fuzzing of the policy parser and evaluator, with more cases than `test`.
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} cargo test --release --test fuzz_policy --test fuzz_signal -- --nocapture

## fuzz-cargo: coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the scanner and the log path,
## RUNS executions per target (default 10 000 000), seeded with the fixtures and real pastes.
fuzz-cargo:
	bash fuzz/run.sh

## crd: regenerate manifests/crd.yaml from the Rust types (a test fails when it is stale).
crd:
	cargo run --quiet --locked -- crd > manifests/crd.yaml

## manifests: copy manifests/crd.yaml into the chart, render manifests/karpenter-doctor.yaml and
## manifests/prometheus-rules.yaml from the chart (`make chart` fails when they are stale).
manifests:
	bash tests/chart/install-tools.sh "$(CURDIR)/.tools" helm
	cp manifests/crd.yaml charts/karpenter-doctor/crds/diagnoses.yaml
	bash tests/chart/render.sh "$(CURDIR)/.tools/bin/helm" manifests

## image: the container image (Dockerfile; needs a container engine, e.g. CONTAINER_ENGINE=podman).
CONTAINER_ENGINE ?= docker
IMAGE ?= ghcr.io/karpenter-doctor/karpenter-doctor
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
image:
	$(CONTAINER_ENGINE) build -t $(IMAGE):$(VERSION) .
