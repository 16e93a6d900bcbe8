# Two commands: `make run` (install + main job) and `make test` (install + tests).
# Offline: `make run FRUITS_SHARED=<folder>` reads the images and weights of a local copy
# (<folder>/data/fruits-360-mini and <folder>/models/<weights .h5>) instead of downloading.

PYTHON ?= python3.11
VENV ?= .venv
ENV ?= local
FRUITS_SHARED ?=
WEIGHTS_FILE = mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
BIN = $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY = true

ifneq ($(strip $(FRUITS_SHARED)),)
export FRUITS_SHARED
RUN_PARAMS = --params "input_dir=$(abspath $(FRUITS_SHARED))/data/fruits-360-mini,weights=$(abspath $(FRUITS_SHARED))/models/$(WEIGHTS_FILE)"
endif

.PHONY: install run test lint viz clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock --editable ".[test]"
	touch $@

run: install
ifeq ($(strip $(FRUITS_SHARED)),)
	$(BIN)/python -m fruits_kedro.fetch --dest data/01_raw
endif
	$(BIN)/kedro run --env=$(ENV) $(RUN_PARAMS)

test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

viz: install
	$(BIN)/kedro viz run

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .coverage
