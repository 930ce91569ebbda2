# pushmail: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run test provision lint fmt fmt-check clippy nextest build bench

## run: the whole platform in one process, embedded adapters, no servers needed
run:
	$(CARGO) run --bin pushmail -- standalone

## test: provision the test environment, then fmt check, clippy and every test
test: provision fmt-check clippy nextest

provision:
	bash scripts/provision.sh

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: fmt-check clippy

nextest:
	source scripts/env.sh && $(CARGO) nextest run --workspace --no-fail-fast

## bench: the benchmarks (kept out of `make test`); reports under bench/reports/
bench:
	bash bench/run.sh
