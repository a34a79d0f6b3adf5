# spotswap: `make demo` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
VENV  ?= $(CURDIR)/.venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all venv build-debug test unit integration lint fmt clippy demo clean

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

## test: unit tests, then integration tests against a private moto server.
test: venv build-debug
	cargo test --workspace --exclude spotswap-tests
	scripts/with-moto.sh cargo test -p spotswap-tests -- --test-threads=4

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## demo: seed a small fleet in moto and watch it converge.
demo: venv
	cargo build --bin spotswap --bin demo-seed
	scripts/with-moto.sh scripts/demo.sh

clean:
	cargo clean
	rm -rf $(VENV)
