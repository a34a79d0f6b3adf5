# spotswap: `make demo` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
VENV  ?= $(CURDIR)/.venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all venv build-debug test unit integration lint fmt clippy demo clean template-check build chaos bench

all: test

## venv: the project's Python tools (moto server, cargo-lambda, cfn-lint), pinned.
venv: $(STAMP)
$(STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

build-debug:
	cargo build --workspace --all-targets

## template-check: cfn-lint and `sam validate --lint` on template.yaml. Offline, no credentials.
template-check: venv
	AWS_DEFAULT_REGION=us-east-1 $(VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --region us-east-1 --template-file template.yaml

## build: `sam build` (cargo-lambda + zig, arm64 release), then each function's zip size.
build: venv
	rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	PATH="$(VENV)/bin:$$PATH" AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --template-file template.yaml
	$(PY) scripts/function-zips.py .aws-sam/build

## test: every test of the workspace (unit, planner, integration against a private moto server).
## Always `--workspace`: selecting one package changes feature unification and rebuilds the SDK.
test: venv template-check build-debug
	scripts/with-moto.sh cargo test --workspace -- --test-threads=4

## unit: every test but the moto integration binary, without moto or the venv: each crate's unit
## tests (--lib --bins), the crates' own test targets (crates/*/tests/*.rs: the core's planner
## and property tests, `--test plan`), and the doc tests.
CRATE_TESTS := $(patsubst %,--test %,$(sort $(basename $(notdir $(wildcard crates/*/tests/*.rs)))))
unit:
	cargo test --workspace --lib --bins $(CRATE_TESTS)
	cargo test --workspace --doc

## integration: the integration test binary (tests/integration) against a private moto server.
## It drives the prebuilt Lambda binaries, hence build-debug.
integration: venv build-debug
	scripts/with-moto.sh cargo test --workspace --test integration -- --test-threads=4

## chaos: CHAOS_SCHEDULES (default 1000) randomized, seeded fault schedules against moto through the
## fault proxy; prints `chaos: N schedules, V invariant violations`. A failure prints its replay command.
chaos: venv build-debug
	MOTO_SERVERS=$${MOTO_SERVERS:-2} scripts/with-moto.sh cargo test --workspace --test integration -- --ignored chaos::full --nocapture

## bench: API economy, swap throughput and footprint at 1,000 groups / 20,000 instances, from
## release binaries (the production profile: fat LTO, about 20 min on 2 cores; the venv and the
## planner benches are built meanwhile; `--bins` includes spotswap-proxy, the test proxy that
## enforces EC2's token buckets in front of moto for bench/swaps.py). Writes bench/results.md. BENCH_RUNS (default 5) runs per figure; the table gives medians.
bench:
	$(MAKE) --no-print-directory venv & venv=$$!; \
	CARGO_TARGET_DIR=target/bench-planner cargo bench -p spotswap-core --bench planner --no-run & planner=$$!; \
	cargo build --release --workspace --bins; built=$$?; \
	wait $$venv && wait $$planner && exit $$built
	$(PY) bench/run.py --bin-dir target/release --runs $${BENCH_RUNS:-5} --out bench/results.md

## lint: rustfmt check and clippy with warnings as errors (CI runs it beside `make test`).
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## demo: seed a small fleet in moto and watch it converge.
demo: venv
	cargo build --workspace --all-targets
	scripts/with-moto.sh scripts/demo.sh

clean:
	cargo clean
	rm -rf $(VENV)
