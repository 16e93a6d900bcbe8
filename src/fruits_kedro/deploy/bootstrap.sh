#!/bin/bash
# Install fruits-kedro's pinned runtime and the project wheel on a node (the EMR bootstrap action).
# Usage: bootstrap.sh ARTIFACTS   (s3://<results bucket>/<prefix>/artifacts/, or a local dist/ folder)
# Environment:
#   FRUITS_ROLE=executor   requirements-executor.txt (the default): no TensorFlow, the nodes run
#                          the TFLite model converted by `make package`
#   FRUITS_ROLE=runtime    requirements-runtime.txt: with TensorFlow, from PyPI (needs internet)
#   FRUITS_VENV=DIR        install into a new virtual environment at DIR instead of the system
#                          interpreter (a local Spark cluster's executors)
#   FRUITS_PYTHON          the interpreter to install into, or to make the environment with
# With ARTIFACTS/wheelhouse-<machine>.tar (`make package`), pip installs from it alone, every wheel
# checked against its sha256 (--no-index --require-hashes): a node in a private subnet reaches
# S3 through the VPC's gateway endpoint, not PyPI. Without it, pip installs from PyPI.
set -euo pipefail
artifacts="${1%/}"
python="${FRUITS_PYTHON:-python3.11}"
requirements="requirements-${FRUITS_ROLE:-executor}.txt"
machine="$(uname -m)"   # x86_64 or aarch64 (Graviton)
wheelhouse="wheelhouse-${machine}"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
echo "fruits-kedro bootstrap (${requirements}) on ${machine} from ${artifacts}"

fetch() {  # fetch PATTERN: copy the matching artifacts into ${work}
  if [[ "${artifacts}" == s3://* ]]; then
    aws s3 cp --quiet --recursive --exclude "*" --include "$1" "${artifacts}/" "${work}/"
  else
    cp "${artifacts}"/$1 "${work}/"
  fi
}

has() {  # has NAME: whether the artifact NAME exists
  if [[ "${artifacts}" == s3://* ]]; then
    aws s3 ls "${artifacts}/$1" >/dev/null 2>&1
  else
    [ -f "${artifacts}/$1" ]
  fi
}

if [ -n "${FRUITS_VENV:-}" ]; then
  "${python}" -m venv "${FRUITS_VENV}"
  python="${FRUITS_VENV}/bin/python"
  sudo=()
else
  command -v "${python}" >/dev/null || sudo dnf install -y python3.11 python3.11-pip
  sudo=(sudo)
fi
fetch "fruits_kedro-*.whl"

if has "${wheelhouse}.tar"; then
  fetch "${wheelhouse}.tar"
  tar -xf "${work}/${wheelhouse}.tar" -C "${work}"
  pinned="${work}/${wheelhouse}/${requirements}"
  if [ ! -f "${pinned}" ]; then
    echo "${wheelhouse}.tar has no ${requirements}: FRUITS_ROLE=executor, or install online" >&2
    exit 1
  fi
  sources=(--no-index --find-links "${work}/${wheelhouse}" --require-hashes)
  echo "installing offline from ${wheelhouse}.tar ($(ls "${work}/${wheelhouse}" | grep -c '\.whl$') wheels)"
else
  fetch "${requirements}"
  pinned="${work}/${requirements}"
  sources=()
  echo "no ${wheelhouse}.tar in ${artifacts}: installing from PyPI"
fi
# --no-deps: the pins are the whole closure, less what the node has (EMR's PySpark, which
# delta-spark asks for) and the driver-only TensorFlow.
"${sudo[@]}" "${python}" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
  --no-deps "${sources[@]}" --requirement "${pinned}"
"${sudo[@]}" "${python}" -m pip install --quiet --disable-pip-version-check --no-deps --no-index \
  "${work}"/fruits_kedro-*.whl
# PySpark itself comes from the Spark installation (SPARK_HOME/python/lib), not from pip.
"${python}" -c "import fruits_kedro, ai_edge_litert, numpy, pandas, pyarrow, PIL; print('fruits-kedro ready')"
