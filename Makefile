# Sovereign Map — the two set-up commands: `make up` (bring the testnet up) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Tests and the devnet read MNIST from the shared offline copy when there is one;
# otherwise the canonical files are downloaded (and verified) into ~/.cache/sovereign-map.
SHARED_MNIST := $(abspath ../shared/data/mnist)
export SM_DATA_DIR ?= $(if $(wildcard $(SHARED_MNIST)/train-images-idx3-ubyte.gz),$(SHARED_MNIST),)
NODES ?= 5
ROUNDS ?= 5
# More `sovereign-map up` options, e.g. UP_ARGS=--resume (continue the last run),
# UP_ARGS=--fresh (start over), UP_ARGS='--monitoring --detach'.
UP_ARGS ?=

.PHONY: setup up down status test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so pip does not pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[fl,infra,dev]'
	@command -v promtool >/dev/null || echo "note: promtool/amtool/prometheus not found; install Debian's prometheus and prometheus-alertmanager packages (the tests that need them are skipped)"
	touch $@

setup: $(VENV)/.installed  ## create .venv with everything

up: setup  ## bring the local testnet up (Pulumi + Docker where they exist, else the process devnet)
	@$(VENV)/bin/sovereign-map up --nodes $(NODES) --rounds $(ROUNDS) $(UP_ARGS)

down: setup
	@$(VENV)/bin/sovereign-map down

status: setup
	@$(VENV)/bin/sovereign-map devnet status

test: setup  ## run the whole test suite
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
