# inkdigits: two-command setup. Every target creates .venv and installs what it
# needs, pinned by constraints.txt, so a fresh machine gets the tested versions.
#
#   make demo    read digits with the shipped model (core install only, no TensorFlow)
#   make test    install everything and run the whole test suite
#   make train   retrain the shipped default model (inkdigits-cnn, same recipe and seed)
#   make bench   run the benchmarks under bench/ (results go to docs/BENCHMARKS.md)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints.txt
DEPS := pyproject.toml $(CONSTRAINTS)

# Use a local copy of MNIST when one sits beside the checkout and nothing else is
# set (the workplace layout); otherwise the data is looked up and downloaded
# as described in the README.
ifeq ($(INKDIGITS_DATA_DIR),)
  ifneq ($(wildcard ../shared/data/mnist/SHA256SUMS),)
    export INKDIGITS_DATA_DIR := $(abspath ../shared/data/mnist)
  endif
endif

.PHONY: demo test train bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python $(DEPS)
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.all: $(BIN)/python $(DEPS)
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[train,dev]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/inkdigits demo --out out/demo

test: $(VENV)/.all
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

lint: $(VENV)/.all
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) out .pytest_cache
