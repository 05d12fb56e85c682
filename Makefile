# Veche — two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed from the package registries by the project's own files; re-running is
# fast (stamp files) and idempotent.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOLC_VERSION := 0.8.30
SOLC_FRONT := $(HOME)/.solcx/solc-v$(SOLC_VERSION)
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)

GETH_VERSION := v1.13.15
GETH := $(HOME)/.cache/veche/geth-$(GETH_VERSION)/geth

.PHONY: all install test lint demo bench compile solc-front geth web browser clean help

all: install

help:
	@echo "make demo     install, start a local chain, run a poll end to end"
	@echo "make test     install and run the whole test suite"
	@echo "make lint     ruff, mypy, import-linter, solhint, eslint, prettier (CI runs it before the tests)"
	@echo "make bench    run the benchmarks and rewrite docs/benchmarks.md"
	@echo "make install  only install the toolchain (Python venv, npm tools, solc front)"
	@echo "make geth     build go-ethereum $(GETH_VERSION) for the validator network (needs Go)"
	@echo "make web      build the web pages (web/dist/, served by the API at / and /results)"
	@echo "make browser  install Debian's chromium for the browser tests (make test does it)"

install: $(VENV)/.installed node_modules/.installed solc-front compile

$(VENV)/.installed: pyproject.toml verifier/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e ./verifier -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# py-solc-x and ape-solidity look for an installed compiler at ~/.solcx/solc-v<version>; there is
# no native solc download here, so a front for the WebAssembly compiler stands in for it.
solc-front: node_modules/.installed
	@mkdir -p $(dir $(SOLC_FRONT))
	@printf '#!/bin/sh\nexec node "%s/scripts/toolchain/solc.js" "$$@"\n' "$(CURDIR)" > $(SOLC_FRONT).tmp
	@chmod +x $(SOLC_FRONT).tmp
	@cmp -s $(SOLC_FRONT).tmp $(SOLC_FRONT) && rm $(SOLC_FRONT).tmp || mv $(SOLC_FRONT).tmp $(SOLC_FRONT)

compile: $(VENV)/.installed solc-front
	$(BIN)/ape compile

# go-ethereum 1.13.15 is the last release that seals Clique blocks. Built once from the Go module
# proxy and cached outside the clone; the linker flag is needed by Go >= 1.23 for an old dependency.
geth: $(GETH)

$(GETH):
	@command -v go >/dev/null || { echo "Go is needed to build geth (the validator network): install Go >= 1.22"; exit 1; }
	mkdir -p $(dir $(GETH))
	GOBIN=$(dir $(GETH)) go install -ldflags=-checklinkname=0 github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION) \
	  || GOBIN=$(dir $(GETH)) GOTOOLCHAIN=go1.22.12 go install github.com/ethereum/go-ethereum/cmd/geth@$(GETH_VERSION)
	$(GETH) version | head -2

# The browser tests drive Debian's chromium (headless, through playwright-core from npm); it is
# installed once from Debian's packages, as root or with sudo.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "the browser tests need chromium at $(CHROMIUM): install it"; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# pytest's exit code is make's: 5 (no tests collected) is a failure too, since a suite of 500
# tests that collects none is broken.
test: install $(GETH) browser  # the validator-network and browser tests run real geth and chromium: never skipped
	$(BIN)/ape test tests -p no:cacheprovider $(PYTEST_ARGS)

# Every linter, each over the whole tree; the import-direction rule is one of import-linter's
# contracts (pyproject.toml). .pre-commit-config.yaml runs the same commands before a commit.
PY_SOURCES := api node client testkit verifier/src scripts tests
lint: install
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy -p veche_core -p veche_verify
	$(BIN)/mypy -p veche_api -p veche_node -p veche_client -p veche_testkit
	$(BIN)/lint-imports
	node_modules/.bin/solhint --max-warnings 0 'contracts/**/*.sol'
	node_modules/.bin/eslint --max-warnings 0 .  # eslint.config.mjs sets the files
	node_modules/.bin/prettier --check .  # .prettierignore sets the files

web: node_modules/.installed
	node web/build.mjs

demo: install web
	$(BIN)/python scripts/demo.py

bench: install
	$(BIN)/python scripts/bench.py

clean:
	rm -rf .build contracts/.cache .pytest_cache .hypothesis web/dist test-artifacts
