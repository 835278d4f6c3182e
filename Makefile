# karpenter-doctor: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
ORACLE_DIR ?= $(CURDIR)/.oracle
export ORACLE_DIR

.PHONY: test lint unit oracle bench fuzz

## test: the whole suite — lint, unit and integration tests, the differential test against
## the independent IAM evaluator (installed into .oracle/ first).
test: lint oracle unit

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

unit:
	cargo test --locked

oracle:
	bash tests/oracle/install.sh "$(ORACLE_DIR)"

## bench: evaluations per second of the IAM engine (not part of `test`).
bench:
	cargo bench --bench evaluate

## fuzz: property-based fuzzing of the policy parser and evaluator, with more cases than `test`.
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} cargo test --release --test fuzz_policy -- --nocapture
