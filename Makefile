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

# Delta Lake for Spark 4.1 (every run) and Spark's S3A connector (runs against S3 off EMR; EMR
# ships both), as listed by fruits_kedro.deploy.jars: fetched into ~/.m2, where a run finds them.
JARS = $(BIN)/python -m fruits_kedro.deploy.jars
M2_GET = org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get

# A Spark standalone cluster on this machine (127.0.0.1 only): `make cluster-up WORKERS=2`.
WORKERS ?= 2
WORKER_CORES ?= 1
WORKER_MEMORY ?= 2g
CLUSTER_DIR ?= .cluster

# Spark's History Server over the event logs of every run (`make history`).
EVENTS_DIR ?= logs/spark-events
HISTORY_DIR ?= logs/history
HISTORY_PORT ?= 18080
# checkov (scan of infra/fruits-infra.yaml) in its own venv: its pins conflict with requirements.lock.
CHECKOV_VENV = $(VENV)/tools/checkov
HISTORY_ENV = SPARK_HOME="$$($(BIN)/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')" \
  SPARK_LOCAL_IP=127.0.0.1 SPARK_PID_DIR=$(HISTORY_DIR) SPARK_LOG_DIR=$(HISTORY_DIR) \
  SPARK_CONF_DIR=$(HISTORY_DIR) \
  SPARK_HISTORY_OPTS="-Dspark.history.fs.logDirectory=file:$(abspath $(EVENTS_DIR)) -Dspark.history.ui.port=$(HISTORY_PORT)"

.PHONY: install run test lint viz jars package clean cluster-up cluster-down cluster-status \
  history history-stop checkov lock

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock --editable ".[test]"
	touch $@

run: install jars
ifeq ($(strip $(FRUITS_SHARED)),)
	$(BIN)/python -m fruits_kedro.tools.fetch --dest data/01_raw
endif
	$(BIN)/kedro run --env=$(ENV) $(RUN_PARAMS)
ifeq ($(ENV),local)
	@echo "Run report: data/08_reporting/run_report.html; classify a photo: $(BIN)/fruits-predict PHOTO.jpg"
endif

test: install lint jars checkov
	$(BIN)/pytest

checkov: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --requirement requirements-checkov.lock
	touch $@

jars: install
	@if command -v mvn >/dev/null; then \
	  for artifact in $$($(JARS) delta) $$($(JARS) s3a); do \
	    out=$$(mvn -B -q $(M2_GET) -Dtransitive=false -Dartifact=$$artifact 2>&1) \
	      || { echo "$$out"; exit 1; }; done; \
	else echo "mvn not found: Spark fetches Delta itself; the S3 tests will be skipped"; fi

# `make package`: the artifacts of a cluster in dist/, with a wheelhouse (the nodes install
# without internet) per machine of ARCH: aarch64 (Graviton, EMR's fleets), x86_64, or both
# (ARCH="aarch64 x86_64"; ARCH= for none: nodes use PyPI), and the TFLite model converted from
# PACKAGE_WEIGHTS (the shared copy with FRUITS_SHARED, else Keras' imagenet download).
ARCH ?= aarch64
ifneq ($(strip $(FRUITS_SHARED)),)
PACKAGE_WEIGHTS ?= $(abspath $(FRUITS_SHARED))/models/$(WEIGHTS_FILE)
else
PACKAGE_WEIGHTS ?= imagenet
endif
PACKAGE_MACHINES = $(if $(strip $(ARCH)),$(foreach arch,$(ARCH),--machine $(arch)),--no-wheelhouse)
PACKAGE_MODEL = --weights $(PACKAGE_WEIGHTS)

package: install
	$(BIN)/python -m fruits_kedro.deploy.package --dist dist $(PACKAGE_MACHINES) $(PACKAGE_MODEL)

# A cluster on this machine: a wheelhouse for this machine; the driver converts the model.
cluster-up: ARCH = $(shell uname -m)
cluster-up: PACKAGE_MODEL = --no-model
cluster-up: package
	$(BIN)/fruits-cluster up --dir $(CLUSTER_DIR) --dist dist --workers $(WORKERS) \
	  --cores $(WORKER_CORES) --memory $(WORKER_MEMORY)

cluster-status: install
	$(BIN)/fruits-cluster status --dir $(CLUSTER_DIR)

cluster-down: install
	$(BIN)/fruits-cluster down --dir $(CLUSTER_DIR)

history: install
	@mkdir -p $(EVENTS_DIR) $(HISTORY_DIR)
	@$(HISTORY_ENV) sh -c '"$$SPARK_HOME/sbin/start-history-server.sh"'
	@echo "Spark History Server: http://127.0.0.1:$(HISTORY_PORT) (the runs of $(EVENTS_DIR)); stop it: make history-stop"

history-stop: install
	@$(HISTORY_ENV) sh -c '"$$SPARK_HOME/sbin/stop-history-server.sh"'

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

viz: install
	$(BIN)/kedro viz run

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .coverage

# `make lock`: poetry.lock (`poetry install`) from requirements.lock, the source of the pins:
# Poetry locks a scratch project that requires every pin (and the dependencies they leave
# unpinned: TensorFlow off x86-64), then re-locks this project, which keeps those versions.
# Needs Poetry 2 (POETRY=path) and PyPI; tests/test_locks.py checks that the two locks agree.
POETRY ?= poetry
LOCK_SCRATCH = build/lock-scratch
define LOCK_SCRATCH_PYPROJECT
import json, re, tomllib
def key(req): return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", req)[0]).lower()
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
pins = [s for s in map(str.strip, open("requirements.lock")) if s and not s.startswith("#")]
wanted = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
unpinned = [req for req in wanted if key(req) not in set(map(key, pins))]
print('[project]\nname = "lock-scratch"\nversion = "0"')
print("requires-python =", json.dumps(project["requires-python"]))
print("dependencies =", json.dumps(pins + unpinned, indent=0))
print("[tool.poetry]\npackage-mode = false")
endef
export LOCK_SCRATCH_PYPROJECT

lock:
	rm -rf $(LOCK_SCRATCH) && mkdir -p $(LOCK_SCRATCH)
	$(PYTHON) -c "$$LOCK_SCRATCH_PYPROJECT" > $(LOCK_SCRATCH)/pyproject.toml
	$(POETRY) lock --directory $(LOCK_SCRATCH)
	cp $(LOCK_SCRATCH)/poetry.lock poetry.lock
	$(POETRY) lock
	$(POETRY) check --lock
	rm -rf $(LOCK_SCRATCH)
