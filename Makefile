# pushmail: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: run test provision lint manifests fmt fmt-check clippy nextest build bench fuzz fuzz-transcode images

## run: the whole platform in one process, embedded adapters, no servers needed
run:
	PUSHMAIL_STANDALONE__DEMO=true $(CARGO) run --bin pushmail -- standalone

## test: provision the test environment, then fmt check, clippy and every test
test: provision fmt-check manifests clippy nextest

provision:
	bash scripts/provision.sh

# --all-features: the load generator (pushmail's `loadgen` feature) is
# built, linted and tested with everything else, though not shipped.
build:
	$(CARGO) build --workspace --all-targets --all-features

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	$(CARGO) clippy -p pushmail --bins -- -D warnings  # as shipped: no loadgen

manifests:
	bash scripts/check-manifests.sh

lint: fmt-check manifests clippy

nextest:
	source scripts/env.sh && $(CARGO) nextest run --workspace --all-features --no-fail-fast

## bench: the benchmarks (kept out of `make test`); reports under bench/reports/
bench:
	bash bench/run.sh

## fuzz: every fuzz target for FUZZ_SECONDS each (cargo-fuzz): the mail
## parser (nightly, AddressSanitizer), the SMTP/LMTP line reader, the
## session's device frame codec and the WBXML decoder (--sanitizer none:
## safe code, twice as many runs), then the
## converters (fuzz-transcode). Seeds are committed under
## <crate>/fuzz/seeds/<target>; what libFuzzer finds goes to corpus/ (ignored).
FUZZ_SECONDS ?= 300
fuzz: fuzz-transcode
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p services/ingest/fuzz/corpus/parse && cp services/ingest/tests/corpus/*.eml services/ingest/fuzz/corpus/parse/
	cd services/ingest/fuzz && $(CARGO) +nightly fuzz run parse -- -max_total_time=$(FUZZ_SECONDS)
	cd services/ingest/fuzz && mkdir -p corpus/smtp_lines && \
	  $(CARGO) +nightly fuzz run --sanitizer none smtp_lines corpus/smtp_lines seeds/smtp_lines -- -max_total_time=$(FUZZ_SECONDS)
	cd services/session/fuzz && mkdir -p corpus/frames && \
	  $(CARGO) +nightly fuzz run --sanitizer none frames corpus/frames seeds/frames -- -max_total_time=$(FUZZ_SECONDS)
	cd services/wbxml/fuzz && mkdir -p corpus/decode && \
	  $(CARGO) +nightly fuzz run --sanitizer none decode corpus/decode seeds/decode -- -max_total_time=$(FUZZ_SECONDS)

## fuzz-transcode: each converter target (image, pdf, office, text) for FUZZ_SECONDS
fuzz-transcode:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	bash services/transcode/fuzz/seeds.sh
	cd services/transcode/fuzz && for target in image pdf office text; do \
	  $(CARGO) +nightly fuzz run $$target corpus/$$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

## images: the container image (every binary in one; needs a Docker engine, none is needed for `make test`)
IMAGE ?= pushmail:dev
images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine reachable (docker info failed)"; exit 1; }
	docker build -t $(IMAGE) .
